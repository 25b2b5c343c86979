"""Inputs the audit of issue #24 found mishandled, through the real command lines.

Each bad input is one line on stderr naming the file, the problem and what
to do (exit 1; a bad option or filter file is a usage error, exit 2), found
before any subject is processed, with nothing written. The inputs that are
fine (no confounds table without a confounds strategy, an uncompressed
``.nii``, a multi-member gzip) give the results their usual form gives.
References are computed here, by nilearn, scikit-learn or the file's bytes,
never by the code under test.
"""

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
import pytest
from conftest import RUNS, SPACE, SPIKES, run_app
from scipy import ndimage

SEED = Path(__file__).parents[1] / "workflows" / "rest_clustering.py"
N_VOLUMES = 120  # conftest.FMRIPREP_SIM


def assert_one_line_error(proc, prog, expected):
    """Exit 1, ``expected`` as the only line on stderr, no traceback, no Nipype log."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [f"{prog}: error: {expected}"], proc.stderr
    for text in (proc.stdout, proc.stderr):
        assert "Traceback" not in text and " ERROR" not in text


def assert_usage_error(proc, prog, expected):
    """Exit 2, argparse's usage then ``expected`` as the last line, nothing else."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("usage: ") and lines[-1] == f"{prog}: error: {expected}", \
        proc.stderr


@pytest.fixture(scope="module")
def volumes_dir(tmp_path_factory):
    """The fMRIPrep test dataset without its surface files, FD spikes at SPIKES."""
    from conftest import write_fmriprep_dataset

    return write_fmriprep_dataset(tmp_path_factory.mktemp("volumes") / "fmriprep",
                                  spikes=SPIKES, surfaces=False)


def _linked_copy(source, target):
    """A copy of a dataset made of hard links: change a file by replacing it, never in place."""
    shutil.copytree(source, target, copy_function=os.link)
    return target


def _sub02(dataset, suffix):
    return Path(dataset) / f"{RUNS[2]}_{suffix}"


def _bold(dataset, extension=".nii.gz"):
    return _sub02(dataset, f"{SPACE}_desc-preproc_bold{extension}")


def _run_sub02(dataset, tmp_path, *args, name="out"):
    """sub-02 alone, K = 10, no split half: the App as a user runs it."""
    return run_app(dataset, tmp_path / name, "participant", "--participant-label", "02",
                   "--n-clusters", 10, "--no-split-half", *args,
                   "-w", tmp_path / f"work_{name}", "--nprocs", 1, cwd=tmp_path)


def _labels(out):
    return np.asanyarray(nb.load(out / f"{RUNS[2]}_{SPACE}_seg-ward_scale-10_dseg.nii.gz")
                         .dataobj)


@pytest.fixture(scope="module")
def reference_labels(volumes_dir, tmp_path_factory):
    """sub-02's labels at K = 10 from the dataset as fMRIPrep writes it (.nii.gz)."""
    root = tmp_path_factory.mktemp("reference")
    proc = _run_sub02(volumes_dir, root)
    assert proc.returncode == 0, proc.stderr
    return _labels(root / "out")


# --------------------------------------------------------------------------
# 7. --confounds-strategy none needs no confounds table
# --------------------------------------------------------------------------
def test_no_confounds_table_is_needed_without_a_strategy(volumes_dir, tmp_path):
    # XCP-D's denoised series, say: no desc-confounds_timeseries.tsv beside them.
    dataset = _linked_copy(volumes_dir, tmp_path / "denoised")
    for path in dataset.rglob("*_desc-confounds_timeseries.*"):
        path.unlink()
    proc = _run_sub02(dataset, tmp_path, "--confounds-strategy", "none", "--write-provenance")
    assert proc.returncode == 0, proc.stderr
    stem = tmp_path / "out" / f"{RUNS[2]}_{SPACE}_seg-ward_scale-10"
    sidecar = json.loads(Path(f"{stem}_dseg.json").read_text())
    assert sidecar["Parameters"]["preparation"]["confounds_strategy"] is None
    assert [uri.rsplit("/", 1)[1] for uri in sidecar["Sources"]] == [
        _bold(dataset).name, _sub02(dataset, f"{SPACE}_desc-brain_mask.nii.gz").name]
    assert (_labels(tmp_path / "out") > 0).sum() > 0
    # A strategy reads the table: its absence is still an error naming the BOLD.
    proc = _run_sub02(dataset, tmp_path, name="out_simple")
    assert_one_line_error(
        proc, "nipype-ward",
        f"{_bold(dataset)}: no desc-confounds_timeseries.tsv for this run, which the "
        "confounds strategy reads: give fMRIPrep's confounds, or use --confounds-strategy "
        "none for a series denoised already")
    assert not (tmp_path / "out_simple").exists()


