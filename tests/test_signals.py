"""Signal preparation before Ward (issue: standardize, detrend, filter, confounds)."""

import json

import nibabel as nb
import numpy as np
import pandas as pd
import pytest
from nilearn.signal import clean
from sklearn.cluster import FeatureAgglomeration
from sklearn.feature_extraction.image import grid_to_graph

from nipype_ward.core.parcels import parcel_sizes
from nipype_ward.core.signals import prepare_signals
from nipype_ward.core.ward import build_ward_tree, cut_tree
from nipype_ward.interfaces import GridConnectivity, ParcelCompress, WardAgglomerate
from nipype_ward.io import nifti, series, tables


def _same_partition(a, b):
    pairs = set(zip(np.asarray(a).tolist(), np.asarray(b).tolist()))
    return len(pairs) == len(set(np.asarray(a).tolist())) == len(set(np.asarray(b).tolist()))


# --- the array function ----------------------------------------------------


def test_nothing_asked_is_the_identity(rng):
    X = rng.standard_normal((20, 30)).astype(np.float32)
    assert prepare_signals(X) is X


def test_zscore_is_nilearns(rng):
    X = rng.normal(100, 5, (20, 30))
    ours = prepare_signals(X, standardize="zscore_sample")
    np.testing.assert_allclose(ours.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(ours.std(axis=1, ddof=1), 1)
    np.testing.assert_array_equal(
        ours, clean(X.T, detrend=False, standardize="zscore_sample", filter=False).T
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.int64])
def test_zscore_alone_is_nilearns_bit_for_bit_without_importing_it(dtype, rng, tmp_path):
    """z-scoring alone skips nilearn.signal (2 s to import) and gives its very bytes.

    Reference: nilearn.signal.clean on the same series, including a constant
    voxel (nilearn divides it by 1) and integer data (nilearn's float types).
    """
    X = (rng.normal(1000, 100, (300, 40))).astype(dtype)
    X[3] = 7
    ours = prepare_signals(X, standardize="zscore_sample")
    ref = clean(X.T, detrend=False, standardize="zscore_sample", filter=False,
                ensure_finite=False).T
    assert ours.dtype == ref.dtype and ours.flags.c_contiguous
    np.testing.assert_array_equal(ours, ref)
    np.save(tmp_path / "X.npy", X)
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", (
        "import sys, numpy as np; from nipype_ward.core.signals import prepare_signals; "
        f"prepare_signals(np.load({str(tmp_path / 'X.npy')!r}), standardize='zscore_sample'); "
        "print('nilearn.signal' in sys.modules)")], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("n_voxels", [13, 14, 2])
def test_zscore_by_blocks_is_nilearns_bit_for_bit(n_voxels, rng, monkeypatch):
    """Integer series go through numpy a few voxels at a time (a last block of one
    joining the one before); ``copy=False`` cannot overwrite them with floats.

    Reference: nilearn.signal.clean on the whole series at once.
    """
    from nipype_ward.core import signals

    monkeypatch.setattr(signals, "ZSCORE_BLOCK_VALUES", 3 * 50)  # 3 voxels of 50 volumes
    X = rng.normal(1000, 100, (n_voxels, 50)).astype(np.int16)
    X[1] = 3  # constant: divided by 1, as nilearn does
    ref = clean(X.T, detrend=False, standardize="zscore_sample", filter=False,
                ensure_finite=False).T
    before = X.copy()
    for copy in (True, False):
        ours = prepare_signals(X, standardize="zscore_sample", copy=copy)
        assert ours.dtype == ref.dtype == np.float32 and ours is not X
        np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_zscore_compiled_on_threads_and_in_place_is_nilearns_bit_for_bit(dtype, threads, rng):
    """Float series go through the compiled pass, the voxels split between threads.

    Reference: nilearn.signal.clean on the whole series, compared as bytes:
    rows of 8 voxels and a tail (13 voxels), 1,200 volumes and 3, a constant
    voxel (nilearn divides it by 1), a voxel of negative zeros, one of tiny
    values (its standard deviation below float64's epsilon).
    """
    for n_volumes in (1200, 3):
        X = rng.normal(1000, 100, (13, n_volumes)).astype(dtype)
        X[3] = 7
        X[5] = -0.0
        X[6] = rng.normal(0, 1e-20, n_volumes)
        ref = clean(X.T, detrend=False, standardize="zscore_sample", filter=False,
                    ensure_finite=False).T
        copied = prepare_signals(X, standardize="zscore_sample", threads=threads)
        assert copied is not X and copied.dtype == dtype
        assert copied.tobytes() == np.ascontiguousarray(ref).tobytes()
        in_place = prepare_signals(X, standardize="zscore_sample", copy=False, threads=threads)
        assert in_place is X
        assert X.tobytes() == np.ascontiguousarray(ref).tobytes()


