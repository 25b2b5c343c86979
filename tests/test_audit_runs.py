"""The second audit's breaks of running the App (issue #24), through the real command line.

Concurrent runs sharing a work folder (each case several times: the timing
differs from one try to the next), a failed subject among combined runs,
folders reaching the input dataset under other names, a full disk, a killed
or interrupted run, provenance and reports free of machine paths, and two
group runs into one output folder.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest
from conftest import RUNS, SPACE, run_app
from test_troubleshooting import (  # noqa: F401 - fixtures
    AS_A_USER,
    _digests,
    _linked_copy,
    _replace_image,
    assert_one_line_error,
    reference,
    volumes_dir,
)

from nipype_ward.io.files import TEMPORARY, host_name

#: Tries of each concurrency case.
TRIES = 5

APP = [sys.executable, "-m", "nipype_ward.cli.run"]


def _app(*args):
    return [*APP, *map(str, args)]


def _with_nan(dataset, run=RUNS[2]):
    """Put a NaN in one brain voxel of ``run``'s BOLD: an input error found only in the graph."""
    bold = dataset / f"{run}_{SPACE}_desc-preproc_bold.nii.gz"
    img = nb.load(bold)
    data = np.asanyarray(img.dataobj).astype(np.float32)
    mask = np.asanyarray(nb.load(dataset / f"{run}_{SPACE}_desc-brain_mask.nii.gz").dataobj) > 0
    data[tuple(np.argwhere(mask)[7])][5] = np.nan
    _replace_image(bold, data, img)
    return bold, int(mask.sum())


@pytest.fixture(scope="module")
def nan_dataset(volumes_dir, tmp_path_factory):  # noqa: F811
    """The test dataset with a NaN in sub-02's BOLD."""
    dataset = _linked_copy(volumes_dir, tmp_path_factory.mktemp("nan") / "fmriprep")
    bold, n_mask = _with_nan(dataset)
    return dataset, bold, n_mask


def _children(pid):
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition, timeout=300, what="the condition"):
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)


# --------------------------------------------------------------------------
# 1. A run that fails on an input error never removes a work folder another uses
# --------------------------------------------------------------------------
@pytest.mark.heavy  # App runs side by side, killed, or several in a row
def test_a_failing_run_never_removes_a_work_folder_another_run_uses(
        volumes_dir, nan_dataset, reference, tmp_path):  # noqa: F811
    dataset, bold, n_mask = nan_dataset
    for attempt in range(TRIES):
        root = tmp_path / str(attempt)
        work = root / "work"
        failing = subprocess.Popen(
            _app(dataset, root / "out_a", "participant", "--participant-label", "02",
                 "--n-clusters", 10, 20, "-w", work, "--nprocs", 2),
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.2 * (attempt % 3))
        healthy = subprocess.Popen(
            _app(volumes_dir, root / "out_b", "participant", "--participant-label", "01",
                 "--n-clusters", 10, 20, "-w", work, "--nprocs", 2),
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, failing_err = failing.communicate(timeout=600)
        _, healthy_err = healthy.communicate(timeout=600)  # never hangs
        assert failing.returncode == 1, failing_err
        lines = failing_err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            f"nipype-ward: error: {bold}: 1 of the mask's {n_mask} voxels have NaN"), failing_err
        assert healthy.returncode == 0, healthy_err
        assert _digests(root / "out_b") == {
            name: digest for name, digest in _digests(reference).items()
            if name.startswith("sub-01/")}


