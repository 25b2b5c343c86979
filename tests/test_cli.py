"""The seed pipeline (workflows/rest_clustering.py), run as a user runs it."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest
from matplotlib import image as mpimg

SCRIPT = Path(__file__).parents[1] / "workflows" / "rest_clustering.py"


def run_script(*args, cwd):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=600,
    )


def test_seed_pipeline_on_a_bold_file(small_data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    proc = run_script("--bold", small_data["bold"], "--n-clusters", 20, 80,
                      "--output-dir", out, "--nprocs", 1, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for k in (20, 80):
        assert any(line.startswith(f"Ward agglomeration {k} clusters: ") for line in lines)
        assert any(line.startswith(f"{k} parcels: R2 = ") for line in lines)
        labels = np.asanyarray(nb.load(out / f"ward{k}_labels.nii.gz").dataobj)
        assert labels.max() == k
        metrics = json.loads((out / f"ward{k}_metrics.json").read_text())
        assert metrics["n_parcels"] == k
        assert f"R2 = {metrics['r2']:.3f}" in proc.stdout
        for figure in (f"ward{k}_parcellation.png", f"ward{k}_compression.png"):
            pixels = mpimg.imread(out / figure)
            assert pixels.shape[0] > 200 and pixels.std() > 0.05  # a real picture
        compressed = nb.load(out / f"ward{k}_compressed.nii.gz")
        assert compressed.shape == nb.load(small_data["bold"]).shape
    assert (out / "notes.txt").read_text() == "the user's own file"
    assert not list(out.glob(".staging-*"))
    assert (out / "ward_tree.npz").exists() and (out / "mask.nii.gz").exists()
    # Nipype's work folder is ./work, as the BIDS App's -w and fMRIPrep's.
    assert (tmp_path / "work" / "rest_clustering_wf").is_dir() and not (out / "work").exists()
    assert "(cached)" not in proc.stdout

    # Run again with one K changed: what Nipype's cache gave is said, per step.
    proc = run_script("--bold", small_data["bold"], "--n-clusters", 20, 40,
                      "--output-dir", tmp_path / "again", "--nprocs", 1, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for start in ("BOLD read once, masked and prepared: ", "Ward tree (and its two split-half",
                  "Ward agglomeration 20 clusters: "):
        (line,) = [line for line in lines if line.startswith(start)]
        assert line.endswith("s (cached)"), line
    (line,) = [line for line in lines if line.startswith("Ward agglomeration 40 clusters: ")]
    assert line.endswith("s"), line  # cut now, not cached
    assert f"(cached): not run again, taken from Nipype's cache in {tmp_path / 'work'}" \
        in proc.stdout


def test_multiproc_gives_the_same_files_as_linear(small_data, tmp_path):
    outputs = {}
    for plugin in ("Linear", "MultiProc"):
        out = tmp_path / plugin
        proc = run_script("--bold", small_data["bold"], "--n-clusters", 15, 40, "--no-figures",
                          "--plugin", plugin, "--nprocs", 2, "--output-dir", out, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        outputs[plugin] = out
    for name in ("ward15_labels.nii.gz", "ward40_labels.nii.gz", "ward15_timeseries.tsv",
                 "ward40_timeseries.tsv", "ward40_compressed.nii.gz", "ward_tree.npz"):
        assert (outputs["Linear"] / name).read_bytes() == (outputs["MultiProc"] / name).read_bytes()


def assert_no_traceback(proc):
    """Neither stream holds a traceback nor a Nipype ERROR log line.

    Nipype logs a failed node's traceback on stdout, as lines such as
    ``260101-12:00:00,123 nipype.workflow ERROR:``; Python's own go to stderr.
    """
    for name, text in (("stdout", proc.stdout), ("stderr", proc.stderr)):
        assert "Traceback" not in text, f"{name}:\n{text}"
        assert " ERROR" not in text, f"{name}:\n{text}"


def _results(folder):
    return sorted(p.name for p in folder.glob("ward*")) if folder.exists() else []


def test_3d_bold_is_one_clear_error(small_data, tmp_path):
    vol = tmp_path / "vol.nii.gz"
    img = nb.load(small_data["bold"])
    nb.save(nb.Nifti1Image(img.get_fdata()[..., 0], img.affine), vol)
    proc = run_script("--bold", vol, "--output-dir", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"rest_clustering: error: {vol}: expected a 4D image, got shape {img.shape[:3]}"
    ]
    assert _results(tmp_path / "out") == []


def test_k_larger_than_the_given_mask(small_data, tmp_path):
    n_voxels = int((nb.load(small_data["mask"]).get_fdata() > 0).sum())
    proc = run_script("--bold", small_data["bold"], "--mask", small_data["mask"],
                      "--n-clusters", 10, n_voxels + 1, "--output-dir", tmp_path / "out",
                      cwd=tmp_path)
    assert proc.returncode == 1
    assert f"cannot make {n_voxels + 1} parcels from a mask of {n_voxels} voxels" in proc.stderr
    assert str(small_data["mask"]) in proc.stderr
    assert_no_traceback(proc)
    assert _results(tmp_path / "out") == []


def test_k_larger_than_the_epi_mask_fails_in_the_workflow(small_data, tmp_path):
    proc = run_script("--bold", small_data["bold"], "--n-clusters", 100000,
                      "--output-dir", tmp_path / "out", "--nprocs", 1, cwd=tmp_path)
    assert proc.returncode == 1
    assert "cannot make 100000 parcels from a mask of" in proc.stderr
    assert_no_traceback(proc)
    assert _results(tmp_path / "out") == []


@pytest.mark.parametrize("args", [["--n-clusters", "0"], ["--n-clusters", "5", "5"],
                                  ["--neighbourhood", "7"], ["--nprocs", "0"],
                                  ["--omp-nthreads", "0"]])
def test_bad_arguments(args, tmp_path):
    proc = run_script(*args, "--output-dir", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 2
    assert "error:" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_seed_pipeline_with_preparation(small_data, tmp_path):
    confounds = tmp_path / "confounds.tsv"
    n_volumes = nb.load(small_data["bold"]).shape[3]
    rng = np.random.default_rng(0)
    confounds.write_text(
        "trans_x\ttrans_y\n" + "\n".join(f"{a:.4f}\t{b:.4f}" for a, b in
                                        rng.standard_normal((n_volumes, 2)))
    )
    out = tmp_path / "out"
    proc = run_script("--bold", small_data["bold"], "--n-clusters", 30, "--output-dir", out,
                      "--nprocs", 1, "--standardize", "zscore_sample", "--detrend",
                      "--high-pass", 0.01, "--t-r", 2.0, "--confounds", confounds,
                      "--confounds-columns", "trans_x", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "ward30_metrics.json").read_text())
    assert metrics["preparation"] == {
        "standardize": "zscore_sample", "detrend": True, "high_pass": 0.01, "low_pass": None,
        "t_r": 2.0, "confounds_file": str(confounds), "confounds_columns": ["trans_x"],
        "confounds_strategy": None, "fd_threshold": None, "dvars_threshold": None,
    }


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [(["--confounds-columns", "nope"], "no column named 'nope'", 1),
     (["--high-pass", "0.3"], "below the Nyquist frequency (0.25 Hz for a TR of 2 s)", 1),
     (["--high-pass", "0.3", "--t-r", "2"], "below the Nyquist frequency", 2)],
)
def test_bad_preparation_fails_before_any_work(small_data, tmp_path, args, message, code):
    confounds = tmp_path / "confounds.tsv"
    n_volumes = nb.load(small_data["bold"]).shape[3]
    confounds.write_text("trans_x\n" + "\n".join("0.1" for _ in range(n_volumes)))
    proc = run_script("--bold", small_data["bold"], "--confounds", confounds, *args,
                      "--output-dir", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == code
    assert message in proc.stderr
    assert_no_traceback(proc)
    assert not (tmp_path / "out" / "work").exists() and not (tmp_path / "work").exists()


def test_adhd_dataset_offline(small_data, tmp_path, monkeypatch):
    """--dataset adhd goes through nilearn's fetcher, which finds the files on disk."""
    from conftest import write_fake_adhd

    paths = write_fake_adhd(tmp_path / "nilearn_data", func_img=nb.load(small_data["bold"]))
    func = next(iter(paths.values()))[0]
    # No route to the internet: any download attempt fails at once.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    proc = run_script("--dataset", "adhd", "--data-dir", tmp_path / "nilearn_data",
                      "--n-clusters", 25, "--no-figures", "--nprocs", 1,
                      "--output-dir", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"Using the adhd dataset: {func}" in proc.stdout
    assert np.asanyarray(nb.load(tmp_path / "out" / "ward25_labels.nii.gz").dataobj).max() == 25


