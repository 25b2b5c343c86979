import numpy as np
import pytest
from sklearn.cluster import FeatureAgglomeration

from nipype_ward.core.metrics import compression_summary, reconstruction_r2
from nipype_ward.core.parcels import (
    adjusted_rand_index,
    expand_parcels,
    parcel_means,
    parcel_sizes,
)
from nipype_ward.core.validation import check_n_clusters

X = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [10.0, 10.0, 16.0]])
LABELS = np.array([0, 0, 1])


@pytest.mark.parametrize("n, k_a, k_b", [(1, 1, 1), (2, 1, 2), (2, 2, 2), (7, 7, 7), (7, 1, 1),
                                         (5, 5, 1), (1000, 30, 7), (50000, 2000, 1000)])
def test_adjusted_rand_index_is_scikit_learns(n, k_a, k_b, rng):
    """Any integer labels (negative, sparse values) and the edge cases (one voxel, all
    singletons, one parcel) give scikit-learn's adjusted_rand_score."""
    from sklearn.metrics import adjusted_rand_score

    a = rng.integers(0, k_a, n) * 7 - 3
    b = rng.integers(0, k_b, n)
    for first, second in ((a, b), (b, a), (a, a * 2), (np.arange(n), np.arange(n)[::-1])):
        assert adjusted_rand_index(first, second) == pytest.approx(
            adjusted_rand_score(first, second), rel=1e-12, abs=1e-15)
    # By hand: {0, 1}{2, 3} against {0, 1, 2}{3}, 6 pairs: 2 together in the first, 3 in
    # the second, 1 in both; ARI = (1 - 2 * 3 / 6) / ((2 + 3) / 2 - 2 * 3 / 6) = 0.
    assert adjusted_rand_index([0, 0, 1, 1], [0, 0, 0, 1]) == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="label 3 and 2 voxels"):
        adjusted_rand_index([0, 1, 2], [0, 1])


def test_parcel_means_by_hand():
    np.testing.assert_allclose(parcel_means(X, LABELS), [[2, 2, 2], [10, 10, 16]])
    np.testing.assert_allclose(
        expand_parcels(parcel_means(X, LABELS), LABELS), [[2, 2, 2], [2, 2, 2], [10, 10, 16]]
    )
    assert parcel_sizes(LABELS).tolist() == [2, 1]


def test_r2_by_hand():
    # Voxels 0 and 1 are exactly anti-correlated: their parcel mean has no
    # fluctuation left, so their variance (2 + 2) is lost; voxel 2 (a parcel
    # of its own, variance 24) is kept: R2 = 1 - 4 / 28.
    assert reconstruction_r2(X, LABELS) == pytest.approx(1 - 4 / 28)
    assert reconstruction_r2(X, np.arange(3)) == pytest.approx(1.0)


def test_r2_ignores_baselines():
    # Same fluctuation on different baselines: one parcel keeps all of it.
    signal = np.sin(np.linspace(0, 6, 50))
    Y = np.vstack([signal + 100, signal + 5, signal])
    assert reconstruction_r2(Y, np.zeros(3, int)) == pytest.approx(1.0)


def test_r2_of_constant_data_is_an_error():
    with pytest.raises(ValueError, match="no temporal variance"):
        reconstruction_r2(np.ones((3, 4)), np.zeros(3, int))


def test_matches_feature_agglomeration_transform(rng):
    data = rng.standard_normal((30, 12))  # samples x features, as scikit-learn sees it
    agglo = FeatureAgglomeration(n_clusters=4).fit(data)
    ours = parcel_means(data.T, agglo.labels_)
    np.testing.assert_allclose(ours.T, agglo.transform(data))
    np.testing.assert_allclose(
        expand_parcels(ours, agglo.labels_).T, agglo.inverse_transform(agglo.transform(data))
    )


