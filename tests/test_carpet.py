"""The carpet sample and DVARS (arrays), their node, their figures.

References are independent of the code under test: DVARS by hand on a tiny
array and by nipype's ``compute_dvars`` on a NIfTI run; the tree's leaf
order by SciPy's dendrogram; the sampled rows by nibabel's read of the BOLD.
"""

import nibabel as nb
import numpy as np
import pytest
from nipype.pipeline import engine as pe

from nipype_ward.core.carpet import (
    MAX_CARPET_POINTS,
    carpet_points,
    carpet_sample,
    dvars,
    expand_volumes,
    leaf_order,
    tree_rows,
)
from nipype_ward.core.ward import cut_tree
from nipype_ward.interfaces import PlotDenoisingCarpet, PrepareSignals
from nipype_ward.io import arrays, tables
from nipype_ward.io.errors import InputError


def test_dvars_by_hand():
    X = np.array([[0.0, 1.0, 3.0, 3.0],
                  [0.0, 3.0, 3.0, 7.0]])
    # Differences: volume 1: (1, 3); volume 2: (2, 0); volume 3: (0, 4).
    np.testing.assert_allclose(dvars(X), [np.sqrt(5), np.sqrt(2), np.sqrt(8)])
    np.testing.assert_allclose(dvars(X.astype(np.float32)), dvars(X), rtol=1e-6)
    np.testing.assert_allclose(dvars(X.astype(np.int16)), dvars(X))


def test_dvars_is_nipypes_non_standardized_dvars(small_data, rng, tmp_path):
    """nipype's compute_dvars (fMRIPrep's), its intensity normalization off: its dvars_nstd."""
    pytest.importorskip("nitime")  # compute_dvars' AR(1) fit, in the test extra
    from nipype.algorithms.confounds import compute_dvars

    _, dvars_nstd, _ = compute_dvars(str(small_data["bold"]), str(small_data["mask"]),
                                     intensity_normalization=0)
    mask = np.asanyarray(nb.load(small_data["mask"]).dataobj) > 0
    X = np.asanyarray(nb.load(small_data["bold"]).dataobj)[mask]
    np.testing.assert_allclose(dvars(X), dvars_nstd, rtol=1e-5)
    # Block by block (more rows than one block) and memory-mapped: the same numbers.
    tall = np.vstack([X] * 3)
    path = tmp_path / "tall.npy"
    np.save(path, tall)
    np.testing.assert_allclose(dvars(np.load(path, mmap_mode="r")), dvars_nstd, rtol=1e-5)
    np.testing.assert_allclose(dvars(rng.permutation(X)), dvars_nstd, rtol=1e-5)


def test_dvars_refuses_what_has_no_difference():
    with pytest.raises(ValueError, match="at least 1 point and 2 volumes"):
        dvars(np.ones((5, 1)))
    with pytest.raises(ValueError, match="2D array"):
        dvars(np.ones(5))


@pytest.mark.parametrize("n_points", [1, 7, MAX_CARPET_POINTS, MAX_CARPET_POINTS + 1, 69765])
def test_carpet_points_are_evenly_spread(n_points):
    points = carpet_points(n_points)
    assert points.size == min(n_points, MAX_CARPET_POINTS)
    assert points[0] == 0 and points[-1] == n_points - 1
    steps = np.diff(points)
    assert (steps > 0).all()
    if n_points > MAX_CARPET_POINTS:
        assert steps.max() - steps.min() <= 1  # no gap larger than the others


def test_carpet_sample_keeps_the_rows_and_both_dvars(rng):
    before = rng.standard_normal((5000, 30)).astype(np.float32)
    kept = np.r_[0:10, 12:30]
    after = (2 * before[:, kept]).astype(np.float64)
    sample = carpet_sample(before, after, kept=kept)
    assert sample.n_points == 5000 and sample.points.size == MAX_CARPET_POINTS
    np.testing.assert_array_equal(sample.before, before[sample.points])
    np.testing.assert_array_equal(sample.after, after[sample.points].astype(np.float32))
    np.testing.assert_allclose(sample.dvars_before, np.sqrt(
        (np.diff(before.astype(np.float64), axis=1) ** 2).mean(axis=0)), rtol=1e-6)
    assert sample.dvars_after.shape == (len(kept) - 1,)
    np.testing.assert_array_equal(sample.kept, kept)
    with pytest.raises(ValueError, match="after must have shape"):
        carpet_sample(before, after[:, 1:], kept=kept)
    with pytest.raises(ValueError, match="increasing volume indices"):
        carpet_sample(before, after, kept=kept[::-1])


def _tree(X):
    """scikit-learn's (unstructured) Ward tree: children and distances."""
    from sklearn.cluster import ward_tree

    children, _, _, _, distances = ward_tree(X, return_distance=True)
    return children, distances


def test_leaf_order_is_scipys_dendrogram(rng):
    from scipy.cluster.hierarchy import dendrogram

    X = rng.standard_normal((60, 4))
    children, distances = _tree(X)
    n = X.shape[0]
    counts = np.ones(2 * n - 1)
    for i, (a, b) in enumerate(children):
        counts[n + i] = counts[a] + counts[b]
    linkage = np.column_stack([children, distances, counts[n:]]).astype(float)
    expected = dendrogram(linkage, no_plot=True, count_sort=False,
                          distance_sort=False)["leaves"]
    np.testing.assert_array_equal(leaf_order(children), expected)
    # Every cut's clusters are runs of consecutive leaves in that order.
    for k in (2, 5, 17):
        labels = cut_tree(children, k)[leaf_order(children)]
        assert (np.diff(labels) != 0).sum() == k - 1


