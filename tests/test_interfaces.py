"""The four public interfaces (and the two the workflow uses), run for real."""

import json
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
import pytest
from nilearn.image import mean_img
from nilearn.masking import compute_epi_mask
from scipy import sparse
from sklearn.cluster import AgglomerativeClustering, FeatureAgglomeration
from sklearn.feature_extraction.image import grid_to_graph
from sklearn.metrics import adjusted_rand_score

from nipype_ward.interfaces import (
    CompareParcellations,
    CutWardTree,
    EPIMask,
    GridConnectivity,
    GroupMask,
    GroupSeries,
    GroupSplitHalf,
    MeshConnectivity,
    ParcelCompress,
    PlotCompression,
    PlotDenoisingCarpet,
    PlotGroupQuality,
    PlotParcelCarpet,
    PlotParcellation,
    PrepareSignals,
    ReduceSubject,
    WardAgglomerate,
    WardTree,
)
from nipype_ward.interfaces.bids import SplitHemispheres

OPTIONAL = {"brain_mask_file", "high_pass", "low_pass", "t_r", "confounds_file",
            "confounds_columns", "connectivity_file", "half_tree_files", "mask_file",
            "series_info", "true_regions_file", "title", "confounds_strategy", "fd_threshold",
            "dvars_threshold", "left_surface", "right_surface",
            # The carpet sample: not written, not drawn, not in the summary.
            "carpet", "carpet_file", "tree_file",
            # GroupSeries: the subjects' reduced series, or the runs' series (xor).
            "reduced_files", "subject_infos", "series_files", "mask_files", "series_infos",
            "run_subjects"}

INTERFACES = [EPIMask, GridConnectivity, MeshConnectivity, WardAgglomerate, ParcelCompress,
              WardTree, CutWardTree, PrepareSignals, PlotParcellation, PlotCompression, GroupMask,
              ReduceSubject, GroupSeries, GroupSplitHalf, CompareParcellations, PlotGroupQuality,
              SplitHemispheres, PlotDenoisingCarpet, PlotParcelCarpet]

PUBLIC_CONTRACT = {
    EPIMask: ({"in_file", "lower_cutoff", "upper_cutoff", "connected", "opening",
               "exclude_zeros"}, {"mask_file", "mean_file"}),
    GridConnectivity: ({"mask_file", "neighbourhood"}, {"connectivity_file", "n_components"}),
    WardAgglomerate: ({"in_file", "mask_file", "connectivity_file", "n_clusters"},
                      {"tree_file", "labels_files"}),
    ParcelCompress: ({"in_file", "labels_file"},
                     {"timeseries_file", "compressed_file", "metrics_file"}),
}


def _dir(path):
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def _own_traits(spec):
    base = set(spec.__mro__[1]().trait_names()) if spec.__mro__[1] is not object else set()
    names = set(spec().trait_names()) - {"trait_added", "trait_modified"}
    from nipype.interfaces.base import BaseInterfaceInputSpec, TraitedSpec

    inherited = set(BaseInterfaceInputSpec().trait_names()) | set(TraitedSpec().trait_names())
    return sorted(names - inherited) or sorted(names - base)


@pytest.mark.parametrize("interface", INTERFACES, ids=lambda i: i.__name__)
def test_every_trait_is_documented(interface):
    for spec in (interface.input_spec, interface.output_spec):
        for name in _own_traits(spec):
            trait = spec().trait(name)
            assert trait.desc, f"{interface.__name__}.{name} has no desc"
    inputs = interface.input_spec()
    for name in _own_traits(interface.input_spec):
        trait = inputs.trait(name)
        # Each input is either required or has a default, except these options,
        # whose absence means "not used" (or "read from the file", for t_r).
        assert trait.mandatory or trait.usedefault or name in OPTIONAL, \
            f"{interface.__name__}.{name}"


@pytest.mark.parametrize("interface", list(PUBLIC_CONTRACT), ids=lambda i: i.__name__)
def test_public_trait_names(interface):
    inputs, outputs = PUBLIC_CONTRACT[interface]
    assert inputs <= set(interface.input_spec().trait_names())
    assert outputs <= set(interface.output_spec().trait_names())