@pytest.mark.parametrize("n_samples", [9, 40])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parcel_moments_are_numpys_per_parcel(rng, dtype, n_samples):
    """Rows read in parcel order by the compiled loop (8 partial sums a row, and a
    tail: 9 samples, or a multiple of 8); labels shuffled, constant voxels among them:
    each sum is numpy's over the parcel's rows, and the same bits on one thread or two,
    with or without AVX2, and for a series whose rows are not contiguous (copied)."""
    from nipype_ward.core import _moments
    from nipype_ward.core import moments as module

    n_voxels, n_parcels = 61, 7
    X = rng.standard_normal((n_voxels, n_samples)).astype(dtype) * 10 + 100
    X[[4, 30, 31]] = 5.0  # constant voxels
    labels = rng.permutation(np.arange(n_voxels) % n_parcels)
    moments = module.parcel_moments(X, labels, n_parcels)
    values = X.astype(np.float64)
    centred = values - values.mean(axis=1, keepdims=True)
    centred[[4, 30, 31]] = 0.0
    norms = np.linalg.norm(centred, axis=1)
    unit = np.divide(centred, norms[:, None], out=np.zeros_like(centred),
                     where=norms[:, None] > 0)
    for parcel in range(n_parcels):
        rows = labels == parcel
        assert moments.sizes[parcel] == rows.sum()
        np.testing.assert_allclose(moments.sums[parcel], values[rows].sum(axis=0), rtol=1e-12)
        np.testing.assert_allclose(moments.centred_sums[parcel], centred[rows].sum(axis=0),
                                   rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(moments.unit_sums[parcel], unit[rows].sum(axis=0),
                                   rtol=1e-10, atol=1e-12)
        assert moments.n_varying[parcel] == rows.sum() - np.isin(np.flatnonzero(rows),
                                                                 [4, 30, 31]).sum()
    assert moments.total_variance == pytest.approx((centred ** 2).sum(), rel=1e-12)
    threaded = module.parcel_moments(X, labels, n_parcels, threads=2)
    strided = module.parcel_moments(np.asfortranarray(X), labels, n_parcels)
    for name in moments._fields:
        np.testing.assert_array_equal(getattr(threaded, name), getattr(moments, name))
        np.testing.assert_allclose(getattr(strided, name), getattr(moments, name),
                                   rtol=1e-12, atol=1e-12)
    # Each code path, on the rows of parcel 0 then those of the others.
    order = np.argsort(labels, kind="stable")
    paths = []
    for avx2 in (False, True):
        sums, means, varying = np.zeros((2, n_parcels, n_samples)), np.zeros(n_parcels), \
            np.zeros(n_parcels)
        total = _moments.add_moments(X, order, labels[order].astype(np.intp), sums, means,
                                     varying, avx2=avx2)
        paths.append((total, sums, means, varying))
    for one, other in zip(*paths):
        np.testing.assert_array_equal(one, other)
    np.testing.assert_array_equal(paths[0][1][0], moments.centred_sums)


def test_compression_summary_by_hand():
    summary = compression_summary(X, LABELS)
    assert summary == {
        "n_voxels": 3,
        "n_parcels": 2,
        "compression_ratio": 1.5,
        "r2": pytest.approx(1 - 4 / 28),
        "homogeneity": pytest.approx(-1.0),  # voxels 0 and 1 anti-correlate
        "parcel_size_min": 1,
        "parcel_size_q1": 1.25,
        "parcel_size_median": 1.5,
        "parcel_size_q3": 1.75,
        "parcel_size_max": 2,
    }


@pytest.mark.parametrize(
    ("labels", "message"),
    [([0, 2], "every parcel used"), ([-1, 0], "every parcel used"), ([[0]], "1D")],
)
def test_bad_labels(labels, message):
    with pytest.raises(ValueError, match=message):
        parcel_sizes(np.array(labels))


@pytest.mark.parametrize(
    ("value", "message"),
    [([], "empty"), ([0], "positive"), ([2.5], "positive"), ([True], "positive"),
     ([3, 3], "repeated")],
)
def test_bad_n_clusters(value, message):
    with pytest.raises(ValueError, match=message):
        check_n_clusters(value)


def test_n_clusters_accepts_one_int():
    assert check_n_clusters(np.int64(7)) == [7]
