"""Quality measures of nipype_ward.core.metrics: by hand, then on the embedded data."""

import math

import numpy as np
import pytest
from scipy import sparse

from nipype_ward.core.connectivity import grid_connectivity
from nipype_ward.core.metrics import (
    Agreement,
    compression_summary,
    contiguity,
    homogeneity,
    reconstruction_r2,
    size_distribution,
    split_half_agreement,
    truth_agreement,
)
from nipype_ward.core.ward import build_ward_tree, cut_tree

# --------------------------------------------------------------------------
# Hand-computed cases
# --------------------------------------------------------------------------
# Parcel 0: a, b = 2a (corr 1), c reversed (corr -1 with a and b).
# Parcel 1: d = (1, 0, 0), e = (0, 1, 0): centred (2, -1, -1)/3 and (-1, 2, -1)/3,
#   dot -3/9, squared norms 6/9 each: corr = -1/2.
# Parcel 2: a singleton, left out.
HAND_X = np.array(
    [
        [1.0, 2.0, 3.0],  # a
        [2.0, 4.0, 6.0],  # b
        [3.0, 2.0, 1.0],  # c
        [1.0, 0.0, 0.0],  # d
        [0.0, 1.0, 0.0],  # e
        [7.0, -1.0, 2.0],  # f
    ]
)
HAND_LABELS = np.array([0, 0, 0, 1, 1, 2])


def test_homogeneity_by_hand():
    # Parcel 0: pairs (a,b)=1, (a,c)=-1, (b,c)=-1: mean -1/3. Parcel 1: -1/2.
    # Voxel-weighted: (3 * -1/3 + 2 * -1/2) / (3 + 2) = -2/5.
    assert homogeneity(HAND_X, HAND_LABELS) == pytest.approx(-0.4)
    # Unweighted: (-1/3 - 1/2) / 2 = -5/12.
    assert homogeneity(HAND_X, HAND_LABELS, weighting="parcels") == pytest.approx(-5 / 12)


def test_homogeneity_constant_voxel_counts_as_uncorrelated():
    # a and b correlate 1; k is constant: corr(a, k) = corr(b, k) = 0 by
    # convention, so the parcel's mean over its 3 pairs is (1 + 0 + 0) / 3.
    # 0.1 three times has a mean that is not exactly 0.1 in floating point:
    # it must still count as constant, not become a noisy unit-variance row.
    for constant in ([5.0, 5.0, 5.0], [0.1, 0.1, 0.1]):
        X = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], constant])
        value = homogeneity(X, np.zeros(3, dtype=int))
        assert not math.isnan(value)
        assert value == pytest.approx(1 / 3)


def test_homogeneity_all_singletons_is_nan():
    # No parcel has a pair of voxels: nothing to average.
    assert math.isnan(homogeneity(HAND_X, np.arange(6)))


def test_homogeneity_equals_brute_force_correlations(rng):
    # Random data with a few constant voxels and parcels of sizes 1..20: the
    # norm-of-sums formula must give the mean of np.corrcoef's off-diagonal
    # entries within each parcel, weighted by size or not.
    X = rng.standard_normal((120, 15)) + rng.standard_normal((1, 15))
    X[[3, 50, 51]] = 2.5
    labels = np.repeat(np.arange(15), np.arange(1, 16))[:120]
    labels = np.concatenate([labels, np.full(120 - labels.size, 15)])
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(X), nan=0.0)
    means, sizes = [], []
    for p in np.unique(labels):
        idx = np.flatnonzero(labels == p)
        if idx.size < 2:
            continue
        block = corr[np.ix_(idx, idx)]
        means.append((block.sum() - np.trace(block)) / (idx.size * (idx.size - 1)))
        sizes.append(idx.size)
    means, sizes = np.array(means), np.array(sizes)
    assert homogeneity(X, labels) == pytest.approx(np.sum(means * sizes) / sizes.sum())
    assert homogeneity(X, labels, weighting="parcels") == pytest.approx(means.mean())


