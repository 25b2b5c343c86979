"""Every case of docs/troubleshooting.rst, through the real command lines.

Each bad input is one line on stderr naming the file, the problem and what
to do, exit code 1, no traceback and no Nipype ERROR log on either stream,
and nothing written (no output folder, no work folder made by the run). The
data problems a run works around are one warning line each. Then what a run
on a shared cluster needs: outputs that follow the umask, a failed subject
that leaves none of its files while the others get theirs, runs killed with
SIGKILL that resume to the same bytes, two runs writing into one folder at
once, and byte-identical results whatever the process count.
"""

import hashlib
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

SCRIPT = Path(__file__).parents[1] / "workflows" / "rest_clustering.py"

#: Run a command without the root's power to ignore file modes (CI runs as
#: root): a read-only folder is then read-only for it, as for any user.
AS_A_USER = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] \
    if os.geteuid() == 0 else []


def run_seed(*args, cwd, umask=None, as_user=False):
    def preexec():
        if umask is not None:
            os.umask(umask)

    return subprocess.run(
        [*(AS_A_USER if as_user else []), sys.executable, str(SCRIPT), *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=600, preexec_fn=preexec,
    )


def assert_one_line_error(proc, prog, expected):
    """Exit 1, ``expected`` as the only line on stderr, nothing on stdout, no log."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [f"{prog}: error: {expected}"], proc.stderr
    for text in (proc.stdout, proc.stderr):
        assert "Traceback" not in text and " ERROR" not in text


def _save(path, data, affine=np.diag([3.0, 3.0, 3.0, 1.0])):
    nb.save(nb.Nifti1Image(np.asarray(data), affine), path)
    return path


@pytest.fixture(scope="module")
def slab(tmp_path_factory):
    """A 10 x 10 x 18 slab of brain with no dark background, 50 volumes."""
    folder = tmp_path_factory.mktemp("slab")
    rng = np.random.default_rng(0)
    x = np.indices((10, 10, 18)).sum(axis=0)
    data = (1000.0 + 20 * x)[..., None] + rng.normal(0, 5, (10, 10, 18, 50))
    return {"bold": _save(folder / "slab_bold.nii.gz", data.astype(np.float32)),
            "mask": _save(folder / "slab_mask.nii.gz", np.ones((10, 10, 18), np.uint8)),
            "data": data}


# --------------------------------------------------------------------------
# The seed pipeline
# --------------------------------------------------------------------------
def test_an_epi_without_background_asks_for_a_mask(slab, tmp_path):
    proc = run_seed("--bold", slab["bold"], "--n-clusters", 20, "--output-dir", tmp_path / "out",
                    cwd=tmp_path)
    # Every voxel is brighter than a fifth of the 98th percentile: no background.
    mean = slab["data"].mean(axis=3)
    assert (mean < 0.2 * np.percentile(mean, 98)).mean() == 0.0
    # nilearn's own EPI mask on it keeps a fifth of the slab, an arbitrary cut.
    from nilearn.masking import compute_epi_mask

    kept = int(np.asanyarray(compute_epi_mask(nb.load(slab["bold"])).dataobj).sum())
    assert_one_line_error(
        proc, "rest_clustering",
        f"{slab['bold']}: the EPI has no dark background (0.0% of its voxels are darker than a "
        "fifth of its bright ones), so an EPI mask cannot tell brain from background (it keeps "
        f"{kept:,} of its 1,800 voxels ({kept / 1800:.1%})): give a brain mask (--mask)")
    assert not (tmp_path / "out").exists()  # nor its work folder inside


def test_k_larger_than_the_epi_mask_stops_before_the_trees(small_data, tmp_path):
    proc = run_seed("--bold", small_data["bold"], "--n-clusters", 100000, "--output-dir",
                    tmp_path / "out", "--work-dir", tmp_path / "work", cwd=tmp_path)
    from nilearn.masking import compute_epi_mask

    n_voxels = int(np.asanyarray(compute_epi_mask(nb.load(small_data["bold"])).dataobj).sum())
    assert_one_line_error(
        proc, "rest_clustering",
        f"{small_data['bold']}: cannot make 100000 parcels from a mask of {n_voxels} voxels: "
        f"ask for at most {n_voxels} (--n-clusters) or give a larger mask")
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()


def test_constant_voxels_are_left_out_and_counted(slab, tmp_path):
    data = slab["data"].copy()
    constant = [(0, 0, 0), (9, 9, 17), (4, 5, 6), (4, 5, 7)]
    for index in constant:
        data[index] = 0.0 if index != (4, 5, 6) else 1234.5
    bold = _save(tmp_path / "bold.nii.gz", data.astype(np.float32))
    proc = run_seed("--bold", bold, "--mask", slab["mask"], "--n-clusters", 20,
                    "--standardize", "zscore_sample", "--no-figures", "--output-dir",
                    tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        f"rest_clustering: warning: {bold}: 4 of the mask's 1800 voxels have a constant series "
        "(no signal): left out of the parcels (label 0), counted as n_voxels_constant"]
    labels = np.asanyarray(nb.load(tmp_path / "out" / "ward20_labels.nii.gz").dataobj)
    for index in constant:
        assert labels[index] == 0
    assert (labels > 0).sum() == 1800 - 4
    assert sorted(np.unique(labels[labels > 0])) == list(range(1, 21))
    metrics = json.loads((tmp_path / "out" / "ward20_metrics.json").read_text())
    assert metrics["n_voxels_constant"] == 4 and metrics["n_voxels"] == 1796
    assert "over 1,796 voxels (of the mask's 1,800: 4 with a constant series left out)" \
        in proc.stdout
    assert metrics["labels_file"] == "ward20_labels.nii.gz"  # the delivered file, beside it


def test_a_mask_of_several_pieces_is_warned_about(slab, tmp_path):
    mask = np.zeros((10, 10, 18), np.uint8)
    mask[:, :, :7] = 1  # 700 voxels
    mask[:, :, 10:] = 1  # 800 voxels
    mask[5, 5, 8] = 1  # alone: z = 7 and 9 are empty
    mask_path = _save(tmp_path / "two_mask.nii.gz", mask)
    proc = run_seed("--bold", slab["bold"], "--mask", mask_path, "--n-clusters", 5,
                    "--no-figures", "--output-dir", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("rest_clustering: warning: ") and line.endswith(
        ": the mask is 3 separate pieces (800, 700, 1 voxels, 6-neighbourhood): no parcel "
        "spans two, and K below 3 merges whole pieces")


@pytest.mark.parametrize("case", ["missing", "truncated", "corrupt", "nan", "3d", "grid",
                                  "empty", "output_file", "output_read_only",
                                  "work_read_only"])
def test_bad_seed_inputs_are_one_line(case, slab, small_data, tmp_path):
    bold, mask, out, args = slab["bold"], slab["mask"], tmp_path / "out", []
    as_user = False
    if case == "missing":
        bold = tmp_path / "nope_bold.nii.gz"
        expected = f"{bold}: no such file"
    elif case == "truncated":
        raw = nb.load(small_data["bold"])
        bold = tmp_path / "cut_bold.nii"
        nb.save(raw, bold)
        size = bold.stat().st_size
        with open(bold, "r+b") as stream:
            stream.truncate(size // 2)
        expected = (f"{bold}: file is truncated: its header declares {size - 352} bytes of data "
                    f"{raw.shape} from byte 352, but the file has {size // 2} bytes; copy or "
                    "download it again")
    elif case == "corrupt":
        bold = tmp_path / "noise_bold.nii.gz"
        bold.write_bytes(np.random.default_rng(1).bytes(4000))
        expected = f"{bold}: not a readable NIfTI image (File {bold} is not a gzip file)"
    elif case == "nan":
        data = slab["data"].copy()
        data[3, 3, 3, 7] = np.nan
        data[4, 4, 4, :] = np.inf
        bold = _save(tmp_path / "nan_bold.nii.gz", data.astype(np.float32))
        expected = (f"{bold}: 2 of the mask's 1800 voxels have NaN or infinite values: check "
                    "the series, or leave those voxels out of the brain mask")
    elif case == "3d":
        bold = _save(tmp_path / "vol_bold.nii.gz", slab["data"][..., 0].astype(np.float32))
        expected = f"{bold}: expected a 4D image, got shape (10, 10, 18)"
    elif case == "grid":
        mask = _save(tmp_path / "shifted_mask.nii.gz", np.ones((10, 10, 18), np.uint8),
                     affine=np.diag([2.0, 2.0, 2.0, 1.0]))
        expected = None  # checked below: the grid message names both files
    elif case == "empty":
        mask = _save(tmp_path / "empty_mask.nii.gz", np.zeros((10, 10, 18), np.uint8))
        expected = f"{mask}: mask is empty (no non-zero voxel): give the brain mask of this series"
    elif case == "output_file":
        out = tmp_path / "out.txt"
        out.write_text("the user's notes\n")
        expected = f"{out}: the output folder is a file, not a folder: give a folder"
    elif case == "output_read_only":
        parent = tmp_path / "locked"
        parent.mkdir(mode=0o555)
        out, as_user = parent / "out", True
        expected = (f"{out}: the output folder cannot be written (Permission denied): give a "
                    "folder you can write to")
    elif case == "work_read_only":
        parent = tmp_path / "locked"
        parent.mkdir(mode=0o555)
        args, as_user = ["--work-dir", parent / "work"], True
        expected = (f"{parent / 'work'}: the work folder (--work-dir) cannot be written "
                    "(Permission denied): give a folder you can write to")
    proc = run_seed("--bold", bold, "--mask", mask, "--n-clusters", 10, "--output-dir", out,
                    *args, cwd=tmp_path, as_user=as_user)
    if expected is None:
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1
        assert proc.stderr.startswith(f"rest_clustering: error: {mask}: ")
        assert str(bold) in proc.stderr
    else:
        assert_one_line_error(proc, "rest_clustering", expected)
    if case == "output_file":
        assert out.read_text() == "the user's notes\n"
    else:
        assert not out.exists()
    assert not (tmp_path / "out" / "work").exists() and not (tmp_path / "locked" / "work").exists()
    assert not (tmp_path / "work").exists()  # the default work folder, ./work


def test_outputs_follow_the_umask(small_data, tmp_path):
    out = tmp_path / "out"
    proc = run_seed("--bold", small_data["bold"], "--n-clusters", 10, "--output-dir", out,
                    cwd=tmp_path, umask=0o027)
    assert proc.returncode == 0, proc.stderr
    files = [path for path in out.iterdir() if path.is_file()]
    assert len(files) == 9  # mask, mean, tree; labels, series, compressed, metrics, 2 figures
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in files} \
        == {path.name: oct(0o640) for path in files}
    assert not list(out.glob(".*"))  # no staging folder left


# --------------------------------------------------------------------------
# The BIDS App
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def volumes_dir(tmp_path_factory):
    """The fMRIPrep test dataset without its surface files (quicker to copy and to run)."""
    from conftest import write_fmriprep_dataset

    return write_fmriprep_dataset(tmp_path_factory.mktemp("volumes") / "fmriprep",
                                  surfaces=False)


def _linked_copy(source, target):
    """A copy of a dataset made of hard links: change a file by replacing it, never in place."""
    import shutil

    shutil.copytree(source, target, copy_function=os.link)
    return target


def _replace_image(path, data, like):
    path.unlink()  # a hard link: the source dataset's file stays as it is
    nb.save(nb.Nifti1Image(data, like.affine, like.header), path)


def _digests(folder):
    """SHA-256 of every data file under ``folder`` (figures, logs and reports apart)."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.suffix in (".gz", ".tsv", ".npz")}


@pytest.fixture(scope="module")
def reference(volumes_dir, tmp_path_factory):
    """One uninterrupted run of sub-02 and of sub-01 (one process each), K = 10, 20."""
    root = tmp_path_factory.mktemp("reference")
    proc = run_app(volumes_dir, root / "out", "participant", "--n-clusters", 10, 20,
                   "-w", root / "work", "--nprocs", 1, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root / "out"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("output_file", "{out}: the output folder is a file, not a folder: give a folder"),
        ("work_read_only", "{work}: the work folder (-w) cannot be written (Permission denied): "
                           "give a folder you can write to"),
        ("not_bids", None),
    ],
)
def test_bad_app_folders_are_one_line(volumes_dir, tmp_path, case, message):
    out, work, dataset, prefix = tmp_path / "out", tmp_path / "work", volumes_dir, []
    if case == "output_file":
        out.write_text("the user's notes\n")
    elif case == "work_read_only":
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        work, prefix = locked / "work", AS_A_USER
    elif case == "not_bids":
        dataset = tmp_path / "plain"
        dataset.mkdir()
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "nipype_ward.cli.run", str(dataset), str(out),
         "participant", "-w", str(work)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    if message is None:
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith(f"nipype-ward: error: {dataset}")
    else:
        assert_one_line_error(proc, "nipype-ward", message.format(out=out, work=work))
    assert not work.exists()
    assert out.read_text() == "the user's notes\n" if case == "output_file" else not out.exists()