def test_confounds_are_regressed_out(rng):
    confounds = rng.standard_normal((40, 2))
    X = rng.standard_normal((10, 40)) + rng.standard_normal((10, 2)) @ confounds.T * 5
    cleaned = prepare_signals(X, confounds=confounds)
    # What is left is orthogonal to the (centred) confounds.
    centred = confounds - confounds.mean(axis=0)
    assert np.abs(cleaned @ centred).max() < 1e-8


def test_filtering_removes_slow_drifts():
    t_r, n = 2.0, 200
    time = np.arange(n) * t_r
    slow, fast = np.sin(2 * np.pi * 0.002 * time), np.sin(2 * np.pi * 0.05 * time)
    cleaned = prepare_signals(np.vstack([slow + fast]), high_pass=0.01, t_r=t_r)[0]
    assert np.corrcoef(cleaned, fast)[0, 1] > 0.95


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"high_pass": 0.01}, "needs the repetition time"),
        ({"standardize": "zscore"}, "standardize must be one of"),
        ({"standardize": True}, "standardize must be one of"),
        ({"high_pass": 0.1, "low_pass": 0.05, "t_r": 2.0}, "must be below low_pass"),
        ({"low_pass": 0.3, "t_r": 2.0}, "below the Nyquist frequency"),
        ({"high_pass": -1, "t_r": 2.0}, "positive frequency"),
        ({"t_r": 0}, "positive number of seconds"),
    ],
)
def test_bad_options(options, message, rng):
    with pytest.raises(ValueError, match=message):
        prepare_signals(rng.standard_normal((3, 20)), **options)


# --- TR and confounds files ---------------------------------------------------


def _bold(tmp_path, name="bold.nii.gz", n_volumes=30, zoom=None, units=None, rng=None):
    rng = rng or np.random.default_rng(0)
    data = rng.normal(100, 5, (6, 6, 6, n_volumes)).astype(np.float32)
    img = nb.Nifti1Image(data, np.diag([3.0, 3.0, 3.0, 1.0]))
    if zoom is not None:
        img.header.set_zooms((3.0, 3.0, 3.0, zoom))
    if units is not None:
        img.header.set_xyzt_units("mm", units)
    path = tmp_path / name
    nb.save(img, path)
    return path


def test_repetition_time_sources(tmp_path):
    assert series.read_repetition_time(_bold(tmp_path, "a.nii.gz", zoom=1.5, units="sec")) == 1.5
    assert series.read_repetition_time(_bold(tmp_path, "b.nii.gz", zoom=800, units="msec")) == 0.8
    # No time unit in the header: the zoom means nothing.
    assert series.read_repetition_time(_bold(tmp_path, "c.nii.gz", zoom=2.0)) is None
    # The BIDS sidecar is the authority.
    path = _bold(tmp_path, "d_bold.nii.gz", zoom=1.0, units="sec")
    (tmp_path / "d_bold.json").write_text(json.dumps({"RepetitionTime": 2.5}))
    assert series.read_repetition_time(path) == 2.5