def test_a_task_that_fails_outside_its_node_is_reported_not_waited_for(tmp_path):
    """Nipype's MultiProc waits forever when a task raises where its result file is read."""
    script = tmp_path / "lost.py"
    script.write_text(
        "import shutil, sys\n"
        "from nipype.pipeline import engine as pe\n"
        "from nipype.interfaces import utility as niu\n"
        "from nipype_ward.cli._running import GraphError, run_graph\n"
        "def vanish():\n"
        "    import os, shutil\n"
        "    shutil.rmtree(os.getcwd())  # its folder removed under it, as by another run\n"
        "    raise RuntimeError('the node failed')\n"
        "wf = pe.Workflow(name='wf')\n"
        "wf.add_nodes([pe.Node(niu.Function(function=vanish, input_names=[],\n"
        "                                   output_names=[]), name='vanish')])\n"
        "try:\n"
        "    run_graph(wf, work_dir=sys.argv[1], plugin='MultiProc',\n"
        "              plugin_args={'n_procs': 2}, verbose=False)\n"
        "except GraphError as exc:\n"
        "    print('failed:', exc.nodes)\n"
        "    sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "failed: ['wf.vanish']"


# --------------------------------------------------------------------------
# 2. The same subject twice at once in one work folder
# --------------------------------------------------------------------------
@pytest.mark.heavy  # App runs side by side, killed, or several in a row
def test_the_same_subject_twice_at_once_is_refused_or_identical(volumes_dir, reference,
                                                                tmp_path):  # noqa: F811
    expected = {name: digest for name, digest in _digests(reference).items()
                if name.startswith("sub-02/")}
    for attempt in range(TRIES):
        root = tmp_path / str(attempt)
        work = root / "work"
        procs = []
        for index in range(2):
            procs.append(subprocess.Popen(
                _app(volumes_dir, root / f"out{index}", "participant", "--participant-label",
                     "02", "--n-clusters", 10, 20, "-w", work, "--nprocs", 1),
                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            time.sleep(0.1 * attempt)
        outcomes = []
        for index, proc in enumerate(procs):
            _, stderr = proc.communicate(timeout=600)
            outcomes.append(proc.returncode)
            if proc.returncode == 0:
                assert _digests(root / f"out{index}") == expected
            else:
                assert proc.returncode == 1
                assert stderr.splitlines() == [
                    f"nipype-ward: error: {work}: another run is computing "
                    "sub_02_task_rest_space_MNI152NLin2009cAsym_wf in this work folder (-w): "
                    "wait for it to end, or give another work folder"], stderr
                assert not (root / f"out{index}").exists()
        assert 0 in outcomes


# --------------------------------------------------------------------------
# 3. --combine-runs: a failed subject withholds only its own files
# --------------------------------------------------------------------------
def test_combined_runs_withhold_only_the_failed_subject(nan_dataset, tmp_path):
    dataset, bold, n_mask = nan_dataset
    out = tmp_path / "out"
    proc = run_app(dataset, out, "participant", "--combine-runs", "--n-clusters", 10, 20,
                   "--no-split-half", "-w", tmp_path / "work", "--nprocs", 2, cwd=tmp_path)
    assert_one_line_error(
        proc, "nipype-ward",
        f"{bold}: 1 of the mask's {n_mask} voxels have NaN or infinite values: check the "
        "series, or leave those voxels out of the brain mask; nothing was written for sub-02")
    combined = sorted(path.name for path in (out / "sub-01").rglob("*_dseg.nii.gz"))
    assert combined == [f"sub-01_ses-1_task-rest_{SPACE}_seg-ward_scale-{k}_desc-combined_dseg"
                        ".nii.gz" for k in (10, 20)]
    assert (out / "sub-01.html").is_file()
    assert not (out / "sub-02").exists() and not (out / "sub-02.html").exists()


# --------------------------------------------------------------------------
# 4. Folders that are the input dataset, or lie inside it, under any name
# --------------------------------------------------------------------------
def _bind_mount(source, target):
    target.mkdir(parents=True)
    proc = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"bind mounts need root here ({proc.stderr.strip()})")
    return target


def test_output_or_work_folder_reaching_the_input_is_refused(volumes_dir, tmp_path):  # noqa: F811
    dataset = _linked_copy(volumes_dir, tmp_path / "fmriprep")
    description = (dataset / "dataset_description.json").read_bytes()
    before = sorted(str(path) for path in dataset.rglob("*"))
    (tmp_path / "link").symlink_to(dataset)
    mount = _bind_mount(dataset, tmp_path / "mnt")
    try:
        cases = [
            (mount, tmp_path / "work", mount, "the output folder"),  # docker run -v
            (tmp_path / "link" / "derivatives", tmp_path / "work",
             tmp_path / "link" / "derivatives", "the output folder"),
            (tmp_path / "out", dataset, dataset, "the work folder (-w)"),
            (tmp_path / "out", mount / "work", mount / "work", "the work folder (-w)"),
        ]
        for out, work, named, what in cases:
            proc = run_app(dataset, out, "participant", "--n-clusters", 10, "-w", work,
                           cwd=tmp_path)
            assert_one_line_error(
                proc, "nipype-ward",
                f"{named}: {what} is the input dataset {dataset} or lies inside it: give a "
                "folder outside the input dataset")
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    assert (dataset / "dataset_description.json").read_bytes() == description
    assert sorted(str(path) for path in dataset.rglob("*")) == before
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()


def test_a_work_folder_inside_the_output_is_kept_from_the_validator(volumes_dir, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    proc = run_app(volumes_dir, out, "participant", "--participant-label", "02",
                   "--n-clusters", 10, "--no-split-half", "-w", out / "work", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "/work" in (out / ".bidsignore").read_text().splitlines()
    validator = subprocess.run(["bids-validator-deno", "--json", str(out)],
                               capture_output=True, text=True, timeout=300)
    issues = json.loads(validator.stdout)["issues"]["issues"]
    assert [issue for issue in issues if issue["severity"] == "error"] == []
    assert not [issue for issue in issues if issue["code"] == "NOT_INCLUDED"]


# --------------------------------------------------------------------------
# 5. A delivered file, reports included, is replaced only by a complete one
# --------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 6 MB file system of its own (tmpfs), to be filled."""
    disk = tmp_path / "disk"
    disk.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs root here ({proc.stderr.strip()})")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def _fill(disk):
    """Fill ``disk`` to its last byte."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


@pytest.mark.heavy  # App runs side by side, killed, or several in a row
def test_a_full_disk_keeps_the_last_complete_outputs(volumes_dir, small_disk, tmp_path):  # noqa: F811
    out = small_disk / "out"
    command = ["participant", "--participant-label", "02", "--no-split-half", "-w",
               tmp_path / "work", "--nprocs", 1]
    first = run_app(volumes_dir, out, *command, "--n-clusters", 10, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    _fill(small_disk)
    again = run_app(volumes_dir, out, *command, "--n-clusters", 10, 20, cwd=tmp_path)
    assert again.returncode == 1
    (line,) = again.stderr.splitlines()
    assert line.startswith(f"nipype-ward: error: {out}") and "No space left on device" in line
    assert "Traceback" not in again.stderr
    after = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert after == before  # nothing replaced, nothing half-written, nothing left behind


def test_a_series_larger_than_the_disk_is_refused_before_a_byte_is_copied(small_disk):
    """The prepared series is copied into a memory map of its file, whose blocks are
    reserved first: a disk too small is an error naming the file (not a SIGBUS that
    kills the run), and the series is neither written nor consumed."""
    from nipype_ward.io import arrays
    from nipype_ward.io.errors import WriteError

    X = np.arange(2000 * 1000, dtype=np.float32).reshape(2000, 1000)  # 8 MB on 6 MB
    with pytest.raises(WriteError) as error:
        arrays.save_series(X, small_disk / "series.npy", consume=True)
    assert str(error.value).startswith(f"{small_disk / 'series.npy'}: cannot be written "
                                       "(No space left on device)")
    assert list(small_disk.iterdir()) == []
    assert X.shape == (2000, 1000) and X[-1, -1] == 2000 * 1000 - 1


def test_the_report_is_replaced_only_by_a_complete_one(volumes_dir, small_disk, tmp_path):  # noqa: F811
    from nipype_ward.io.errors import WriteError
    from nipype_ward.reports.assemble import write_subject_report

    out = small_disk / "out"
    proc = run_app(volumes_dir, out, "participant", "--participant-label", "02",
                   "--n-clusters", 10, "--no-split-half", "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = (out / "sub-02.html").read_bytes()
    assert len(report) > 4096
    log = next((out / "sub-02" / "log").iterdir()).name
    _fill(small_disk)
    # Room for the methods reportlet alone, which is written again first.
    os.remove(out / "sub-02" / "figures" / "sub-02_desc-about_bold.html")
    with pytest.raises(WriteError) as error:
        write_subject_report(out, "02", run_id=log, parameters={"n_clusters": [10]})
    assert str(error.value) == (
        f"{out / 'sub-02.html'}: cannot be written (No space left on device): free some space "
        "or give a folder you can write to; the file there before is unchanged")
    assert (out / "sub-02.html").read_bytes() == report
    assert not [path for path in out.rglob(".*") if TEMPORARY.match(path.name)]


# --------------------------------------------------------------------------
# 6. A killed run's workers die with it; the next run cleans what it left
# --------------------------------------------------------------------------
@pytest.mark.heavy  # App runs side by side, killed, or several in a row
def test_workers_die_with_a_killed_run_and_the_next_run_cleans_up(volumes_dir, reference,
                                                                  tmp_path):  # noqa: F811
    out, work = tmp_path / "out", tmp_path / "work"
    command = _app(volumes_dir, out, "participant", "--n-clusters", 10, 20, "-w", work,
                   "--nprocs", 2)
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_for(lambda: list(work.rglob("prepare_signals/_report")), what="a node to start")
    workers = _children(proc.pid)
    assert workers, "MultiProc's workers"
    os.kill(proc.pid, signal.SIGKILL)  # the main process alone, as the OOM killer does
    proc.wait()
    _wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=10,
              what="the workers to die with their parent")
    assert list(out.glob(".staging-*"))  # the killed run's, left behind
    # What a kill just before a rename leaves: a temporary file of a dead writer.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    host = host_name()
    orphan = out / f".dataset_description.json.{host}-{dead}.tmp-abc123.json"
    orphan.write_text("{")
    live = out / f".notes.txt.{host}-{os.getpid()}.tmp-abc123.txt"  # a live writer's
    live.write_text("being written")
    (out / ".new.staging-killed").mkdir()
    finished = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True,
                              timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert _digests(out) == _digests(reference)
    assert sorted(path.name for path in out.glob(".*")) == [".bidsignore", live.name]


# --------------------------------------------------------------------------
# 15. Ctrl-C, and a home folder that cannot be written
# --------------------------------------------------------------------------
@pytest.mark.heavy  # App runs side by side, killed, or several in a row
def test_an_interrupted_run_says_so_in_one_line_and_resumes(volumes_dir, reference, tmp_path):  # noqa: F811
    out, work = tmp_path / "out", tmp_path / "work"
    command = _app(volumes_dir, out, "participant", "--n-clusters", 10, 20, "-w", work,
                   "--nprocs", 2)
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for(lambda: list(work.rglob("prepare_signals/_report")), what="a node to start")
    workers = _children(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert stderr.splitlines() == [
        f"nipype-ward: interrupted; the same command resumes from the work folder {work}"]
    assert "Traceback" not in stdout
    assert not any(_alive(pid) for pid in workers)
    finished = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True,
                              timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert _digests(out) == _digests(reference)


def test_a_read_only_home_gives_no_matplotlib_warning(volumes_dir, tmp_path):  # noqa: F811
    home = tmp_path / "home"
    home.mkdir(mode=0o555)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {key: value for key, value in os.environ.items()
           if key not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    proc = subprocess.run(
        [*AS_A_USER, *_app(volumes_dir, tmp_path / "out", "participant", "--participant-label",
                           "02", "--n-clusters", 10, "--no-split-half", "-w",
                           tmp_path / "work")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**env, "HOME": str(home), "TMPDIR": str(tmp)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert list(tmp.iterdir()) == []  # no matplotlib-* folder left
    assert (tmp_path / "work" / ".matplotlib").is_dir()


# --------------------------------------------------------------------------
# 10, 17. Provenance and records name files by BIDS URIs, never machine paths
# --------------------------------------------------------------------------
@pytest.mark.parametrize("combine", [False, True], ids=["runs", "combined"])
def test_outputs_name_no_machine_path(volumes_dir, tmp_path, combine):  # noqa: F811
    dataset = _linked_copy(volumes_dir, tmp_path / "fmriprep")
    out, work = tmp_path / "out", tmp_path / "work"
    proc = run_app(dataset, out, "participant", "--participant-label", "01" if combine else "02",
                   "--n-clusters", 10, "--no-split-half", "--write-provenance", "-w", work,
                   *(["--combine-runs"] if combine else []), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for path in out.rglob("*"):
        if not path.is_file() or path.suffix in (".gz", ".png", ".npz"):
            continue
        text = path.read_text()
        if path.name == "dataset_description.json":  # DatasetLinks: URIs of the inputs
            text = json.dumps({key: value for key, value in json.loads(text).items()
                               if key not in ("DatasetLinks", "SourceDatasets")})
        if path.name == "nipype-ward.json":  # the command, as it was typed
            text = json.dumps({key: value for key, value in json.loads(text).items()
                               if key != "command"})
        assert str(tmp_path) not in text, path
        assert ".staging-" not in text, path
    ours = json.loads((out / "dataset_description.json").read_text())["GeneratedBy"][0]
    assert ours["Name"] == "nipype-ward" and "CodeURL" not in ours  # no repository of that name
    for path in out.rglob("*_metrics.json"):  # each names the delivered labels it measures
        metrics = json.loads(path.read_text())
        assert (path.parent / metrics["labels_file"]).is_file(), path
        if not combine:
            assert metrics["bold_file"] == \
                f"bids:preprocessed:{RUNS[2]}_{SPACE}_desc-preproc_bold.nii.gz"


def test_provenance_covers_sidecars_the_report_and_the_description(volumes_dir, tmp_path):  # noqa: F811
    from prov.model import ProvDocument

    out = tmp_path / "out"
    proc = run_app(volumes_dir, out, "participant", "--participant-label", "02",
                   "--n-clusters", 10, "--no-split-half", "--write-provenance",
                   "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (document_path,) = out.glob("sub-02/log/*/sub-02_task-rest_prov.json")
    document = ProvDocument.deserialize(str(document_path), format="json")
    generated = {record.formal_attributes[0][1].uri for record in document.get_records()
                 if record.get_type().localpart == "Generation"}
    expected = {f"bids::{path.relative_to(out).as_posix()}" for path in out.rglob("*")
                if path.is_file() and "log" not in path.relative_to(out).parts
                and path.name not in (".bidsignore", "sub-02_desc-about_bold.html")}
    assert generated == expected
    assert any(name.endswith("_dseg.json") for name in generated)


# --------------------------------------------------------------------------
# 11. Two group runs into one output folder
# --------------------------------------------------------------------------
@pytest.mark.heavy  # App runs side by side, killed, or several in a row
def test_a_group_run_of_another_dataset_or_space_is_refused(volumes_dir, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    first = run_app(volumes_dir, out, "group", "--n-clusters", 10, "-w", tmp_path / "work",
                    cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    atlases = out / "atlases"
    before = {path: path.read_bytes() for path in atlases.rglob("*") if path.is_file()}
    other = _linked_copy(volumes_dir, tmp_path / "other" / "fmriprep")
    proc = run_app(other, out, "group", "--n-clusters", 10, "-w", tmp_path / "work2",
                   cwd=tmp_path)
    assert_one_line_error(
        proc, "nipype-ward",
        f"{atlases / 'dataset_description.json'}: these derivatives come from another dataset "
        f"({volumes_dir}): give another output folder for {other}")
    proc = run_app(volumes_dir, out, "group", "--n-clusters", 10, "--space", "T1w",
                   "-w", tmp_path / "work3", cwd=tmp_path)
    assert_one_line_error(
        proc, "nipype-ward",
        f"{atlases / 'atlas-ward10_description.json'}: the atlas ward10 there was learned in "
        "space MNI152NLin2009cAsym, not T1w: one atlas dataset holds one space; give another "
        "output folder")
    assert {path: path.read_bytes() for path in atlases.rglob("*") if path.is_file()} == before