def test_tree_rows_orders_the_sample_and_names_branches(rng):
    X = rng.standard_normal((300, 6))
    children, _ = _tree(X)
    points = carpet_points(300, 100)
    rows, branches = tree_rows(children, points, n_branches=5)
    rank = np.argsort(leaf_order(children))
    assert (np.diff(rank[points[rows]]) > 0).all()
    assert branches[0] == 0 and (np.diff(branches) >= 0).all() and branches.max() == 4
    labels = cut_tree(children, 5)[points[rows]]
    assert len(set(zip(labels.tolist(), branches.tolist()))) == 5  # the same partition
    with pytest.raises(ValueError, match="leaves of the tree"):
        tree_rows(children, [300])


def test_expand_volumes_leaves_censored_volumes_empty():
    out = expand_volumes([[1.0, 2.0, 3.0]], [0, 2, 3], 5)
    np.testing.assert_array_equal(out, [[1.0, np.nan, 2.0, 3.0, np.nan]])


def _prepare(small_data, cwd, **options):
    node = pe.Node(PrepareSignals(in_file=[str(small_data["bold"])],
                                  brain_mask_file=str(small_data["mask"]), **options),
                   name="prepare", base_dir=str(cwd))
    return node.run().outputs


@pytest.mark.parametrize("detrend", [True, False], ids=["through nilearn", "in place"])
def test_prepare_signals_writes_the_carpet_sample_and_nothing_else_changes(small_data,
                                                                           tmp_path, detrend):
    """z-scoring alone prepares the series in place: the rows before are sampled first."""
    plain = _prepare(small_data, tmp_path / "plain", standardize="zscore_sample",
                     detrend=detrend)
    outputs = _prepare(small_data, tmp_path / "carpet", standardize="zscore_sample",
                       detrend=detrend, carpet=True)
    for name in ("series_file", "mask_file", "mean_file"):
        assert open(getattr(plain, name), "rb").read() == open(getattr(outputs, name),
                                                                "rb").read()
    assert plain.series_info == outputs.series_info
    sample = arrays.load_carpet(outputs.carpet_file)
    mask = np.asanyarray(nb.load(small_data["mask"]).dataobj) > 0
    raw = np.asanyarray(nb.load(small_data["bold"]).dataobj)[mask]
    prepared = np.load(outputs.series_file)
    assert sample.n_points == raw.shape[0] == prepared.shape[0]
    np.testing.assert_array_equal(sample.before, raw[sample.points].astype(np.float32))
    np.testing.assert_array_equal(sample.after, prepared[sample.points].astype(np.float32))
    np.testing.assert_allclose(sample.dvars_after, np.sqrt(
        (np.diff(prepared.astype(np.float64), axis=1) ** 2).mean(axis=0)), rtol=1e-6)
    np.testing.assert_allclose(sample.dvars_before, np.sqrt(
        (np.diff(raw.astype(np.float64), axis=1) ** 2).mean(axis=0)), rtol=1e-6)
    np.testing.assert_array_equal(sample.kept, np.arange(raw.shape[1]))
    # Unset, the option leaves the node's hash as it was before it existed.
    assert "carpet" not in str(PrepareSignals(in_file=[str(small_data["bold"])])
                               .inputs.get_hashval()[0])


def test_bad_carpet_and_confounds_files_are_one_line_errors(tmp_path, rng):
    bad = tmp_path / "bad.npz"
    np.savez(bad, points=np.arange(3))
    with pytest.raises(InputError, match="not a carpet sample file"):
        arrays.load_carpet(bad)
    table = tmp_path / "confounds.tsv"
    table.write_text("framewise_displacement\tstd_dvars\ttrans_x\nn/a\tn/a\t0\n0.1\t1.2\t0\n")
    traces = tables.load_motion_traces(table, 2)
    assert list(traces) == ["framewise_displacement", "std_dvars"]
    assert np.isnan(traces["std_dvars"][0]) and traces["framewise_displacement"][1] == 0.1
    with pytest.raises(InputError, match="has 2 rows but the BOLD series has 3 volumes"):
        tables.load_motion_traces(table, 3)


def test_a_run_without_confounds_table_or_tree_gets_its_carpet(small_data, tmp_path):
    """DVARS from the data, no FD trace, rows in the mask's order: still a carpet."""
    from matplotlib import image as mpimg

    outputs = _prepare(small_data, tmp_path, standardize="zscore_sample", carpet=True)
    node = pe.Node(PlotDenoisingCarpet(carpet_file=outputs.carpet_file,
                                       series_info=outputs.series_info),
                   name="plot_carpet", base_dir=str(tmp_path))
    png = node.run().outputs.out_file
    pixels = mpimg.imread(png)
    assert pixels.shape[1] > 1500 and pixels.shape[0] > 1000 and pixels.std() > 0.1
