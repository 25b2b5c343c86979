"""The BIDS App on a real single-node Slurm (``.ci/slurm.sh``), through Nipype's SLURM plugin.

The scheduler is real: slurmctld and slurmd started by the project's script
(as root, from Debian's packages), jobs submitted with sbatch by Nipype.
The tests skip, saying why, only where Slurm cannot start.
"""

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest
from conftest import RUNS, SPACE

#: Real Slurm jobs, tens of seconds each: the second tier (``-m heavy``).
pytestmark = pytest.mark.heavy

REPO = Path(__file__).resolve().parent.parent
ARGS = ("participant", "--participant-label", "02", "--n-clusters", 20, 40)
STEM = f"{RUNS[2]}_{SPACE}_seg-ward_scale-{{k}}"


@pytest.fixture(scope="session")
def slurm():
    """A running single-node Slurm, or a skip with the script's reason."""
    proc = subprocess.run(["bash", str(REPO / ".ci" / "slurm.sh")], capture_output=True,
                          text=True, timeout=900)
    if proc.returncode != 0:
        pytest.skip(f"Slurm cannot start here: {proc.stderr.strip()[-500:]}")
    return True


def _environment():
    """The environment of a batch shell: no LOGNAME (nor USER), which Nipype's plugins read."""
    return {key: value for key, value in os.environ.items() if key not in ("LOGNAME", "USER")}


def _command(fmriprep_dir, out, work, *extra):
    return [sys.executable, "-m", "nipype_ward.cli.run", str(fmriprep_dir), str(out),
            *map(str, ARGS), "-w", str(work), *map(str, extra)]


class _Queue(threading.Thread):
    """Watches ``squeue`` while a run goes: every job seen, with its memory and CPUs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.jobs, self.stop = {}, threading.Event()

    def run(self):
        while not self.stop.is_set():
            out = subprocess.run(["squeue", "-h", "-o", "%i|%j|%m|%C"], capture_output=True,
                                 text=True).stdout
            for line in out.splitlines():
                job, name, memory, cpus = line.split("|")
                self.jobs[job] = (name, memory, cpus)
            time.sleep(0.2)


def _same_outputs(out, reference):
    for k in (20, 40):
        stem = STEM.format(k=k)
        labels = [np.asanyarray(nb.load(folder / f"{stem}_dseg.nii.gz").dataobj)
                  for folder in (out, reference)]
        assert np.array_equal(*labels)
        for suffix in ("_stat-mean_timeseries.tsv", "_dseg.tsv"):
            assert (out / f"{stem}{suffix}").read_bytes() \
                == (reference / f"{stem}{suffix}").read_bytes()


@pytest.fixture(scope="session")
def multiproc_output(fmriprep_dir, tmp_path_factory):
    """The outputs under MultiProc (2 processes), checked equal to those under Linear."""
    outputs = []
    for plugin in ("MultiProc", "Linear"):
        root = tmp_path_factory.mktemp(plugin)
        proc = subprocess.run(_command(fmriprep_dir, root / "out", root / "work",
                                       "--plugin", plugin, "--nprocs", 2),
                              capture_output=True, text=True, timeout=900, cwd=root)
        assert proc.returncode == 0, proc.stderr
        outputs.append(root / "out")
    _same_outputs(*outputs)
    return outputs[0]


def test_slurm_runs_every_node_as_a_job_and_gives_multiprocs_outputs(
        slurm, fmriprep_dir, multiproc_output, tmp_path):
    queue = _Queue()
    queue.start()
    proc = subprocess.run(_command(fmriprep_dir, tmp_path / "out", tmp_path / "work",
                                   "--plugin", "SLURM"),
                          capture_output=True, text=True, timeout=900, cwd=tmp_path,
                          env=_environment())
    queue.stop.set()
    queue.join()
    assert proc.returncode == 0, proc.stderr
    # Submitted with sbatch, run by slurmd: each job's log is in the batch folder.
    batch = tmp_path / "work" / "nipype_ward_wf" / "batch"
    logs = sorted(batch.glob("slurm-*.out"))
    scripts = sorted(batch.glob("batchscript_*.sh"))
    assert len(logs) >= 8 and len(scripts) == len(logs)
    names = {name for name, _, _ in queue.jobs.values()}
    assert any("prepare_signals" in name for name in names), names
    # Each job asked for its node's memory (at least 1 GB) and CPUs, as sbatch options.
    for name, memory, cpus in queue.jobs.values():
        value, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([MG])", memory).groups()
        assert float(value) * (1024 if unit == "G" else 1) >= 1024, (name, memory)
        assert cpus == "1"
    # Cheap nodes (cuts, tables, sinks) ran in the scheduler, not as jobs.
    assert not any(re.search(r"cut_tree|dseg_tables|ds_", name) for name in names), names
    _same_outputs(tmp_path / "out", multiproc_output)


def test_a_cancelled_job_is_one_line_and_a_rerun_resumes(slurm, fmriprep_dir, multiproc_output,
                                                         tmp_path):
    """The tree's job is cancelled once the series is prepared; the re-run reuses the series."""
    command = _command(fmriprep_dir, tmp_path / "out", tmp_path / "work", "--plugin", "SLURM")
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=tmp_path, env=_environment())
    cancelled = None
    deadline = time.monotonic() + 300
    while cancelled is None and time.monotonic() < deadline and run.poll() is None:
        out = subprocess.run(["squeue", "-h", "-o", "%i|%j|%T|%Z"], capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            job, name, state, folder = line.split("|")
            # This run's own job (submitted from its work folder): other tests' runs may
            # have jobs of the same name in the queue at the same time.
            if name.startswith("ward_tree.") and state == "RUNNING" \
                    and folder.startswith(str(tmp_path)):
                subprocess.run(["scancel", job], check=True)
                cancelled = job
        time.sleep(0.2)
    stdout, stderr = run.communicate(timeout=600)
    assert cancelled is not None, "the ward_tree job was never seen running"
    assert run.returncode == 1
    assert stderr.count("\n") == 1 and "Traceback" not in stdout + stderr, stderr
    assert "ward_parcellation_wf.ward_tree: its batch job " + cancelled \
        + " ended without a result" in stderr
    assert "run the same command again" in stderr
    (prepared,) = (tmp_path / "work").rglob("prepare_signals/result_prepare_signals.pklz")
    before = prepared.stat().st_mtime_ns
    # The same command with the same work folder finishes, from the cache.
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path,
                          env=_environment())
    assert proc.returncode == 0, proc.stderr
    assert prepared.stat().st_mtime_ns == before  # the series was not prepared again
    _same_outputs(tmp_path / "out", multiproc_output)


