"""The group level: reductions against NumPy, the CLI against scikit-learn, nilearn, pybids
and the BIDS validator, on the small fMRIPrep-shaped dataset of conftest."""

import json
import re
import subprocess
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
import pytest
from conftest import RUNS, SPACE, run_app
from scipy import ndimage

from nipype_ward.core.reduction import (
    choose_reduction,
    concatenate,
    migp,
    reduce_features,
    split_subjects,
)

K = (20, 50)
TEMPLATE = "MNI152NLin2009cAsym"
N_VOLUMES = 120  # conftest.FMRIPREP_SIM

#: The issue's statement of XCP-D 26's atlas pattern (xcp_d/utils/atlas.py,
#: collect_atlases), written out as a regular expression.
XCPD_PATTERN = re.compile(
    r"^tpl-(?P<template>[a-zA-Z0-9+]+)/tpl-(?P=template)_atlas-(?P<atlas>[a-zA-Z0-9]+)"
    r"(_res-[a-zA-Z0-9]+)?(_den-[a-zA-Z0-9]+)?(_desc-[a-zA-Z0-9]+)?_dseg\.(nii\.gz|tsv|json)$"
)


# --------------------------------------------------------------------------
# The reductions, against NumPy's SVD
# --------------------------------------------------------------------------
def test_reduce_features_is_the_best_low_rank_gram(rng):
    X = rng.normal(size=(300, 40))
    reduced = reduce_features(X, 10)
    assert reduced.shape == (300, 10)
    U, S, _ = np.linalg.svd(X, full_matrices=False)
    np.testing.assert_allclose(reduced @ reduced.T, (U[:, :10] * S[:10] ** 2) @ U[:, :10].T,
                               rtol=1e-8, atol=1e-8)
    # Fewer features than components: nothing to reduce.
    np.testing.assert_array_equal(reduce_features(X[:, :8], 10), X[:, :8])


def test_migp_of_a_small_group_keeps_the_gram_of_the_concatenation(rng):
    blocks = [rng.normal(size=(200, 30)) for _ in range(3)]  # 90 features <= 100
    exact = np.hstack(blocks)
    np.testing.assert_array_equal(concatenate(blocks), exact)
    running = migp(iter(blocks), 100)
    np.testing.assert_allclose(running @ running.T, exact @ exact.T, rtol=1e-9, atol=1e-9)


def test_migp_recovers_a_low_rank_group_exactly(rng):
    # Every subject mixes the same 6 spatial maps: the group has rank 6, so 8
    # components lose nothing although the group has 4 x 50 = 200 volumes.
    maps = rng.normal(size=(250, 6))
    blocks = [maps @ rng.normal(size=(6, 50)) for _ in range(4)]
    exact = np.hstack(blocks)
    running = migp(blocks, 8)
    assert running.shape == (250, 8)
    np.testing.assert_allclose(running @ running.T, exact @ exact.T, rtol=1e-7, atol=1e-7)


def _numpy_migp(blocks, m):
    """MIGP as Smith et al. (2014) write it, with NumPy's SVD (the test's reference)."""
    running = None
    for block in blocks:
        running = block if running is None else np.hstack([running, block])
        if running.shape[1] > m:
            U, S, _ = np.linalg.svd(running, full_matrices=False)
            running = U[:, :m] * S[:m]
    return running


def test_migp_truncated_equals_numpys_migp(rng):
    blocks = [rng.normal(size=(150, 40)) for _ in range(5)]
    ours, reference = migp(blocks, 30), _numpy_migp(blocks, 30)
    np.testing.assert_allclose(ours @ ours.T, reference @ reference.T, rtol=1e-7, atol=1e-7)