@pytest.fixture
def epi_outputs(small_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = EPIMask(in_file=str(small_data["bold"])).run(cwd=_dir(tmp_path / "mask"))
    return result.outputs


def test_epi_mask_equals_nilearn(small_data, epi_outputs):
    reference = compute_epi_mask(str(small_data["bold"]))
    ours = nb.load(epi_outputs.mask_file)
    assert ours.get_data_dtype() == np.uint8
    assert np.allclose(ours.affine, reference.affine)
    np.testing.assert_array_equal(np.asanyarray(ours.dataobj) > 0, reference.get_fdata() > 0)
    # The mean, computed in the same single read, has nilearn's very values.
    mean = nb.load(epi_outputs.mean_file)
    np.testing.assert_array_equal(mean.get_fdata(), mean_img(str(small_data["bold"])).get_fdata())
    # The EPI mask has work to do on this data: it must find the brain.
    truth = nb.load(small_data["mask"]).get_fdata() > 0
    found = np.asanyarray(ours.dataobj) > 0
    dice = 2 * (truth & found).sum() / (truth.sum() + found.sum())
    assert dice > 0.85


def test_epi_mask_options_follow_nilearn(small_data, tmp_path):
    options = {"lower_cutoff": 0.3, "upper_cutoff": 0.9, "connected": False, "opening": 0}
    result = EPIMask(in_file=str(small_data["bold"]), **options).run(cwd=str(tmp_path))
    reference = compute_epi_mask(str(small_data["bold"]), **options).get_fdata() > 0
    np.testing.assert_array_equal(nb.load(result.outputs.mask_file).get_fdata() > 0, reference)


def test_epi_mask_uses_a_given_brain_mask(small_data, tmp_path):
    result = EPIMask(
        in_file=str(small_data["bold"]), brain_mask_file=str(small_data["mask"])
    ).run(cwd=str(tmp_path))
    given = nb.load(small_data["mask"]).get_fdata() > 0
    np.testing.assert_array_equal(nb.load(result.outputs.mask_file).get_fdata() > 0, given)


def test_prepare_signals_reads_what_nilearn_reads(small_data, tmp_path):
    result = PrepareSignals(in_file=str(small_data["bold"])).run(cwd=str(tmp_path))
    reference_mask = compute_epi_mask(str(small_data["bold"])).get_fdata() > 0
    mask = nb.load(result.outputs.mask_file).get_fdata() > 0
    np.testing.assert_array_equal(mask, reference_mask)
    np.testing.assert_array_equal(
        nb.load(result.outputs.mean_file).get_fdata(),
        mean_img(str(small_data["bold"])).get_fdata(),
    )
    series = np.load(result.outputs.series_file, mmap_mode="r")
    assert series.dtype == np.float32  # the file holds float32: lossless
    # Voxels in the C order of the mask, exactly nibabel's values.
    np.testing.assert_array_equal(series, nb.load(small_data["bold"]).get_fdata()[mask])
    assert (result.outputs.n_voxels, result.outputs.n_volumes) == series.shape
    assert result.outputs.series_info["t_r"] == small_data["t_r"]
    assert result.outputs.series_info["source"] == str(small_data["bold"])


def _write_bold(path, data, affine, dtype, slope=None):
    img = nb.Nifti1Image(data.astype(dtype), affine)
    if slope is not None:
        img.header.set_slope_inter(*slope)
    nb.save(img, path)
    return str(path)


@pytest.mark.parametrize("kind", ["float64", "int16", "int16-scaled"])
def test_ward_agglomerate_equals_scikit_learn_on_float64_and_int16(
    small_data, epi_outputs, tmp_path, kind
):
    """The labels are scikit-learn's on the values nibabel reads, whatever the dtype.

    The float64 series has a small signal (std 1e-3) over a baseline of 1000:
    cast to float32 (7 significant digits), it would give other parcels.
    """
    source = nb.load(small_data["bold"])
    data = source.get_fdata()
    mask = nb.load(epi_outputs.mask_file).get_fdata() > 0
    centred = data - data.mean(axis=3, keepdims=True)
    if kind == "float64":
        values = 1000.0 + 1e-3 * centred / centred[mask].std()
        path = _write_bold(tmp_path / "bold64.nii.gz", values, source.affine, np.float64)
    elif kind == "int16":
        path = _write_bold(tmp_path / "bold16.nii.gz", np.round(data), source.affine, np.int16)
    else:
        raw = np.round((data - 3.0) / 0.1)
        path = _write_bold(tmp_path / "scaled16.nii.gz", raw, source.affine, np.int16,
                           slope=(0.1, 3.0))
    conn = GridConnectivity(mask_file=epi_outputs.mask_file).run(cwd=_dir(tmp_path / "c"))
    k = 60
    result = WardAgglomerate(
        in_file=path, mask_file=epi_outputs.mask_file,
        connectivity_file=conn.outputs.connectivity_file, n_clusters=[k],
    ).run(cwd=_dir(tmp_path / "w"))
    labels = np.asanyarray(nb.load(result.outputs.labels_files[0]).dataobj)[mask]
    X = nb.load(path).get_fdata()[mask]  # float64, nibabel's scaling
    connectivity = grid_to_graph(*mask.shape, mask=mask)

    def sklearn_labels(samples):
        return FeatureAgglomeration(
            n_clusters=k, connectivity=connectivity, linkage="ward"
        ).fit(samples.T).labels_

    assert _same_partition(labels, sklearn_labels(X))
    if kind == "float64":  # the test can tell: a float32 cast changes the parcels
        assert not _same_partition(labels, sklearn_labels(X.astype(np.float32)))


def test_grid_connectivity_equals_grid_to_graph(epi_outputs, tmp_path):
    result = GridConnectivity(mask_file=epi_outputs.mask_file).run(cwd=str(tmp_path))
    mask = nb.load(epi_outputs.mask_file).get_fdata() > 0
    ours = sparse.load_npz(result.outputs.connectivity_file)
    assert (ours != grid_to_graph(*mask.shape, mask=mask)).nnz == 0
    assert result.outputs.n_components == 1  # nilearn keeps the largest piece
    assert result.outputs.connectivity_file.startswith(str(tmp_path))


def test_ward_agglomerate_without_a_graph_is_scikit_learns_on_the_grid(
    small_data, epi_outputs, tmp_path
):
    """One node does the job: no connectivity_file, the mask's 6-neighbour grid.

    The reference is scikit-learn's AgglomerativeClustering on the voxels
    (samples) of the same masked series, its graph built by scikit-learn.
    """
    n_clusters = [20, 150]
    result = WardAgglomerate(
        in_file=str(small_data["bold"]), mask_file=epi_outputs.mask_file, n_clusters=n_clusters,
    ).run(cwd=_dir(tmp_path / "w"))
    mask = nb.load(epi_outputs.mask_file).get_fdata() > 0
    X = nb.load(small_data["bold"]).get_fdata(dtype=np.float32)[mask]
    connectivity = grid_to_graph(*mask.shape, mask=mask)
    for k, labels_file in zip(n_clusters, result.outputs.labels_files, strict=True):
        labels = np.asanyarray(nb.load(labels_file).dataobj)
        assert (labels[~mask] == 0).all()
        reference = AgglomerativeClustering(
            n_clusters=k, linkage="ward", connectivity=connectivity
        ).fit(X).labels_
        assert _same_partition(labels[mask], reference)


def test_ward_agglomerate_without_a_graph_refuses_surface_data(tmp_path):
    """Surface data have no grid: the error says to give the meshes' graph."""
    from nibabel import cifti2

    models = cifti2.BrainModelAxis.from_mask(np.ones(12, bool), name="CortexLeft")
    scalars = cifti2.ScalarAxis(["mask"])
    mask_file = tmp_path / "points.dscalar.nii"
    nb.save(cifti2.Cifti2Image(np.ones((1, 12), np.float32),
                               header=cifti2.Cifti2Header.from_axes((scalars, models))),
            mask_file)
    series_file = tmp_path / "series.npy"
    np.save(series_file, np.random.default_rng(0).random((12, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"points.dscalar.nii: surface data have no grid: "
                                         r"give connectivity_file"):
        WardAgglomerate(series_file=str(series_file), mask_file=str(mask_file),
                        n_clusters=[2]).run(cwd=_dir(tmp_path / "w"))


def _same_partition(a, b):
    pairs = set(zip(np.asarray(a).tolist(), np.asarray(b).tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def _numpy_r2(X, labels):
    """R2 as nipype_ward.core.metrics documents it, written out with NumPy.

    Each voxel's series is centred; ``X_hat`` replaces each centred series by
    its parcel's mean centred series; R2 = 1 - ||Xc - X_hat||^2 / ||Xc||^2.
    """
    Xc = np.asarray(X, dtype=np.float64)
    Xc = Xc - Xc.mean(axis=1, keepdims=True)
    X_hat = np.empty_like(Xc)
    for p in np.unique(labels):
        members = labels == p
        X_hat[members] = Xc[members].mean(axis=0)
    return 1.0 - np.sum((Xc - X_hat) ** 2) / np.sum(Xc ** 2)


def _numpy_homogeneity(X, labels):
    """Voxel-weighted mean within-parcel Pearson correlation (np.corrcoef), as
    documented: each parcel of at least 2 voxels gives the mean over its
    ordered pairs of distinct voxels, weighted by its number of voxels."""
    X = np.asarray(X, dtype=np.float64)
    total = weights = 0.0
    for p in np.unique(labels):
        idx = np.flatnonzero(labels == p)
        if idx.size < 2:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.nan_to_num(np.corrcoef(X[idx]), nan=0.0)  # constant voxels: 0
        h_p = (corr.sum() - np.trace(corr)) / (idx.size * (idx.size - 1))
        total += idx.size * h_p
        weights += idx.size
    return total / weights


def test_ward_agglomerate_equals_scikit_learn(small_data, epi_outputs, tmp_path):
    conn = GridConnectivity(mask_file=epi_outputs.mask_file).run(cwd=_dir(tmp_path / "c"))
    n_clusters = [20, 150]
    result = WardAgglomerate(
        in_file=str(small_data["bold"]),
        mask_file=epi_outputs.mask_file,
        connectivity_file=conn.outputs.connectivity_file,
        n_clusters=n_clusters,
    ).run(cwd=_dir(tmp_path / "w"))
    mask = nb.load(epi_outputs.mask_file).get_fdata() > 0
    X = nb.load(small_data["bold"]).get_fdata(dtype=np.float32)[mask]
    connectivity = grid_to_graph(*mask.shape, mask=mask)
    assert len(result.outputs.labels_files) == len(n_clusters)
    for k, labels_file in zip(n_clusters, result.outputs.labels_files):
        img = nb.load(labels_file)
        data = np.asanyarray(img.dataobj)
        assert img.get_data_dtype() == np.int32
        assert (data[~mask] == 0).all()
        assert sorted(np.unique(data[mask])) == list(range(1, k + 1))
        reference = FeatureAgglomeration(
            n_clusters=k, connectivity=connectivity, linkage="ward"
        ).fit(X.T)
        assert _same_partition(data[mask], reference.labels_)
    with np.load(result.outputs.tree_file) as tree:
        assert tree["children"].shape == (mask.sum() - 1, 2)
        assert tree["sizes"][-1] == mask.sum()
        assert np.all(np.isfinite(tree["distances"]))


@pytest.mark.parametrize("num_threads", [1, 2])
def test_quality_metrics_of_a_ward_parcellation(small_data, tmp_path, num_threads):
    """On 2 threads, the halves' trees are built at once and the 4D output compressed
    by two: the same numbers."""
    mask_file = str(small_data["mask"])
    conn = GridConnectivity(mask_file=mask_file).run(cwd=_dir(tmp_path / "c"))
    ward = WardAgglomerate(
        in_file=str(small_data["bold"]), mask_file=mask_file, n_clusters=[45],
        connectivity_file=conn.outputs.connectivity_file, split_half=True,
        num_threads=num_threads,
    ).run(cwd=_dir(tmp_path / "w"))
    assert len(ward.outputs.half_tree_files) == 2
    result = ParcelCompress(
        in_file=str(small_data["bold"]), labels_file=ward.outputs.labels_files[0],
        connectivity_file=conn.outputs.connectivity_file,
        half_tree_files=ward.outputs.half_tree_files, num_threads=num_threads,
    ).run(cwd=_dir(tmp_path / "p"))
    metrics = json.loads(Path(result.outputs.metrics_file).read_text())
    assert metrics["n_noncontiguous"] == 0  # Ward parcels are connected pieces
    mask = nb.load(mask_file).get_fdata() > 0
    X = nb.load(small_data["bold"]).get_fdata(dtype=np.float32)[mask]
    # scikit-learn's Ward on each half of the volumes (first n // 2, the rest), its ARI.
    graph = grid_to_graph(*mask.shape, mask=mask)
    n = X.shape[1]
    halves = [AgglomerativeClustering(n_clusters=45, linkage="ward", connectivity=graph)
              .fit_predict(part) for part in (X[:, : n // 2], X[:, n // 2:])]
    assert metrics["split_half_ari"] == pytest.approx(adjusted_rand_score(*halves), rel=1e-12)
    # References written out here from the documented definitions (NumPy).
    labels = np.asanyarray(nb.load(ward.outputs.labels_files[0]).dataobj)[mask]
    assert metrics["homogeneity"] == pytest.approx(_numpy_homogeneity(X, labels), rel=1e-6)
    assert metrics["r2"] == pytest.approx(_numpy_r2(X, labels), rel=1e-6)
    # The compressed image: each voxel's parcel mean (NumPy), nothing outside the mask.
    compressed = nb.load(result.outputs.compressed_file).get_fdata(dtype=np.float32)
    means = np.stack([X[labels == k].mean(axis=0) for k in range(1, 46)])
    np.testing.assert_allclose(compressed[mask], means[labels - 1], rtol=1e-5, atol=1e-3)
    assert not compressed[~mask].any()
    sizes = np.bincount(labels)[1:]  # labels 1..45 in the mask
    assert sizes.size == 45 and sizes.sum() == mask.sum()
    q1, median, q3 = np.percentile(sizes, [25, 50, 75])
    assert (metrics["parcel_size_min"], metrics["parcel_size_max"]) == (sizes.min(), sizes.max())
    assert (metrics["parcel_size_q1"], metrics["parcel_size_median"],
            metrics["parcel_size_q3"]) == pytest.approx((q1, median, q3), rel=1e-12)


def test_tree_and_cut_give_the_same_labels_as_agglomerate(small_data, epi_outputs, tmp_path):
    conn = GridConnectivity(mask_file=epi_outputs.mask_file).run(cwd=_dir(tmp_path / "c"))
    common = {
        "in_file": str(small_data["bold"]),
        "mask_file": epi_outputs.mask_file,
        "connectivity_file": conn.outputs.connectivity_file,
    }
    tree = WardTree(**common).run(cwd=_dir(tmp_path / "t"))
    cut = CutWardTree(
        tree_file=tree.outputs.tree_file, mask_file=epi_outputs.mask_file, n_clusters=33
    ).run(cwd=_dir(tmp_path / "k"))
    both = WardAgglomerate(**common, n_clusters=[33]).run(cwd=_dir(tmp_path / "a"))
    # The reference: scikit-learn's Ward on the same voxels and grid graph.
    mask = nb.load(epi_outputs.mask_file).get_fdata() > 0
    X = nb.load(small_data["bold"]).get_fdata(dtype=np.float32)[mask]
    reference = AgglomerativeClustering(
        n_clusters=33, linkage="ward", connectivity=grid_to_graph(*mask.shape, mask=mask)
    ).fit_predict(X)
    for labels_file in (cut.outputs.labels_file, both.outputs.labels_files[0]):
        data = np.asanyarray(nb.load(labels_file).dataobj)
        assert (data[~mask] == 0).all()
        assert sorted(np.unique(data[mask])) == list(range(1, 34))
        assert adjusted_rand_score(reference, data[mask]) == 1.0
        assert _same_partition(data[mask], reference)


def test_parcel_compress(small_data, tmp_path):
    regions = str(small_data["regions"])  # ground-truth regions as a parcellation
    result = ParcelCompress(in_file=str(small_data["bold"]), labels_file=regions).run(
        cwd=str(tmp_path)
    )
    labels = np.asanyarray(nb.load(regions).dataobj)
    mask = labels > 0
    X = nb.load(small_data["bold"]).get_fdata(dtype=np.float32)[mask]
    series = pd.read_csv(result.outputs.timeseries_file, sep="\t")
    n_parcels = len(np.unique(labels[mask]))
    assert series.shape == (X.shape[1], n_parcels)
    first = int(series.columns[0])
    np.testing.assert_allclose(series[str(first)], X[labels[mask] == first].mean(axis=0), rtol=1e-5)
    compressed = nb.load(result.outputs.compressed_file)
    assert compressed.shape == nb.load(small_data["bold"]).shape
    data = compressed.get_fdata()
    np.testing.assert_allclose(data[labels == first][0], series[str(first)], rtol=1e-5)
    assert (data[~mask] == 0).all()
    metrics = json.loads(open(result.outputs.metrics_file).read())
    assert metrics["n_voxels"] == int(mask.sum())
    assert metrics["n_parcels"] == n_parcels
    assert metrics["compression_ratio"] == pytest.approx(mask.sum() / n_parcels)
    # R2 written out with NumPy from its documented definition.
    assert metrics["r2"] == pytest.approx(_numpy_r2(X, labels[mask]), rel=1e-6)
    # The true regions share their fluctuations: far more variance is kept
    # than by parcels of the same sizes made of scattered voxels.
    shuffled = np.random.default_rng(0).permutation(labels[mask])
    assert metrics["r2"] > 3 * _numpy_r2(X, shuffled)


# --- bad input: one error, naming the file and the problem -------------------


@pytest.fixture
def tiny(tmp_path):
    rng = np.random.default_rng(0)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    bold = rng.normal(100, 5, (5, 5, 5, 6)).astype(np.float32)
    paths = {}
    for name, data, aff in [
        ("bold", bold, affine),
        ("vol3d", bold[..., 0], affine),
        ("mask", np.ones((5, 5, 5), np.uint8), affine),
        ("mask_other_grid", np.ones((5, 5, 4), np.uint8), affine),
        ("empty_mask", np.zeros((5, 5, 5), np.uint8), affine),
    ]:
        paths[name] = str(tmp_path / f"{name}.nii.gz")
        nb.save(nb.Nifti1Image(data, aff), paths[name])
    nan = bold.copy()
    nan[2, 2, 2, 3] = np.nan
    paths["nan_bold"] = str(tmp_path / "nan_bold.nii.gz")
    nb.save(nb.Nifti1Image(nan, affine), paths["nan_bold"])
    conn = GridConnectivity(mask_file=paths["mask"]).run(cwd=_dir(tmp_path / "c"))
    paths["conn"] = conn.outputs.connectivity_file
    paths["cwd"] = _dir(tmp_path / "node")
    return paths


def _ward(tiny, **changes):
    inputs = {"in_file": tiny["bold"], "mask_file": tiny["mask"],
              "connectivity_file": tiny["conn"], "n_clusters": [3]}
    inputs.update(
        {key: tiny.get(value, value) if isinstance(value, str) else value
         for key, value in changes.items()}
    )
    return WardAgglomerate(**inputs)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"in_file": "vol3d"}, r"vol3d.nii.gz: expected a 4D image"),
        ({"mask_file": "mask_other_grid"}, r"mask_other_grid.nii.gz: grid \(5, 5, 4\) differs"),
        ({"mask_file": "empty_mask"}, r"empty_mask.nii.gz: mask is empty"),
        ({"n_clusters": [126]}, r"mask.nii.gz: cannot make 126 parcels from a mask of 125 voxels"),
        ({"in_file": "nan_bold"}, r"nan_bold.nii.gz: 1 of the mask.s 125 voxels have NaN"),
    ],
)
def test_ward_agglomerate_bad_input(tiny, changes, message):
    with pytest.raises(ValueError, match=message):
        _ward(tiny, **changes).run(cwd=tiny["cwd"])


def test_ward_agglomerate_rejects_k_below_one(tiny):
    with pytest.raises(ValueError, match="n_clusters must be a positive integer, got 0"):
        _ward(tiny, n_clusters=[0]).run(cwd=tiny["cwd"])


def test_bad_k_fails_before_the_tree_is_built(tiny):
    with pytest.raises(ValueError):
        _ward(tiny, n_clusters=[10, 1000]).run(cwd=tiny["cwd"])
    assert not list(Path(tiny["cwd"]).glob("*_wardtree.npz"))


def test_cut_bad_k(tiny):
    tree = WardTree(in_file=tiny["bold"], mask_file=tiny["mask"],
                    connectivity_file=tiny["conn"]).run(cwd=tiny["cwd"])
    for k, message in [(0, "positive integer"), (500, "cannot make 500 parcels")]:
        with pytest.raises(ValueError, match=message):
            CutWardTree(tree_file=tree.outputs.tree_file, mask_file=tiny["mask"],
                        n_clusters=k).run(cwd=tiny["cwd"])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"in_file": "vol3d"}, r"vol3d.nii.gz: expected a 4D image"),
        ({"labels_file": "mask_other_grid"}, r"mask_other_grid.nii.gz: grid \(5, 5, 4\) differs"),
        ({"labels_file": "empty_mask"}, r"empty_mask.nii.gz: mask is empty"),
        ({"in_file": "nan_bold"}, r"nan_bold.nii.gz: 1 of the mask.s 125 voxels have NaN"),
    ],
)
def test_parcel_compress_bad_input(tiny, changes, message):
    inputs = {"in_file": tiny["bold"], "labels_file": tiny["mask"]}
    inputs.update({key: tiny[value] for key, value in changes.items()})
    with pytest.raises(ValueError, match=message):
        ParcelCompress(**inputs).run(cwd=tiny["cwd"])
    assert not list(Path(tiny["cwd"]).glob("*.tsv"))