@pytest.mark.heavy  # another App run (or several) beside the reference run
def test_a_failed_subject_leaves_none_of_its_files(volumes_dir, reference, tmp_path):
    dataset = _linked_copy(volumes_dir, tmp_path / "fmriprep")
    bold = dataset / f"{RUNS[2]}_{SPACE}_desc-preproc_bold.nii.gz"
    img = nb.load(bold)
    data = np.asanyarray(img.dataobj).astype(np.float32)
    mask = np.asanyarray(nb.load(dataset / f"{RUNS[2]}_{SPACE}_desc-brain_mask.nii.gz")
                         .dataobj) > 0
    data[tuple(np.argwhere(mask)[7])][5] = np.nan  # found only once the series is read
    _replace_image(bold, data, img)
    out = tmp_path / "out"
    (out / "sub-02").mkdir(parents=True)
    (out / "sub-02" / "notes.txt").write_text("the user's own file\n")
    (out / "README").write_text("ours to keep\n")
    proc = run_app(dataset, out, "participant", "--n-clusters", 10, 20, "-w", tmp_path / "work",
                   "--nprocs", 2, cwd=tmp_path)
    assert_one_line_error(
        proc, "nipype-ward",
        f"{bold}: 1 of the mask's {int(mask.sum())} voxels have NaN or infinite values: check "
        "the series, or leave those voxels out of the brain mask; nothing was written for "
        "sub-02")
    # sub-01 was delivered, byte for byte as in the reference run, with its report.
    delivered = _digests(out)
    assert delivered == {name: digest for name, digest in _digests(reference).items()
                         if name.startswith("sub-01/")}
    assert (out / "sub-01.html").is_file() and not (out / "sub-02.html").exists()
    assert sorted(path.name for path in (out / "sub-02").rglob("*")) == ["notes.txt"]
    assert (out / "README").read_text() == "ours to keep\n"
    assert not list(out.glob(".staging-*"))