@pytest.mark.parametrize("level", ["participant", "group"])
def test_runs_without_confounds_build_every_workflow(volumes_dir, tmp_path, level):
    """Combined runs, atlases, provenance and the group level take runs without a table."""
    from nipype_ward.bids import collect_runs
    from nipype_ward.cli.parser import parse_settings
    from nipype_ward.workflows.base import init_nipype_ward_wf
    from nipype_ward.workflows.group import init_group_level_wf

    dataset = _linked_copy(volumes_dir, tmp_path / "denoised")
    for path in dataset.rglob("*_desc-confounds_timeseries.*"):
        path.unlink()
    extra = ["--combine-runs", "--atlas", f"own={_sub02(dataset, SPACE)}_desc-brain_mask.nii.gz"]
    settings = parse_settings([str(dataset), str(tmp_path / "out"), level, "--confounds-strategy",
                               "none", "--write-provenance",
                               *(extra if level == "participant"
                                 else ["--group-reduction", "exact"])])
    settings.output_dir.mkdir()  # as run_staged makes its staging folder
    runs = collect_runs(dataset, settings.selection, require_confounds=False)
    assert len(runs) == 3 and all(run.confounds is None for run in runs)
    build = init_nipype_ward_wf if level == "participant" else init_group_level_wf
    assert build(settings=settings, runs=runs).list_node_names()  # every node's inputs set and checked


# --------------------------------------------------------------------------
# 8. A confounds column of n/a only
# --------------------------------------------------------------------------
@pytest.mark.parametrize(("strategy", "columns"), [("simple", ["csf"]),
                                                   ("compcor", ["trans_x", "rot_z"])])
def test_a_confounds_column_without_values_stops_before_any_subject(volumes_dir, tmp_path,
                                                                    strategy, columns):
    dataset = _linked_copy(volumes_dir, tmp_path / "fmriprep")
    tsv = _sub02(dataset, "desc-confounds_timeseries.tsv")
    table = pd.read_csv(tsv, sep="\t")
    table[columns] = np.nan
    tsv.unlink()
    table.to_csv(tsv, sep="\t", index=False, na_rep="n/a")
    out = tmp_path / "out"
    proc = run_app(dataset, out, "participant", "--confounds-strategy", strategy,
                   "--n-clusters", 10, "--no-split-half", "-w", tmp_path / "work",
                   "--nprocs", 1, cwd=tmp_path)
    several = len(columns) > 1
    assert_one_line_error(
        proc, "nipype-ward",
        f"{tsv}: column{'s' * several} {', '.join(sorted(columns))} "
        f"{'have' if several else 'has'} no value, but the '{strategy}' strategy regresses "
        f"{'them' if several else 'it'} out: re-run fMRIPrep, or choose a strategy without "
        f"{'them' if several else 'it'}")
    assert not out.exists()  # sub-01 was not processed first


# --------------------------------------------------------------------------
# 9. Scrubbing: one line when too few volumes are left; --dvars-thresh
# --------------------------------------------------------------------------
def test_scrubbing_every_volume_is_one_line(volumes_dir, tmp_path):
    proc = _run_sub02(volumes_dir, tmp_path, "--confounds-strategy", "scrubbing",
                      "--fd-thresh", "0.01")
    assert_one_line_error(
        proc, "nipype-ward",
        f"{_sub02(volumes_dir, 'desc-confounds_timeseries.tsv')}: scrubbing keeps 0 of "
        f"{N_VOLUMES} volumes, fewer than the 2 needed: raise --fd-thresh or --dvars-thresh, "
        "or use another --confounds-strategy")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("threshold", [1.15, 1.2])