def test_migp_of_float32_series_runs_in_float32(rng):
    blocks = [rng.normal(size=(300, 40)).astype(np.float32) for _ in range(5)]
    ours = migp(blocks, 30)
    reference = _numpy_migp([block.astype(np.float64) for block in blocks], 30)
    assert ours.dtype == np.float32 and reduce_features(blocks[0], 20).dtype == np.float32
    gram, expected = ours.astype(np.float64) @ ours.T, reference @ reference.T
    np.testing.assert_allclose(gram, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def _runs_on_disk(tmp_path, rng):
    """Three runs of two subjects in three masks of one 4x4x3 grid, and their group mask."""
    masks = [rng.random((4, 4, 3)) < 0.9 for _ in range(3)]
    common = np.logical_and.reduce(masks)
    runs = []
    for i, (mask, n_volumes) in enumerate(zip(masks, (7, 5, 6))):
        nb.save(nb.Nifti1Image(mask.astype(np.uint8), np.eye(4)), tmp_path / f"mask{i}.nii.gz")
        series = rng.normal(size=(int(mask.sum()), n_volumes)).astype(np.float32)
        np.save(tmp_path / f"series{i}.npy", series)
        runs.append((series, mask))
    nb.save(nb.Nifti1Image(common.astype(np.uint8), np.eye(4)), tmp_path / "group.nii.gz")
    infos = [{"source": f"run{i}", "t_r": 2.0, "n_volumes": n, "preparation": None}
             for i, n in enumerate((7, 5, 6))]
    files = ([str(tmp_path / f"series{i}.npy") for i in range(3)],
             [str(tmp_path / f"mask{i}.nii.gz") for i in range(3)], infos)
    return runs, common, files


def test_group_series_of_runs_restricts_and_concatenates_as_numpy_does(tmp_path, rng):
    from nipype_ward.steps import group_series_of_runs

    runs, common, (series, masks, infos) = _runs_on_disk(tmp_path, rng)
    # sub-b's two runs (2, 0 in that order), then sub-a's run 1: subjects sorted.
    subjects = ["b", "a", "b"]
    parts = [runs[i][0][common[runs[i][1]]] for i in range(3)]
    per_subject = [parts[1], np.hstack([parts[0], parts[2]])]
    out = tmp_path / "group.npy"
    info, records = group_series_of_runs(series, masks, infos, subjects,
                                         str(tmp_path / "group.nii.gz"), out,
                                         reduction="exact")
    assert [r["subject"] for r in records] == ["a", "b"] == info["subjects"]
    assert [r["n_volumes"] for r in records] == [5, 13] and info["n_volumes_total"] == 18
    np.testing.assert_array_equal(np.load(out), np.hstack(per_subject))


def test_group_series_of_runs_migp_is_numpys_and_refuses_a_long_subject(tmp_path, rng):
    from nipype_ward.steps import group_series_of_runs

    runs, common, (series, masks, infos) = _runs_on_disk(tmp_path, rng)
    parts = [runs[i][0][common[runs[i][1]]].astype(np.float64) for i in range(3)]
    group = str(tmp_path / "group.nii.gz")
    group_series_of_runs(series, masks, infos, ["a", "b", "c"], group, tmp_path / "g.npy",
                         reduction="migp", n_components=8)
    ours = np.load(tmp_path / "g.npy").astype(np.float64)
    reference = _numpy_migp(parts, 8)
    np.testing.assert_allclose(ours @ ours.T, reference @ reference.T, rtol=0,
                               atol=1e-5 * np.abs(reference @ reference.T).max())
    with pytest.raises(ValueError, match="subject b has 13 volumes, more than n_components"):
        group_series_of_runs(series, masks, infos, ["b", "a", "b"], group, tmp_path / "h.npy",
                             reduction="migp", n_components=8)


def test_auto_reduction_is_exact_up_to_half_a_gigabyte_of_float32():
    # 69,765 voxels (the 3 mm grid's brain): 1,791 volumes take 499,796,460 bytes,
    # 1,792 volumes 500,075,520.
    assert choose_reduction(69765, 1791, 500) == "exact"
    assert choose_reduction(69765, 1792, 500) == "migp"
    # Up to n_components volumes MIGP truncates nothing: exact, however many voxels.
    assert choose_reduction(10**7, 500, 500) == "exact"
    assert choose_reduction(10**7, 501, 500) == "migp"


def test_bad_reductions_are_refused(rng):
    with pytest.raises(ValueError, match="n_components must be a positive integer"):
        reduce_features(rng.normal(size=(5, 4)), 0)
    with pytest.raises(ValueError, match="different voxel counts"):
        migp([rng.normal(size=(5, 4)), rng.normal(size=(6, 4))], 3)
    with pytest.raises(ValueError, match="no subject"):
        migp([], 3)
    assert split_subjects(["03", "01", "02"]) == (["01", "03"], ["02"])
    with pytest.raises(ValueError, match="at least two subjects"):
        split_subjects(["01"])


# --------------------------------------------------------------------------
# The CLI's group level
# --------------------------------------------------------------------------
def _zscored(fmriprep_dir, run, mask):
    """A run's BOLD in ``mask``, each voxel z-scored by nilearn: volumes x voxels."""
    from nilearn import signal

    bold = nb.load(fmriprep_dir / f"{run}_{SPACE}_desc-preproc_bold.nii.gz")
    return signal.clean(bold.get_fdata(dtype=np.float32)[mask].T, standardize="zscore_sample",
                        detrend=False, filter=False, t_r=2.0, ensure_finite=False)


def _common_mask(fmriprep_dir):
    masks = [nb.load(fmriprep_dir / f"{run}_{SPACE}_desc-brain_mask.nii.gz").get_fdata() > 0
             for run in RUNS]
    return np.logical_and.reduce(masks)


@pytest.fixture(scope="module")
def group_output(fmriprep_dir, tmp_path_factory):
    """A participant run, then the group level, measured, with the same work dir (no confounds)."""
    root = tmp_path_factory.mktemp("group")
    common = ["--n-clusters", *K, "--confounds-strategy", "none", "-w", root / "work",
              "--nprocs", 2]
    proc = run_app(fmriprep_dir, root / "out", "participant", *common, cwd=root)
    assert proc.returncode == 0, proc.stderr
    series = sorted((root / "work").rglob("prepare_signals/*_series.npy"))
    assert len(series) == 3
    mtimes = [path.stat().st_mtime_ns for path in series]
    proc = run_app(fmriprep_dir, root / "out", "group", *common, "--group-quality", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "exact reduction" in proc.stdout
    return {"root": root, "out": root / "out", "atlases": root / "out" / "atlases",
            "series": series, "mtimes": mtimes, "stdout": proc.stdout}


def test_group_reuses_the_participant_levels_prepared_series(group_output):
    assert [path.stat().st_mtime_ns for path in group_output["series"]] == group_output["mtimes"]


def test_atlas_files_follow_xcpds_pattern_and_pybids_finds_them(group_output):
    from bids.layout import BIDSLayout

    atlases = group_output["atlases"]
    names = sorted(path.relative_to(atlases).as_posix()
                   for path in atlases.glob("tpl-*/*"))
    expected = [f"tpl-{TEMPLATE}/tpl-{TEMPLATE}_atlas-ward{k}_dseg.{ext}"
                for k in K for ext in ("json", "nii.gz", "tsv")]
    assert names == sorted(expected)
    assert all(XCPD_PATTERN.match(name) for name in names)
    description = json.loads((atlases / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    # The query XCP-D's collect_atlases makes, with pybids and a template entity.
    template = {"name": "atlas_test", "entities": [
        {"name": "template", "pattern": r"[_/\\]+tpl-([a-zA-Z0-9+]+)", "directory": "{template}"}
    ]}
    layout = BIDSLayout(atlases, config=["bids", "derivatives", template], validate=False)
    for k in K:
        (image,) = layout.get(atlas=f"ward{k}", suffix="dseg", extension=[".nii.gz", ".nii"],
                              template=TEMPLATE, return_type="file")
        table = pd.read_csv(layout.get_nearest(image, extension=".tsv", strict=False), sep="\t")
        assert {"index", "name"} <= set(table.columns)
        assert table["index"].tolist() == list(range(1, k + 1))
        meta = json.loads(Path(layout.get_nearest(image, extension=".json", strict=True))
                          .read_text())
        assert meta["NumberOfParcels"] == k and meta["Subjects"] == ["01", "02"]
        assert len(meta["Sources"]) == 6  # 3 BOLD, 3 masks (no confounds used)
        assert meta["Reduction"]["reduction"] == "exact"
        assert meta["Reduction"]["n_features"] == 3 * N_VOLUMES
        assert (atlases / f"atlas-ward{k}_description.json").is_file()


def test_atlas_dataset_passes_the_bids_validator(group_output):
    for folder in (group_output["atlases"], group_output["out"]):
        proc = subprocess.run(["bids-validator-deno", "--json", str(folder)],
                              capture_output=True, text=True, timeout=300)
        issues = json.loads(proc.stdout)["issues"]["issues"]
        assert [(i["code"], i.get("location")) for i in issues if i["severity"] == "error"] == []


def test_group_report_shows_every_atlas_and_its_figures(group_output):
    atlases = group_output["atlases"]
    html = (atlases / "report.html").read_text()
    for k in K:
        assert f"<h3>K = {k}</h3>" in html
        for kind in ("parcellation", "quality"):
            figure = f"figures/tpl-{TEMPLATE}_atlas-ward{k}_desc-{kind}_dseg.png"
            assert f'src="{figure}"' in html
            assert (atlases / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert html.count("bids:preprocessed:sub-") == 3 * len(K)  # a row per run and K


def test_group_atlas_is_scikit_learns_ward_on_the_concatenated_runs(group_output, fmriprep_dir):
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.image import grid_to_graph
    from sklearn.metrics import adjusted_rand_score

    common = _common_mask(fmriprep_dir)
    connectivity = grid_to_graph(*common.shape, mask=common)
    runs = {run: _zscored(fmriprep_dir, run, common) for run in RUNS}
    X = np.concatenate([runs[run] for run in RUNS], axis=0).T  # voxels x all volumes
    atlases = group_output["atlases"]
    meta50 = json.loads((atlases / f"tpl-{TEMPLATE}/tpl-{TEMPLATE}_atlas-ward50_dseg.json")
                        .read_text())
    for k in K:
        img = nb.load(atlases / f"tpl-{TEMPLATE}/tpl-{TEMPLATE}_atlas-ward{k}_dseg.nii.gz")
        labels = np.asanyarray(img.dataobj)
        assert ((labels > 0) == common).all()  # the voxels inside every run's mask
        assert sorted(np.unique(labels[common]).tolist()) == list(range(1, k + 1))
        for value in range(1, k + 1):  # every parcel is one piece (6-neighbourhood)
            assert ndimage.label(labels == value)[1] == 1
        reference = AgglomerativeClustering(n_clusters=k, linkage="ward",
                                            connectivity=connectivity).fit(X).labels_
        assert len(set(zip(labels[common].tolist(), reference.tolist()))) == k
    # Split-half across subjects: sub-01 (two runs) against sub-02, at K = 50.
    halves = [np.concatenate([runs[RUNS[0]], runs[RUNS[1]]]).T, runs[RUNS[2]].T]
    cuts = [AgglomerativeClustering(n_clusters=50, linkage="ward", connectivity=connectivity)
            .fit(half).labels_ for half in halves]
    assert meta50["Quality"]["SplitHalfARI"] == pytest.approx(adjusted_rand_score(*cuts),
                                                              abs=1e-12)


def test_unmeasured_group_level_gives_the_same_atlases_faster(group_output, fmriprep_dir,
                                                               tmp_path):
    """Without --group-quality: the same atlases, no run's own tree, no Quality recorded."""
    out, work = tmp_path / "out", tmp_path / "work"
    proc = run_app(fmriprep_dir, out, "group", "--n-clusters", *K, "--confounds-strategy",
                   "none", "-w", work, "--nprocs", 2, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    measured = group_output["atlases"] / f"tpl-{TEMPLATE}"
    for k in K:
        name = f"tpl-{TEMPLATE}_atlas-ward{k}_dseg"
        ours = nb.load(out / "atlases" / f"tpl-{TEMPLATE}" / f"{name}.nii.gz")
        np.testing.assert_array_equal(np.asanyarray(ours.dataobj),
                                      np.asanyarray(nb.load(measured / f"{name}.nii.gz").dataobj))
        meta = json.loads((out / "atlases" / f"tpl-{TEMPLATE}" / f"{name}.json").read_text())
        assert "Quality" not in meta and meta["Subjects"] == ["01", "02"]
        assert "Quality" not in json.loads(
            (out / "atlases" / f"atlas-ward{k}_description.json").read_text())
    nodes = {path.parent.name for path in work.rglob("result_*.pklz")}
    assert "prepare_signals" in nodes and "group_series" in nodes
    assert not nodes & {"ward_tree_half1", "compare_parcellations", "parcel_compress",
                        "cut_tree_half1"}
    assert len(list(work.rglob("ward_tree/result_*.pklz"))) == 1  # the group's tree alone
    html = (out / "atlases" / "report.html").read_text()
    assert "Quality not measured" in html and "desc-quality" not in html
    assert not list((out / "atlases" / "figures").glob("*desc-quality*"))
    # Its atlas dataset is valid BIDS as it is (the official validator: no error).
    proc = subprocess.run(["bids-validator-deno", "--json", str(out / "atlases")],
                          capture_output=True, text=True, timeout=300)
    issues = json.loads(proc.stdout)["issues"]["issues"]
    assert [(i["code"], i.get("location")) for i in issues if i["severity"] == "error"] == []


def _r2(X, labels):
    """1 - residual / total sum of squares, X volumes x voxels, parcel means by NumPy."""
    fitted = np.empty_like(X)
    for value in np.unique(labels):
        fitted[:, labels == value] = X[:, labels == value].mean(axis=1, keepdims=True)
    return 1 - ((X - fitted) ** 2).sum() / (X ** 2).sum()


def test_each_runs_r2_on_the_group_atlas_and_on_its_own(group_output, fmriprep_dir):
    atlases, out = group_output["atlases"], group_output["out"]
    meta = json.loads((atlases / f"tpl-{TEMPLATE}/tpl-{TEMPLATE}_atlas-ward20_dseg.json")
                      .read_text())
    common = _common_mask(fmriprep_dir)
    group = np.asanyarray(nb.load(atlases / f"tpl-{TEMPLATE}/tpl-{TEMPLATE}"
                                  "_atlas-ward20_dseg.nii.gz").dataobj)
    records = {record["source"].rsplit("/", 1)[1]: record for record in meta["Quality"]["Runs"]}
    assert len(records) == 3
    for run in RUNS:
        mask = nb.load(fmriprep_dir / f"{run}_{SPACE}_desc-brain_mask.nii.gz").get_fdata() > 0
        X = _zscored(fmriprep_dir, run, mask).astype(np.float64)  # in its own mask
        inside = common[mask]
        own = np.asanyarray(nb.load(out / f"{run}_{SPACE}_seg-ward_scale-20_dseg.nii.gz")
                            .dataobj)[mask]
        record = records[f"{Path(run).name}_{SPACE}_desc-preproc_bold.nii.gz"]
        assert record["n_voxels"] == int(common.sum())
        assert record["group_r2"] == pytest.approx(_r2(X[:, inside], group[mask][inside]),
                                                   rel=1e-6)
        assert record["own_r2"] == pytest.approx(_r2(X[:, inside], own[inside]), rel=1e-6)


def test_participant_atlas_gives_nilearns_parcel_means(group_output, fmriprep_dir, tmp_path):
    from nilearn.maskers import NiftiLabelsMasker

    atlas = group_output["atlases"] / f"tpl-{TEMPLATE}/tpl-{TEMPLATE}_atlas-ward50_dseg.nii.gz"
    out = tmp_path / "out"
    proc = run_app(fmriprep_dir, out, "participant", "--participant-label", "02",
                   "--n-clusters", 20, "--atlas", atlas, "--confounds-strategy", "none",
                   "--standardize", "none", "--no-split-half", "-w", tmp_path / "work",
                   "--nprocs", 1, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = RUNS[2]
    stem = out / f"{run}_{SPACE}_seg-ward50"
    series = pd.read_csv(f"{stem}_stat-mean_timeseries.tsv", sep="\t")
    assert series.shape == (N_VOLUMES, 50)
    assert series.columns.tolist() == [str(v) for v in range(1, 51)]
    bold = fmriprep_dir / f"{run}_{SPACE}_desc-preproc_bold.nii.gz"
    mask = fmriprep_dir / f"{run}_{SPACE}_desc-brain_mask.nii.gz"
    reference = NiftiLabelsMasker(labels_img=str(atlas), mask_img=str(mask),
                                  strategy="mean", standardize=None).fit_transform(str(bold))
    np.testing.assert_allclose(series.to_numpy(), reference, rtol=1e-6, atol=1e-4)
    sidecar = json.loads(Path(f"{stem}_stat-mean_timeseries.json").read_text())
    assert sidecar["NumberOfParcels"] == 50 and sidecar["Atlas"]["Label"] == "ward50"
    metrics = json.loads(Path(f"{stem}_metrics.json").read_text())
    assert metrics["n_parcels"] == 50 and metrics["parcels_missing"] == []
    assert (out / f"sub-02/figures/sub-02_task-rest_{SPACE}_seg-ward50_desc-parcellation_bold.png"
            ).is_file()


@pytest.mark.heavy
def test_migp_group_level_runs_and_records_its_reduction(fmriprep_dir, tmp_path):
    proc = run_app(fmriprep_dir, tmp_path / "out", "group", "--n-clusters", 30,
                   "--group-reduction", "migp", "--group-dimensions", 100, "--no-split-half",
                   "-w", tmp_path / "work", "--nprocs", 2, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "migp reduction" in proc.stdout
    atlas = tmp_path / "out/atlases" / f"tpl-{TEMPLATE}/tpl-{TEMPLATE}_atlas-ward30_dseg"
    meta = json.loads(Path(f"{atlas}.json").read_text())
    assert meta["Reduction"] == {"reduction": "migp", "n_components": 100,
                                 "n_volumes_total": 360, "n_features": 100}
    labels = np.asanyarray(nb.load(f"{atlas}.nii.gz").dataobj)
    assert len(np.unique(labels[labels > 0])) == 30
    # The matrix the tree saw is MIGP's: NumPy's MIGP of the subjects, same Gram.
    (group_series,) = (tmp_path / "work").rglob("group_series/group_series.npy")
    ours = np.load(group_series)
    reduced = [np.load(path) for path in sorted((tmp_path / "work").rglob("reduce_sub_*/*.npy"))]
    # The subjects one after the other (sub-01's two runs, 240 volumes, reduced to 100 first).
    reference = _numpy_migp(reduced, 100)
    # Ours runs in float32 (the prepared series are): equal to float32 rounding of the
    # Gram's scale (its largest entry, a voxel's squared norm), not entry by entry.
    assert ours.dtype == np.float32
    scale = float(np.max(np.einsum("ij,ij->i", reference, reference)))
    _assert_same_gram(ours, reference, rtol=1e-5, atol=1e-5 * scale)


def _assert_same_gram(ours, reference, *, rtol, atol, rows=512):
    """``ours @ ours.T`` equals ``reference @ reference.T`` element by element.

    Compared a block of rows at a time: on the test dataset the two
    voxel-by-voxel matrices would take 3 GB and more with their temporaries.
    """
    assert ours.shape[0] == reference.shape[0]
    for start in range(0, ours.shape[0], rows):
        block = slice(start, start + rows)
        np.testing.assert_allclose(ours[block] @ ours.T, reference[block] @ reference.T,
                                   rtol=rtol, atol=atol)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["group", "--n-clusters", "100000"], "cannot make 100000 parcels from a mask of"),
        (["group", "--combine-runs"], "--combine-runs belongs to the participant level"),
        (["group", "--group-dimensions", "0"], "--group-dimensions must be at least 1"),
        (["participant", "--atlas", "nope.nii.gz"], "--atlas: no such file"),
        (["participant", "--group-quality"], "--group-quality belongs to the group level"),
    ],
)
def test_bad_group_options_fail_early(fmriprep_dir, tmp_path, args, message):
    proc = run_app(fmriprep_dir, tmp_path / "out", *args, "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode in (1, 2)
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert " ERROR" not in proc.stderr + proc.stdout  # Nipype's log lines
    assert not (tmp_path / "out").exists()


def test_an_atlas_on_another_grid_is_one_line(fmriprep_dir, tmp_path):
    atlas = tmp_path / "tpl-X_atlas-small_dseg.nii.gz"
    nb.save(nb.Nifti1Image(np.ones((4, 4, 4), np.int16), np.eye(4)), atlas)
    proc = run_app(fmriprep_dir, tmp_path / "out", "participant", "--atlas", atlas,
                   "--participant-label", "02", "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"{atlas}: grid" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_runs_on_two_grids_are_refused_before_any_work(fmriprep_dir, tmp_path):
    import shutil

    other = tmp_path / "fmriprep"
    shutil.copytree(fmriprep_dir, other)
    for suffix in ("desc-preproc_bold", "desc-brain_mask"):
        path = other / f"{RUNS[2]}_{SPACE}_{suffix}.nii.gz"
        img = nb.load(path)
        nb.save(nb.Nifti1Image(np.asanyarray(img.dataobj)[:-1], img.affine, img.header), path)
    proc = run_app(other, tmp_path / "out", "group", "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "sub-02_task-rest_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz: grid" \
        in proc.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()