def test_homogeneity_ignores_baseline_and_scale(rng):
    X = rng.standard_normal((30, 10))
    labels = np.arange(30) % 4
    Y = X * rng.uniform(0.1, 10.0, size=(30, 1)) + rng.uniform(-500, 500, size=(30, 1))
    assert homogeneity(Y, labels) == pytest.approx(homogeneity(X, labels))


def _chain(n):
    """Adjacency of n voxels in a row (a 3D mask of shape (n, 1, 1))."""
    return grid_connectivity(np.ones((n, 1, 1), dtype=bool))


def test_contiguity_by_hand_on_a_chain():
    # 0 1 0 1 1: parcel 0 is {0}, {2} (2 pieces), parcel 1 is {1}, {3, 4}
    # (2 pieces): 2 non-contiguous parcels, 2 extra pieces.
    result = contiguity(np.array([0, 1, 0, 1, 1]), _chain(5))
    assert result.n_pieces.tolist() == [2, 2]
    assert (result.n_noncontiguous, result.n_extra_pieces) == (2, 2)
    # 0 0 1 1 2: every parcel is one run of the chain.
    result = contiguity(np.array([0, 0, 1, 1, 2]), _chain(5))
    assert result.n_pieces.tolist() == [1, 1, 1]
    assert (result.n_noncontiguous, result.n_extra_pieces) == (0, 0)


def test_contiguity_depends_on_the_neighbourhood():
    # A 3 x 3 checkerboard: parcel 0 = the 4 corners and the centre, parcel 1
    # = the 4 edge midpoints. With faces only (6) no two voxels of a parcel
    # touch: 5 + 4 pieces, 7 extra. With edges (18) the in-plane diagonals
    # join them: each parcel is one piece.
    mask = np.ones((3, 3, 1), dtype=bool)
    i, j = np.nonzero(mask[:, :, 0])
    labels = ((i + j) % 2).astype(int)
    faces = contiguity(labels, grid_connectivity(mask, 6))
    assert faces.n_pieces.tolist() == [5, 4]
    assert (faces.n_noncontiguous, faces.n_extra_pieces) == (2, 7)
    edges = contiguity(labels, grid_connectivity(mask, 18))
    assert edges.n_pieces.tolist() == [1, 1]
    assert edges.n_noncontiguous == 0


def test_size_distribution_by_hand():
    # Sizes 1, 2, 3, 10. Linear interpolation on the sorted sizes:
    # q1 at position 0.75 -> 1 + 0.75 * (2 - 1) = 1.75; median (2 + 3) / 2;
    # q3 at position 2.25 -> 3 + 0.25 * (10 - 3) = 4.75.
    labels = np.repeat([2, 0, 3, 1], [2, 1, 10, 3])
    assert size_distribution(labels) == (1, 1.75, 2.5, 4.75, 10)
    assert size_distribution(labels)._asdict()["q3"] == 4.75


def test_truth_agreement_by_hand():
    # Contingency of (0 0 1 1) and (0 0 0 1): pairs together in both:
    # C(2,2) = 1; in the first: 1 + 1 = 2; in the second: C(3,2) = 3; of 6.
    # Expected index 2 * 3 / 6 = 1, maximum (2 + 3) / 2: ARI = (1 - 1) / 1.5 = 0.
    result = truth_agreement(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]))
    assert result.ari == pytest.approx(0.0, abs=1e-12)
    # (0 0 1 1 2 2) vs (0 0 1 1 1 1): index 3, row pairs 3, column pairs 1 + 6,
    # of 15: expected 3 * 7 / 15 = 1.4, maximum 5: ARI = 1.6 / 3.6 = 4/9.
    result = truth_agreement(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 1, 1, 1, 1]))
    assert result.ari == pytest.approx(4 / 9)
    # Numbering does not matter, nor do the label values.
    same = truth_agreement(np.array([5, 5, 9, 9, 7]), np.array([1, 1, 2, 2, 3]))
    assert same == pytest.approx(Agreement(1.0, 1.0))