def test_dvars_threshold_censors_as_nilearn_says(volumes_dir, tmp_path, threshold):
    from nilearn.interfaces.fmriprep import load_confounds_strategy

    proc = _run_sub02(volumes_dir, tmp_path, "--confounds-strategy", "scrubbing",
                      "--dvars-thresh", threshold)
    assert proc.returncode == 0, proc.stderr
    bold = str(_bold(volumes_dir))
    _, kept = load_confounds_strategy(bold, denoise_strategy="scrubbing",
                                      std_dvars_threshold=threshold)
    _, kept_by_default = load_confounds_strategy(bold, denoise_strategy="scrubbing")
    censored = sorted(set(range(N_VOLUMES)) - set(kept.tolist()))
    assert len(kept) < len(kept_by_default)  # stricter than nilearn's 1.5: more censored
    stem = tmp_path / "out" / f"{RUNS[2]}_{SPACE}_seg-ward_scale-10"
    timing = json.loads(Path(f"{stem}_stat-mean_timeseries.json").read_text())
    assert timing["CensoredVolumes"] == censored
    assert pd.read_csv(f"{stem}_stat-mean_timeseries.tsv", sep="\t").shape == (len(kept), 10)
    parameters = json.loads(Path(f"{stem}_dseg.json").read_text())["Parameters"]
    assert parameters["preparation"]["dvars_threshold"] == threshold


@pytest.mark.parametrize(("args", "message"), [
    (["--dvars-thresh", "1.2"], "--dvars-thresh needs --confounds-strategy scrubbing"),
    (["--confounds-strategy", "scrubbing", "--dvars-thresh", "0"],
     "--dvars-thresh must be positive, got 0.0"),
    (["--confounds-strategy", "scrubbing", "--fd-thresh", "-1"],
     "--fd-thresh must be positive (mm), got -1.0"),
])
def test_bad_scrubbing_thresholds_are_usage_errors(volumes_dir, tmp_path, args, message):
    proc = run_app(volumes_dir, tmp_path / "out", "participant", *args, cwd=tmp_path)
    assert_usage_error(proc, "nipype-ward", message)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------
# 12. An uncompressed .nii BOLD
# --------------------------------------------------------------------------
def test_an_uncompressed_bold_gives_the_labels_of_the_compressed_one(volumes_dir, tmp_path,
                                                                     reference_labels):
    dataset = _linked_copy(volumes_dir, tmp_path / "fmriprep")
    compressed = _bold(dataset)
    nb.save(nb.load(compressed), _bold(dataset, ".nii"))
    compressed.unlink()
    proc = _run_sub02(dataset, tmp_path)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(_labels(tmp_path / "out"), reference_labels)


# --------------------------------------------------------------------------
# 13. No repetition time anywhere
# --------------------------------------------------------------------------
@pytest.mark.parametrize("args", [[], ["--high-pass", "0.01"]])
def test_no_repetition_time_is_one_line(volumes_dir, tmp_path, args):
    dataset = _linked_copy(volumes_dir, tmp_path / "fmriprep")
    bold = _bold(dataset)
    img = nb.load(bold)
    header = img.header.copy()
    header.set_zooms(header.get_zooms()[:3] + (0.0,))
    data = np.asanyarray(img.dataobj)
    bold.unlink()
    nb.save(nb.Nifti1Image(data, img.affine, header), bold)
    assert nb.load(bold).header["pixdim"][4] == 0
    sidecar = _bold(dataset, ".json")
    metadata = json.loads(sidecar.read_text())
    del metadata["RepetitionTime"]
    sidecar.unlink()
    sidecar.write_text(json.dumps(metadata))
    out = tmp_path / "out"
    proc = run_app(dataset, out, "participant", "--n-clusters", 10, "--no-split-half", *args,
                   "-w", tmp_path / "work", "--nprocs", 1, cwd=tmp_path)
    assert_one_line_error(
        proc, "nipype-ward",
        f"{bold}: neither its JSON sidecar nor its header gives the repetition time: add "
        "RepetitionTime (seconds) to its JSON sidecar")
    assert not out.exists()