def _kill_when(proc, pattern, work, timeout=300):
    """SIGKILL the run's whole process group once a file matching ``pattern`` is in ``work``."""
    start = time.monotonic()
    while not list(work.rglob(pattern)):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() - start < timeout
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.heavy  # another App run (or several) beside the reference run
def test_a_run_killed_twice_resumes_to_the_same_bytes(volumes_dir, reference, tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    command = [sys.executable, "-m", "nipype_ward.cli.run", str(volumes_dir), str(out),
               "participant", "--participant-label", "02", "--n-clusters", "10", "20",
               "-w", str(work), "--nprocs", "1"]
    # Killed while the BOLD is read, then again once the tree is built.
    for pattern in ("prepare_signals/_report", "ward_tree/result_ward_tree.pklz"):
        proc = subprocess.Popen(command, cwd=tmp_path, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _kill_when(proc, pattern, work)
        assert not list((out / "sub-02").rglob("*_dseg.nii.gz")) if out.exists() else True
    finished = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True,
                              timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert _digests(out) == {name: digest for name, digest in _digests(reference).items()
                             if name.startswith("sub-02/")}
    assert not list(out.glob(".staging-*"))  # the killed runs' staging folders are gone


@pytest.mark.heavy  # another App run (or several) beside the reference run
def test_two_runs_into_one_folder_at_once(volumes_dir, reference, tmp_path):
    out = tmp_path / "out"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "nipype_ward.cli.run", str(volumes_dir), str(out), "participant",
         "--participant-label", label, "--n-clusters", "10", "20", "-w", str(tmp_path / label),
         "--nprocs", "1"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for label in ("01", "02")]
    for proc in procs:
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr
    assert _digests(out) == _digests(reference)
    assert json.loads((out / "dataset_description.json").read_text())["DatasetType"] \
        == "derivative"
    assert (out / ".bidsignore").read_text() == (reference / ".bidsignore").read_text()
    assert not list(out.glob(".staging-*"))


@pytest.mark.heavy  # another App run (or several) beside the reference run
def test_results_are_byte_identical_whatever_the_process_count(volumes_dir, reference,
                                                               tmp_path):
    proc = run_app(volumes_dir, tmp_path / "out", "participant", "--n-clusters", 10, 20,
                   "-w", tmp_path / "work", "--nprocs", 2, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _digests(tmp_path / "out") == _digests(reference)
    assert len(_digests(reference)) == 3 * (1 + 2 * 3)  # per run: tree; per K: dseg, tsv x2