def test_epi_mask_bad_input(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"mask_other_grid.nii.gz: grid \(5, 5, 4\) differs"):
        EPIMask(in_file=tiny["bold"], brain_mask_file=tiny["mask_other_grid"]).run(
            cwd=tiny["cwd"])
    with pytest.raises(ValueError, match=r"empty_mask.nii.gz: mask is empty"):
        EPIMask(in_file=tiny["bold"], brain_mask_file=tiny["empty_mask"]).run(cwd=tiny["cwd"])
    with pytest.raises(Exception, match="does not exist|nope.nii.gz"):
        EPIMask(in_file=str(tmp_path / "nope.nii.gz"))


def test_grid_connectivity_bad_input(tiny):
    with pytest.raises(ValueError, match=r"empty_mask.nii.gz: mask is empty"):
        GridConnectivity(mask_file=tiny["empty_mask"]).run(cwd=tiny["cwd"])
    with pytest.raises(ValueError, match=r"bold.nii.gz: expected a 3D image"):
        GridConnectivity(mask_file=tiny["bold"]).run(cwd=tiny["cwd"])
    with pytest.raises(Exception, match="neighbourhood"):
        GridConnectivity(mask_file=tiny["mask"], neighbourhood=8)


def test_export_files_links_large_working_files_and_copies_the_rest(tmp_path):
    """ExportFiles(hardlink=True) run as a Nipype node: a compressed series of
    LINK_FROM_BYTES or more is one file under two names, a small label image a copy,
    a metrics JSON rewritten with the labels' delivered path; nothing else is left."""
    from nipype.pipeline import engine as pe

    from nipype_ward.interfaces.io import ExportFiles
    from nipype_ward.io.files import LINK_FROM_BYTES

    work = tmp_path / "work"
    work.mkdir()
    series = work / "bold_ward20_compressed.nii.gz"
    series.write_bytes(b"\x07" * LINK_FROM_BYTES)
    labels = work / "bold_ward20.nii.gz"
    labels.write_bytes(b"\x01" * 1000)
    metrics = work / "bold_ward20_metrics.json"
    metrics.write_text(json.dumps({"labels_file": str(labels), "r2": 0.5}))
    out = tmp_path / "out"
    out.mkdir()
    targets = [out / "ward20_compressed.nii.gz", out / "ward20_labels.nii.gz",
               out / "ward20_metrics.json"]
    node = pe.Node(ExportFiles(hardlink=True), name="ds_results", base_dir=str(tmp_path / "wf"))
    node.inputs.in_files = [str(series), str(labels), str(metrics)]
    node.inputs.out_files = [str(path) for path in targets]
    node.run()
    assert targets[0].stat().st_ino == series.stat().st_ino and series.stat().st_nlink == 2
    assert targets[1].read_bytes() == labels.read_bytes() and labels.stat().st_nlink == 1
    assert json.loads(targets[2].read_text()) == {"labels_file": "ward20_labels.nii.gz",
                                                  "r2": 0.5}
    assert sorted(path.name for path in out.iterdir()) == sorted(path.name for path in targets)