@pytest.mark.slow
def test_the_readme_demo_on_the_embedded_data(tmp_path, monkeypatch, embedded_data):
    """The README's first command, as a new user runs it (data generated offline, once)."""
    monkeypatch.setenv("NIPYPE_WARD_DATA", str(embedded_data["data_dir"]))
    out = tmp_path / "ward_out"
    proc = run_script("--output-dir", out, "--standardize", "zscore_sample", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Using the simulated dataset" in proc.stdout
    for k in (1000, 2000):
        assert f"Ward agglomeration {k} clusters: " in proc.stdout
        metrics = json.loads((out / f"ward{k}_metrics.json").read_text())
        assert metrics["n_parcels"] == k and metrics["n_noncontiguous"] == 0
        # Standardized Ward on the simulation: balanced parcels, close to the truth.
        assert metrics["parcel_size_max"] < 10 * metrics["parcel_size_median"]
        assert metrics["true_regions_ami"] > 0.7
        assert (out / f"ward{k}_parcellation.png").stat().st_size > 10_000
    print(proc.stdout)  # the figures quoted in the closing notes


EXITING = textwrap.dedent("""
    import atexit, pathlib, sys, tempfile, threading, time
    from concurrent.futures import ThreadPoolExecutor

    from nipype_ward.cli._running import exit_after

    out, status = pathlib.Path(sys.argv[1]), sys.argv[2]


    class Teardown:
        def __del__(self):  # runs only if Python tears its modules down
            (out / "teardown").write_text("ran")


    KEPT = Teardown()


    def main():
        atexit.register(lambda: (out / "atexit").write_text("ran"))

        def late():
            time.sleep(0.3)
            (out / "thread").write_text("joined")

        threading.Thread(target=late).start()
        ThreadPoolExecutor(1).submit(time.sleep, 0.2)  # never shut down by main
        main.folder = tempfile.TemporaryDirectory(dir=out)  # removed at exit
        sys.stdout.write("buffered, no newline")
        if status == "message":
            sys.exit("nipype-ward: error: a message")
        return int(status)


    exit_after(main)
""")


@pytest.mark.parametrize("status", ["0", "3", "message"])
def test_a_command_ends_after_what_python_runs_at_exit(tmp_path, status):
    # The commands end with os._exit once Python's exit work is done: other
    # threads joined (executors shut down), atexit handlers run (temporary
    # folders removed), streams flushed; only the teardown of the modules is
    # skipped (0.5 s of every command).
    script = tmp_path / "command.py"
    script.write_text(EXITING)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, str(script), str(out), status],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == (1 if status == "message" else int(status))
    assert proc.stdout == "buffered, no newline"
    assert proc.stderr == ("nipype-ward: error: a message\n" if status == "message" else "")
    assert (out / "atexit").read_text() == "ran"
    assert (out / "thread").read_text() == "joined"
    assert not [path for path in out.iterdir() if path.is_dir()], "temporary folder left"
    assert not (out / "teardown").exists(), "the modules were torn down"