# --------------------------------------------------------------------------
# 14a. A truncated gzip
# --------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["bold", "mask"])
def test_a_truncated_gzip_stops_before_any_subject(volumes_dir, tmp_path, which):
    dataset = _linked_copy(volumes_dir, tmp_path / "fmriprep")
    path = _bold(dataset) if which == "bold" else _sub02(
        dataset, f"{SPACE}_desc-brain_mask.nii.gz")
    content = path.read_bytes()
    path.unlink()
    path.write_bytes(content[: len(content) - 2000])  # an interrupted copy
    with pytest.raises(EOFError):  # what gzip itself says of it
        gzip.decompress(path.read_bytes())
    out = tmp_path / "out"
    proc = run_app(dataset, out, "participant", "--n-clusters", 10, "--no-split-half",
                   "-w", tmp_path / "work", "--nprocs", 1, cwd=tmp_path)
    assert_one_line_error(
        proc, "nipype-ward",
        f"{path}: truncated or corrupt gzip (Compressed file ended before the end-of-stream "
        "marker was reached): re-run fMRIPrep or copy the file again")
    assert not out.exists()  # sub-01 was not processed first


def test_a_multi_member_gzip_is_read_whole(volumes_dir, tmp_path, reference_labels):
    # bgzip and `cat a.gz b.gz` write several gzip members: the last four
    # bytes then give the last member's size only, not the file's.
    dataset = _linked_copy(volumes_dir, tmp_path / "fmriprep")
    bold = _bold(dataset)
    raw = gzip.decompress(bold.read_bytes())
    bold.unlink()
    cuts = [0, 1000, len(raw) // 3, len(raw)]
    bold.write_bytes(b"".join(gzip.compress(raw[a:b]) for a, b in zip(cuts, cuts[1:])))
    assert int.from_bytes(bold.read_bytes()[-4:], "little") != len(raw)
    assert gzip.decompress(bold.read_bytes()) == raw
    proc = _run_sub02(dataset, tmp_path)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(_labels(tmp_path / "out"), reference_labels)


# --------------------------------------------------------------------------
# 14b. Unknown entities in the filter file
# --------------------------------------------------------------------------
@pytest.mark.parametrize("value", [None, "x", "*"])
def test_an_unknown_filter_entity_is_a_usage_error(volumes_dir, tmp_path, value):
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"bold": {"session": None, "foobar": value}}))
    proc = run_app(volumes_dir, tmp_path / "out", "participant", "--bids-filter-file", filters,
                   cwd=tmp_path)
    assert_usage_error(
        proc, "nipype-ward",
        f"{filters}: the 'bold' query has the unknown entity 'foobar': use the entity names "
        "of pybids (subject, session, task, acquisition, run, echo, ...)")
    assert not (tmp_path / "out").exists()


def test_a_filter_entity_by_its_short_name_is_named_in_full(volumes_dir, tmp_path):
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"bold": {"acq": "mb4"}}))
    proc = run_app(volumes_dir, tmp_path / "out", "participant", "--bids-filter-file", filters,
                   cwd=tmp_path)
    assert_usage_error(
        proc, "nipype-ward",
        f"{filters}: the 'bold' query has the unknown entity 'acq': use the entity names "
        "of pybids (acquisition for acq-)")


# --------------------------------------------------------------------------
# 16. An EPI mask that collapses on skull-stripped data
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def skull_stripped():
    """A real resting-state series whose background is zero already (neuropycon-data).

    64 x 32 x 32 voxels of 1.5 x 1.5 x 2 mm, 88 volumes, int16, TR 2.5 s,
    skull-stripped: 53,339 of its 65,536 voxels are 0 in every volume.
    """
    from importlib import resources

    return Path(resources.files("neuropycon_data") / "data" / "data_nii"
                / "sub-test_task-rs_bold.nii")