def test_confounds_file(tmp_path):
    path = tmp_path / "desc-confounds_timeseries.tsv"
    pd.DataFrame({"trans_x": [0.1, 0.2, 0.4], "framewise_displacement": [np.nan, 0.3, 0.5]}) \
        .to_csv(path, sep="\t", index=False, na_rep="n/a")
    values = tables.load_confounds(path, 3, ["framewise_displacement", "trans_x"])
    # fMRIPrep's n/a in the first row becomes the column mean (0.4).
    np.testing.assert_allclose(values, [[0.4, 0.1], [0.3, 0.2], [0.5, 0.4]])
    with pytest.raises(nifti.InputError, match=r"timeseries.tsv: no column named 'rot_z'"):
        tables.load_confounds(path, 3, ["trans_x", "rot_z"])
    with pytest.raises(nifti.InputError, match="timeseries.tsv: has 3 rows but the BOLD series has 4"):
        tables.load_confounds(path, 4)


# --- through the interfaces ----------------------------------------------------


@pytest.fixture(scope="module")
def prepared_setup(small_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("prep")
    conn = GridConnectivity(mask_file=str(small_data["mask"])).run(cwd=str(folder))
    mask = nb.load(small_data["mask"]).get_fdata() > 0
    X = nb.load(small_data["bold"]).get_fdata(dtype=np.float32)[mask]
    rng = np.random.default_rng(1)
    confounds = pd.DataFrame(
        {"global_signal": X.mean(axis=0), "trans_x": rng.standard_normal(X.shape[1]),
         "unused": rng.standard_normal(X.shape[1])}
    )
    confounds_file = folder / "sub-01_desc-confounds_timeseries.tsv"
    confounds.to_csv(confounds_file, sep="\t", index=False)
    return {"conn": conn.outputs.connectivity_file, "X": X, "mask": mask,
            "confounds": confounds, "confounds_file": str(confounds_file)}


def _ward(small_data, setup, cwd, **options):
    cwd.mkdir(parents=True, exist_ok=True)
    return WardAgglomerate(
        in_file=str(small_data["bold"]), mask_file=str(small_data["mask"]),
        connectivity_file=setup["conn"], n_clusters=[40], **options,
    ).run(cwd=str(cwd))


def test_zscored_labels_equal_scikit_learn(small_data, prepared_setup, tmp_path):
    result = _ward(small_data, prepared_setup, tmp_path, standardize="zscore_sample")
    X, mask = prepared_setup["X"], prepared_setup["mask"]
    zscored = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, ddof=1, keepdims=True)
    reference = FeatureAgglomeration(
        n_clusters=40, connectivity=grid_to_graph(*mask.shape, mask=mask), linkage="ward"
    ).fit(zscored.T)
    labels = np.asanyarray(nb.load(result.outputs.labels_files[0]).dataobj)[mask]
    assert _same_partition(labels, reference.labels_)


def test_confound_labels_equal_those_of_nilearn_clean(small_data, prepared_setup, tmp_path):
    columns = ["global_signal", "trans_x"]
    result = _ward(small_data, prepared_setup, tmp_path,
                   confounds_file=prepared_setup["confounds_file"], confounds_columns=columns)
    X, mask = prepared_setup["X"], prepared_setup["mask"]
    cleaned = clean(X.T, detrend=False, standardize=None, filter=False,
                    confounds=prepared_setup["confounds"][columns].to_numpy()).T
    reference = FeatureAgglomeration(
        n_clusters=40, connectivity=grid_to_graph(*mask.shape, mask=mask), linkage="ward"
    ).fit(cleaned.T)
    labels = np.asanyarray(nb.load(result.outputs.labels_files[0]).dataobj)[mask]
    assert _same_partition(labels, reference.labels_)
    # ...and differ from the labels without confounds.
    plain = _ward(small_data, prepared_setup, tmp_path / "plain")
    assert not _same_partition(
        labels, np.asanyarray(nb.load(plain.outputs.labels_files[0]).dataobj)[mask]
    )