def test_graph_plugins_and_bad_plugin_files_are_refused(fmriprep_dir, tmp_path):
    plugin_file = tmp_path / "plugin.yml"
    plugin_file.write_text("plugin: SLURMGraph\nplugin_args: {dont_resubmit_completed_jobs: true}\n")
    for extra, message in (
            (("--plugin", "SLURMGraph"), "returns before its jobs end"),
            (("--use-plugin", plugin_file), "returns before its jobs end"),
            (("--use-plugin", tmp_path / "missing.yml"), "--use-plugin: no such file")):
        proc = subprocess.run(_command(fmriprep_dir, tmp_path / "out", tmp_path / "work", *extra),
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert not (tmp_path / "out").exists()


def test_plugin_file_and_per_node_batch_options(tmp_path):
    from nipype_ward.cli._running import request_resources
    from nipype_ward.cli.parser import parse_settings
    from nipype_ward.workflows import init_ward_parcellation_wf

    plugin_file = tmp_path / "plugin.yml"
    plugin_file.write_text("plugin: SLURM\nplugin_args:\n  sbatch_args: --partition=short\n"
                           "  max_jobs: 8\n")
    settings = parse_settings([str(tmp_path), str(tmp_path / "out"), "participant",
                               "--use-plugin", str(plugin_file), "--plugin-args", "max_jobs=4"])
    assert settings.plugin == "SLURM"
    assert settings.plugin_args == {"sbatch_args": "--partition=short", "max_jobs": 4}
    wf = init_ward_parcellation_wf(n_clusters=(10,), mem_gb={"prepare": 6.8, "tree": 0.3})
    assert request_resources(wf, "SLURM") > 0
    nodes = {node.name: node for node in wf._get_all_nodes()}
    # ceil(6.8 x 1024) MB; 0.3 GB is raised to the 1 GB floor.
    assert nodes["prepare_signals"].plugin_args == {
        "sbatch_args": "--mem=6964M --cpus-per-task=1", "overwrite": False}
    assert nodes["ward_tree"].plugin_args["sbatch_args"] == "--mem=1024M --cpus-per-task=1"
    assert nodes["cut_tree"].plugin_args == {}  # run by the scheduler itself


def test_the_group_level_reduces_each_subject_in_its_own_job(slurm, fmriprep_dir, tmp_path):
    queue = _Queue()
    queue.start()
    # MIGP to 50 features: each subject (240 and 120 volumes) is reduced on its own first,
    # one job a subject (with fewer volumes than that, the group series reads the runs).
    proc = subprocess.run(
        [sys.executable, "-m", "nipype_ward.cli.run", str(fmriprep_dir), str(tmp_path / "out"),
         "group", "--n-clusters", "20", "--group-reduction", "migp", "--group-dimensions", "50",
         "-w", str(tmp_path / "work"), "--plugin", "SLURM"], capture_output=True, text=True,
        timeout=900, cwd=tmp_path, env=_environment())
    queue.stop.set()
    queue.join()
    assert proc.returncode == 0, proc.stderr
    names = [name for name, _, _ in queue.jobs.values()]
    for subject in ("01", "02"):  # one job per subject, then the group tree once
        assert sum(name.startswith(f"reduce_sub_{subject}.") for name in names) == 1, names
    assert sum(name.startswith("ward_tree.group_") for name in names) == 1, names
    atlas = tmp_path / "out" / "atlases" / "tpl-MNI152NLin2009cAsym" \
        / "tpl-MNI152NLin2009cAsym_atlas-ward20_dseg.nii.gz"
    assert np.unique(np.asanyarray(nb.load(atlas).dataobj)).size == 21