def test_split_half_agreement_passes_the_two_halves():
    # 5 volumes: the first half has 5 // 2 = 2, the second 3. A callable that
    # returns (0 0 1 1) then (0 0 0 1) gives ARI 0 (computed above).
    X = np.arange(20.0).reshape(4, 5) ** 2
    seen = []
    answers = iter([[0, 0, 1, 1], [0, 0, 0, 1]])

    def cluster(X_half, connectivity, n_clusters):
        seen.append((X_half.copy(), connectivity.shape, n_clusters))
        return np.array(next(answers))

    ari = split_half_agreement(X, _chain(4), 2, cluster=cluster)
    assert ari == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_array_equal(seen[0][0], X[:, :2])
    np.testing.assert_array_equal(seen[1][0], X[:, 2:])
    assert [s[1:] for s in seen] == [((4, 4), 2), ((4, 4), 2)]


def test_split_half_agreement_of_ward_on_a_repeated_pattern():
    # Voxels 0-2 share one signal, 3-5 another, on very different baselines.
    # Each half z-scored, Ward cuts both halves into (0 0 0 1 1 1): ARI 1.
    # On the raw data the baselines decide instead: (0 1 1 1 1 1)-like cuts
    # that differ from the signal's split.
    t = np.arange(8.0)
    s1, s2 = np.sin(t), np.cos(2.1 * t)
    base = np.array([900.0, 100.0, 110.0, 120.0, 130.0, 140.0])[:, None]
    X = base + np.vstack([s1, s1 * 1.1, s1 * 0.9, s2, s2 * 1.2, s2 * 0.8])
    assert split_half_agreement(X, _chain(6), 2, standardize=True) == pytest.approx(1.0)
    z_half = (X[:, :4] - X[:, :4].mean(1, keepdims=True)) / X[:, :4].std(1, keepdims=True)
    labels = cut_tree(build_ward_tree(z_half, _chain(6)).children, 2)
    assert truth_agreement(labels, [0, 0, 0, 1, 1, 1]).ari == pytest.approx(1.0)
    raw = cut_tree(build_ward_tree(X[:, :4], _chain(6)).children, 2)
    assert truth_agreement(raw, [0, 0, 0, 1, 1, 1]).ari < 0.5