def run_seed(*args, cwd):
    return subprocess.run([sys.executable, str(SEED), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_an_epi_mask_collapsing_on_skull_stripped_data_is_one_line(skull_stripped, tmp_path):
    from nilearn.image import mean_img
    from nilearn.masking import compute_epi_mask

    img = nb.load(skull_stripped)
    kept = int(np.asanyarray(compute_epi_mask(img).dataobj).sum())
    non_zero = int((mean_img(img).get_fdata() != 0).sum())
    assert (kept, non_zero) == (53, 12197)  # nilearn's opening erodes the brain away
    proc = run_seed("--bold", skull_stripped, "--n-clusters", 10, "--no-figures",
                    "--output-dir", tmp_path / "out", cwd=tmp_path)
    assert_one_line_error(
        proc, "rest_clustering",
        f"{skull_stripped}: the EPI mask keeps {kept:,} of its {non_zero:,} non-zero voxels "
        f"({kept / non_zero:.1%}): its background is zero already (81.4% of the voxels, as "
        "in skull-stripped data), which the EPI mask is not made for: use --mask-strategy "
        "background, or give a brain mask (--mask)")
    assert not (tmp_path / "out").exists()


def test_the_background_mask_strategy_is_nilearns(skull_stripped, tmp_path):
    from nilearn.masking import compute_background_mask

    out = tmp_path / "out"
    proc = run_seed("--bold", skull_stripped, "--mask-strategy", "background",
                    "--n-clusters", 10, "--no-figures", "--output-dir", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    img = nb.load(skull_stripped)
    reference = np.asanyarray(compute_background_mask(img).dataobj) > 0
    data = np.asanyarray(img.dataobj)
    constant = reference & (data.min(axis=3) == data.max(axis=3))  # 1 in every volume
    assert (reference.sum(), constant.sum()) == (12197, 7)
    mask = np.asanyarray(nb.load(out / "mask.nii.gz").dataobj) > 0
    np.testing.assert_array_equal(mask, reference & ~constant)
    # Left out as from any mask, and nilearn's mask is not one piece: two warnings.
    n_pieces = ndimage.label(mask)[1]
    constant_line, pieces_line = proc.stderr.splitlines()
    assert constant_line == (
        f"rest_clustering: warning: {skull_stripped}: 7 of the mask's 12197 voxels have a "
        "constant series (no signal): left out of the parcels (label 0), counted as "
        "n_voxels_constant")
    assert pieces_line.startswith("rest_clustering: warning: ")
    assert f": the mask is {n_pieces} separate pieces (" in pieces_line
    labels = np.asanyarray(nb.load(out / "ward10_labels.nii.gz").dataobj)
    assert ((labels > 0) == mask).all() and labels.max() == 10


def test_the_epi_mask_interface_takes_the_strategy(skull_stripped, tmp_path):
    from nilearn.masking import compute_background_mask

    from nipype_ward.interfaces import EPIMask

    result = EPIMask(in_file=str(skull_stripped), mask_strategy="background").run(
        cwd=str(tmp_path))
    reference = np.asanyarray(compute_background_mask(nb.load(skull_stripped)).dataobj) > 0
    np.testing.assert_array_equal(
        np.asanyarray(nb.load(result.outputs.mask_file).dataobj) > 0, reference)
    with pytest.raises(Exception, match="use --mask-strategy background"):
        EPIMask(in_file=str(skull_stripped)).run(cwd=str(tmp_path))


def test_an_empty_background_mask_is_refused(tmp_path):
    from nipype_ward.interfaces import EPIMask

    flat = tmp_path / "flat_bold.nii.gz"
    nb.save(nb.Nifti1Image(np.full((8, 8, 8, 3), 100.0, np.float32), np.eye(4)), flat)
    with pytest.raises(Exception, match="the background mask computed from it is empty"):
        EPIMask(in_file=str(flat), mask_strategy="background").run(cwd=str(tmp_path))


def test_a_mask_strategy_with_a_given_mask_is_a_usage_error(skull_stripped, tmp_path):
    proc = run_seed("--bold", skull_stripped, "--mask", skull_stripped, "--mask-strategy",
                    "background", "--output-dir", tmp_path / "out", cwd=tmp_path)
    assert_usage_error(proc, "rest_clustering",
                       "--mask-strategy computes a mask: give it or --mask, not both")