def test_compression_of_prepared_signals(small_data, prepared_setup, tmp_path):
    result = ParcelCompress(
        in_file=str(small_data["bold"]), labels_file=str(small_data["regions"]),
        standardize="zscore_sample",
    ).run(cwd=str(tmp_path))
    series = pd.read_csv(result.outputs.timeseries_file, sep="\t")
    # Parcel means of z-scored voxels: centred, with a spread below 1.
    assert np.abs(series.mean()).max() < 1e-5
    metrics = json.loads(open(result.outputs.metrics_file).read())
    assert metrics["preparation"]["standardize"] == "zscore_sample"
    (tmp_path / "raw").mkdir()
    raw = ParcelCompress(
        in_file=str(small_data["bold"]), labels_file=str(small_data["regions"])
    ).run(cwd=str(tmp_path / "raw"))
    assert metrics["r2"] != json.loads(open(raw.outputs.metrics_file).read())["r2"]


def test_filtering_without_tr_names_the_file(prepared_setup, tmp_path):
    bold = _bold(tmp_path, "no_tr_bold.nii.gz")  # no time unit, no sidecar
    mask = tmp_path / "mask.nii.gz"
    nb.save(nb.Nifti1Image(np.ones((6, 6, 6), np.uint8), np.diag([3.0, 3.0, 3.0, 1.0])), mask)
    conn = GridConnectivity(mask_file=str(mask)).run(cwd=str(tmp_path))
    with pytest.raises(ValueError, match="no_tr_bold.nii.gz: filtering .* needs the repetition time"):
        WardAgglomerate(in_file=str(bold), mask_file=str(mask), n_clusters=[5],
                        connectivity_file=conn.outputs.connectivity_file, high_pass=0.01
                        ).run(cwd=str(tmp_path))
    # With the TR given, it runs.
    WardAgglomerate(in_file=str(bold), mask_file=str(mask), n_clusters=[5], t_r=2.0,
                    connectivity_file=conn.outputs.connectivity_file, high_pass=0.01
                    ).run(cwd=str(tmp_path))


@pytest.mark.parametrize(
    ("columns", "rows", "message"),
    [(["trans_x", "not_a_column"], None, "no column named 'not_a_column'"),
     (["trans_x"], 5, "has 5 rows but the BOLD series has 40 volumes")],
)
def test_bad_confounds_name_the_file(small_data, prepared_setup, tmp_path, columns, rows, message):
    path = tmp_path / "bad_confounds.tsv"
    table = prepared_setup["confounds"]
    (table.iloc[:rows] if rows else table).to_csv(path, sep="\t", index=False)
    with pytest.raises(ValueError, match=f"bad_confounds.tsv: {message}"):
        _ward(small_data, prepared_setup, tmp_path, confounds_file=str(path),
              confounds_columns=columns)
    assert not list(tmp_path.glob("*_wardtree.npz"))


def test_standardized_parcels_are_balanced_on_the_embedded_data(embedded_data):
    """Issue 9's criterion: K=1000 on the 3 mm data, largest/median parcel < 10."""
    from nipype_ward.core.connectivity import grid_connectivity

    mask = np.asanyarray(nb.load(embedded_data["mask"]).dataobj) > 0
    X = np.asanyarray(nb.load(embedded_data["func"]).dataobj)[mask]
    connectivity = grid_connectivity(mask)
    figures = {}
    for standardize in (False, "zscore_sample"):
        tree = build_ward_tree(prepare_signals(X, standardize=standardize), connectivity)
        sizes = parcel_sizes(cut_tree(tree.children, 1000))
        figures[standardize] = sizes.max() / np.median(sizes)
    assert figures["zscore_sample"] < 10
    assert figures[False] > 10 * figures["zscore_sample"]