def test_compression_summary_by_hand_with_connectivity():
    # Voxels (1 2 3) and (3 2 1) anti-correlate: homogeneity -1 (the singleton
    # is left out). Sizes 2, 1: q1 = 1 + 0.25 = 1.25, q3 = 1.75.
    X = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [10.0, 10.0, 16.0]])
    base = compression_summary(X, [0, 0, 1])
    assert "n_noncontiguous" not in base
    summary = compression_summary(X, [0, 0, 1], connectivity=_chain(3))
    assert {k: summary[k] for k in base} == base
    assert summary["homogeneity"] == pytest.approx(-1.0)
    assert (summary["parcel_size_q1"], summary["parcel_size_q3"]) == (1.25, 1.75)
    assert summary["n_noncontiguous"] == 0
    # Voxels 0 and 2 together are not neighbours on the chain.
    split = compression_summary(X[[0, 2, 1]], [0, 1, 0], connectivity=_chain(3))
    assert split["n_noncontiguous"] == 1
    # Only single voxels: no pair to correlate, homogeneity is undefined.
    assert compression_summary(X, [0, 1, 2])["homogeneity"] is None


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: homogeneity(np.ones(4), [0, 0, 0, 0]), ValueError, "2D"),
        (lambda: homogeneity(HAND_X[:, :1], np.zeros(6, int)), ValueError, "at least 2"),
        (lambda: homogeneity(HAND_X, np.zeros(6)), TypeError, "integers"),
        (lambda: homogeneity(HAND_X, np.zeros(5, int)), ValueError, "5 entries for 6"),
        (lambda: homogeneity(HAND_X, HAND_LABELS, weighting="pairs"), ValueError, "weighting"),
        (lambda: homogeneity(np.full((2, 3), np.nan), [0, 0]), ValueError, "NaN"),
        (lambda: homogeneity(np.array([["a", "b"]] * 2), [0, 0]), TypeError, "real numbers"),
        (lambda: reconstruction_r2(np.array([[1.0, np.inf]]), [0]), ValueError, "NaN"),
        (lambda: contiguity([0, 1, 0], np.eye(3)), TypeError, "sparse"),
        (lambda: contiguity([0, 1, 0], _chain(4)), ValueError, "connectivity describes 4 samples but the data has 3"),
        (lambda: contiguity([0, 2, 0], _chain(3)), ValueError, "every parcel used"),
        (lambda: size_distribution([[0, 1]]), ValueError, "1D"),
        (lambda: truth_agreement([0, 1], [0, 1, 1]), ValueError, "3 entries for 2"),
        (lambda: truth_agreement([0.0, 1.0], [0, 1]), TypeError, "integers"),
        (lambda: truth_agreement([], []), ValueError, "empty"),
        (lambda: split_half_agreement(HAND_X, _chain(6), 7), ValueError, "between 1 and"),
        (lambda: split_half_agreement(HAND_X, _chain(6), 2.0), ValueError, "must be an integer"),
        (lambda: split_half_agreement(HAND_X, _chain(6), 2, cluster=3), TypeError, "callable"),
        (lambda: split_half_agreement(HAND_X, _chain(6), 2, standardize=True),
         ValueError, "at least 4"),
        (lambda: split_half_agreement(HAND_X, _chain(6), 2, cluster=lambda x, c, k: [0, 1]),
         ValueError, "half 1 has 2 entries"),
        (lambda: compression_summary(HAND_X, HAND_LABELS, connectivity=np.eye(6)),
         TypeError, "sparse"),
    ],
)
def test_bad_inputs(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_contiguity_accepts_any_sparse_format():
    labels = np.array([0, 1, 0, 1, 1])
    for fmt in ("coo", "csc", "lil"):
        graph = sparse.coo_matrix(_chain(5)).asformat(fmt)
        assert contiguity(labels, graph).n_noncontiguous == 2


# --------------------------------------------------------------------------
# The small embedded simulation
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim():
    from nipype_ward.datasets import simulate_rest_fmri

    data = simulate_rest_fmri(resolution=6, n_volumes=40, n_regions=60, random_state=0)
    mask = np.asarray(data.brain_mask_img.dataobj) > 0
    X = np.asarray(data.bold_img.dataobj)[mask].astype(np.float32)
    true = np.asarray(data.regions_img.dataobj)[mask].astype(np.intp) - 1  # 0 .. 59
    connectivity = grid_connectivity(mask)
    Z = X - X.mean(axis=1, keepdims=True)
    Z /= Z.std(axis=1, keepdims=True)
    # The true regions' voxels scattered at random over the brain: same sizes.
    scattered = np.random.default_rng(0).permutation(true)
    ward_raw = cut_tree(build_ward_tree(X, connectivity).children, 60)
    ward_z = cut_tree(build_ward_tree(Z, connectivity).children, 60)
    return {
        "X": X, "Z": Z, "true": true, "connectivity": connectivity,
        "scattered": scattered, "ward_raw": ward_raw, "ward_z": ward_z,
    }


def test_true_regions_are_more_homogeneous_than_scattered_ones(sim):
    # Voxels of a region share its fluctuation (correlation ~0.3 by design);
    # scattered, they only share the global signal (~0.06).
    true = homogeneity(sim["X"], sim["true"])
    scattered = homogeneity(sim["X"], sim["scattered"])
    assert true > 0.2
    assert scattered < 0.1
    assert true > 3 * scattered
    assert reconstruction_r2(sim["X"], sim["true"]) > 3 * reconstruction_r2(
        sim["X"], sim["scattered"]
    )


def test_ward_parcels_are_contiguous_and_kmeans_ones_are_not(sim):
    from sklearn.cluster import KMeans

    for key in ("ward_raw", "ward_z", "true"):
        result = contiguity(sim[key], sim["connectivity"])
        assert result.n_noncontiguous == 0, key
        assert result.n_pieces.tolist() == [1] * 60
    # k-means on the time series knows nothing of space: most of its parcels
    # are scattered in many pieces, as are the shuffled regions (all of them).
    kmeans = KMeans(n_clusters=60, n_init=1, random_state=0).fit_predict(sim["Z"])
    result = contiguity(kmeans, sim["connectivity"])
    assert result.n_noncontiguous > 30
    assert result.n_extra_pieces > 100
    assert contiguity(sim["scattered"], sim["connectivity"]).n_noncontiguous == 60


def test_truth_agreement_on_the_embedded_regions(sim):
    true = sim["true"]
    assert truth_agreement(true, true) == Agreement(1.0, 1.0)
    renumbered = np.random.default_rng(1).permutation(60)[true] + 100
    assert truth_agreement(renumbered, true) == pytest.approx(Agreement(1.0, 1.0))
    scattered = truth_agreement(sim["scattered"], true)
    assert abs(scattered.ari) < 0.01 and abs(scattered.ami) < 0.02
    # z-scored Ward recovers the regions; on raw intensities it follows the
    # baseline (tissue, coil field) instead.
    ward_z = truth_agreement(sim["ward_z"], true)
    ward_raw = truth_agreement(sim["ward_raw"], true)
    assert ward_z.ari > 0.8
    assert ward_raw.ari < 0.2


def test_zscored_ward_compresses_better_than_raw_ward(sim):
    X = sim["X"]
    assert reconstruction_r2(X, sim["ward_z"]) > 2 * reconstruction_r2(X, sim["ward_raw"])
    assert homogeneity(X, sim["ward_z"]) > 2 * homogeneity(X, sim["ward_raw"])
    # Raw Ward: one huge parcel and crumbs; z-scored: balanced sizes.
    raw, z = size_distribution(sim["ward_raw"]), size_distribution(sim["ward_z"])
    assert raw.max > 5 * z.max
    assert raw.median < z.median / 5


def test_split_half_agreement_on_the_embedded_data(sim):
    X, connectivity = sim["X"], sim["connectivity"]
    ward_z = split_half_agreement(X, connectivity, 60, standardize=True)
    assert ward_z > 0.4
    # Parcels of half-runs of unrelated noise agree far less.
    noise = np.random.default_rng(2).standard_normal(X.shape)
    assert split_half_agreement(noise, connectivity, 60, standardize=True) < ward_z / 2


def test_compression_summary_on_the_embedded_data(sim):
    # References written out with NumPy from the documented definitions.
    X, labels, connectivity = sim["X"], sim["ward_z"], sim["connectivity"]
    summary = compression_summary(X, labels, connectivity=connectivity)
    assert summary["n_noncontiguous"] == 0
    Xd = X.astype(np.float64)
    # R2: each voxel's centred series replaced by its parcel's mean one.
    Xc = Xd - Xd.mean(axis=1, keepdims=True)
    X_hat = np.empty_like(Xc)
    # Homogeneity: mean of np.corrcoef's off-diagonal entries within each
    # parcel of >= 2 voxels, weighted by the parcel's number of voxels.
    h, n = [], []
    for p in range(60):
        idx = np.flatnonzero(labels == p)
        X_hat[idx] = Xc[idx].mean(axis=0)
        if idx.size >= 2:
            corr = np.corrcoef(Xd[idx])
            h.append((corr.sum() - np.trace(corr)) / (idx.size * (idx.size - 1)))
            n.append(idx.size)
    r2 = 1.0 - np.sum((Xc - X_hat) ** 2) / np.sum(Xc ** 2)
    assert summary["r2"] == pytest.approx(r2, rel=1e-9)
    assert summary["homogeneity"] == pytest.approx(np.average(h, weights=n), rel=1e-9)
    sizes = np.bincount(labels, minlength=60)
    assert sizes.size == 60 and sizes.sum() == X.shape[0]
    q1, median, q3 = np.percentile(sizes, [25, 50, 75])
    assert summary["n_parcels"] == 60
    assert summary["compression_ratio"] == pytest.approx(X.shape[0] / 60, rel=1e-12)
    assert (summary["parcel_size_min"], summary["parcel_size_max"]) == (sizes.min(), sizes.max())
    assert (summary["parcel_size_q1"], summary["parcel_size_median"],
            summary["parcel_size_q3"]) == pytest.approx((q1, median, q3), rel=1e-12)
    scattered = compression_summary(X, sim["scattered"], connectivity=connectivity)
    assert scattered["n_noncontiguous"] == 60
