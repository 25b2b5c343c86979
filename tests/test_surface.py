"""Meshes, GIFTI and CIFTI: graphs against hand-made meshes and nilearn, Ward on
nilearn's bundled fsaverage5 against scikit-learn, files back through nibabel."""

import nibabel as nb
import numpy as np
import pytest
from conftest import assert_same_grayordinates
from nibabel import cifti2
from scipy.sparse import csgraph

from nipype_ward.core.connectivity import block_connectivity, mesh_connectivity
from nipype_ward.core.ward import build_ward_tree, cut_tree
from nipype_ward.io import cifti, gifti


def _edges(graph):
    coo = graph.tocoo()
    return {(int(a), int(b)) for a, b in zip(coo.row, coo.col) if a < b}


def test_mesh_connectivity_of_two_triangles():
    faces = np.array([[0, 1, 2], [1, 3, 2]])
    graph = mesh_connectivity(faces, 4)
    assert _edges(graph) == {(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)}
    assert (graph.diagonal() == 1).all() and (graph != graph.T).nnz == 0
    assert graph.max() == 1  # the shared edge 1-2 counts once
    # Restricted to vertices 3, 1, 0 (in that order): edges 3-1 and 1-0 remain.
    sub = mesh_connectivity(faces, 4, vertices=[3, 1, 0])
    assert _edges(sub) == {(0, 1), (1, 2)}
    with pytest.raises(ValueError, match="outside"):
        mesh_connectivity(faces, 3)
    with pytest.raises(ValueError, match="repeated"):
        mesh_connectivity(faces, 4, vertices=[1, 1])


@pytest.fixture(scope="module")
def fsaverage5():
    from nilearn.datasets import load_fsaverage

    return load_fsaverage("fsaverage5")["pial"]


@pytest.mark.filterwarnings("ignore::scipy.sparse.SparseEfficiencyWarning")  # nilearn's
def test_mesh_connectivity_has_nilearns_sparsity(fsaverage5):
    from nilearn.regions.parcellations import _connectivity_surface
    from nilearn.surface import SurfaceImage

    rng = np.random.default_rng(0)
    masks = {part: rng.random(mesh.n_vertices) > 0.2 for part, mesh in fsaverage5.parts.items()}
    reference = _connectivity_surface(SurfaceImage(mesh=fsaverage5, data=masks))
    ours = block_connectivity([
        mesh_connectivity(np.asarray(fsaverage5.parts[part].faces),
                          fsaverage5.parts[part].n_vertices, vertices=masks[part])
        for part in ("left", "right")
    ])
    assert ours.shape == reference.shape
    assert _edges(ours) == _edges(reference)


def _smooth_signals(graph, n_volumes, rng, steps=4):
    """Random signals diffused over a graph: neighbouring vertices correlate."""
    X = rng.normal(size=(graph.shape[0], n_volumes))
    degree = np.asarray(graph.sum(axis=1)).ravel()
    for _ in range(steps):
        X = (graph @ X) / degree[:, None]
    return X


def test_ward_on_both_hemispheres_is_scikit_learns_on_each(fsaverage5):
    from sklearn.cluster import AgglomerativeClustering

    rng = np.random.default_rng(1)
    graphs = [mesh_connectivity(np.asarray(fsaverage5.parts[part].faces),
                                fsaverage5.parts[part].n_vertices) for part in ("left", "right")]
    assert all(csgraph.connected_components(graph)[0] == 1 for graph in graphs)
    parts = [_smooth_signals(graph, 30, rng) for graph in graphs]
    X, graph = np.vstack(parts), block_connectivity(graphs)
    n_left = parts[0].shape[0]
    labels = cut_tree(build_ward_tree(X, graph, warn_components=False).children, 300)
    assert len(np.unique(labels)) == 300  # K counts parcels over both hemispheres
    left, right = labels[:n_left], labels[n_left:]
    assert not set(left) & set(right)  # no parcel spans the hemispheres
    for part, hemisphere, sub in zip(parts, (left, right), graphs):
        k = len(np.unique(hemisphere))
        reference = AgglomerativeClustering(n_clusters=k, linkage="ward",
                                            connectivity=sub).fit(part).labels_
        assert len(set(zip(hemisphere.tolist(), reference.tolist()))) == k
        for value in np.unique(hemisphere):  # every parcel is one piece of the mesh
            inside = np.flatnonzero(hemisphere == value)
            assert csgraph.connected_components(sub[inside][:, inside])[0] == 1


def test_gifti_series_and_labels_go_through_nibabel(tmp_path, fsaverage5):
    rng = np.random.default_rng(2)
    paths = []
    for part, hemi in (("left", "L"), ("right", "R")):
        mesh = fsaverage5.parts[part]
        data = rng.normal(size=(mesh.n_vertices, 12)).astype(np.float32)
        data[:50] = 0.0  # no data there (as a medial wall)
        img = nb.gifti.GiftiImage(darrays=[
            nb.gifti.GiftiDataArray(data[:, t], intent="NIFTI_INTENT_TIME_SERIES",
                                    datatype="float32") for t in range(12)])
        path = tmp_path / f"sub-01_hemi-{hemi}_space-fsaverage5_bold.func.gii"
        nb.save(img, path)
        paths.append(path)
    meshes = [gifti.load_mesh(path) for path in _write_surfaces(tmp_path, fsaverage5)]
    series = gifti.load_hemisphere_series(*paths, meshes=meshes)
    assert [v[0] for v in series.vertices] == [50, 50]
    assert series.X.shape == (2 * (10242 - 50), 12) and series.X.dtype == np.float32
    labels = np.zeros(10242, dtype=int)
    labels[series.vertices[0]] = rng.integers(1, 8, size=series.vertices[0].size)
    out = gifti.save_labels(labels, 7, tmp_path / "sub-01_hemi-L_space-fsaverage5_seg-ward"
                            "_scale-7_dseg.label.gii", hemisphere="L")
    back = nb.load(out)
    np.testing.assert_array_equal(back.darrays[0].data, labels)
    assert back.darrays[0].intent == nb.nifti1.intent_codes["NIFTI_INTENT_LABEL"]
    assert sorted(back.labeltable.get_labels_as_dict()) == list(range(8))
    assert back.labeltable.get_labels_as_dict()[3] == "parcel_3"
    with pytest.raises(Exception, match="vertices, but the L mesh has"):
        gifti.load_hemisphere_series(paths[0], paths[1], meshes=[meshes[0].__class__(
            meshes[0].coordinates[:100], meshes[0].faces[:10]), meshes[1]])


def _brain_models(fsaverage5):
    """Both fsaverage5 cortices (50 vertices left out of each) and two adjacent
    subcortical blocks on a 10^3 volume."""
    left = cifti2.BrainModelAxis.from_mask(np.arange(10242) >= 50, name="CortexLeft")
    right = cifti2.BrainModelAxis.from_mask(np.arange(10242) >= 50, name="CortexRight")
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    thalamus = np.zeros((10, 10, 10), bool)
    thalamus[2:5, 2:5, 2:5] = True
    caudate = np.zeros((10, 10, 10), bool)
    caudate[5:7, 2:5, 2:5] = True  # touches the thalamus block along x
    volume = (cifti2.BrainModelAxis.from_mask(thalamus, name="ThalamusLeft", affine=affine)
              + cifti2.BrainModelAxis.from_mask(caudate, name="CaudateLeft", affine=affine))
    return left + right + volume


def test_grayordinate_graph_is_block_diagonal_by_structure(fsaverage5):
    models = _brain_models(fsaverage5)
    faces = {"CIFTI_STRUCTURE_CORTEX_LEFT": np.asarray(fsaverage5.parts["left"].faces),
             "CIFTI_STRUCTURE_CORTEX_RIGHT": np.asarray(fsaverage5.parts["right"].faces)}
    graph = cifti.grayordinate_connectivity(models, faces)
    assert graph.shape == (len(models), len(models))
    pieces = [part for _, part, _ in cifti.structures(models)]
    n_pieces, components = csgraph.connected_components(graph)
    assert n_pieces == 4  # two cortices, two subcortical structures
    for part in pieces:
        assert len(np.unique(components[part])) == 1
    left = pieces[0]
    assert _edges(graph[left][:, left]) == _edges(mesh_connectivity(
        faces["CIFTI_STRUCTURE_CORTEX_LEFT"], 10242, vertices=np.arange(50, 10242)))
    thalamus = pieces[2]
    voxels = models.voxel[thalamus]
    expected = {(i, j) for i in range(len(voxels)) for j in range(i + 1, len(voxels))
                if np.abs(voxels[i] - voxels[j]).sum() == 1}
    assert _edges(graph[thalamus][:, thalamus]) == expected  # 6-neighbours, by hand
    with pytest.raises(ValueError, match="no mesh given"):
        cifti.grayordinate_connectivity(models, {})


def test_cifti_labels_and_parcel_series_go_through_nibabel(tmp_path, fsaverage5):
    models = _brain_models(fsaverage5)
    rng = np.random.default_rng(3)
    n = len(models)
    series = cifti2.SeriesAxis(start=0.0, step=2.0, size=15)
    data = rng.normal(size=(15, n)).astype(np.float32)
    dtseries = tmp_path / "sub-01_task-rest_space-fsLR_den-91k_bold.dtseries.nii"
    nb.save(cifti2.Cifti2Image(data, header=cifti2.Cifti2Header.from_axes((series, models))),
            dtseries)
    dense = cifti.load_dtseries(dtseries)
    np.testing.assert_array_equal(dense.X, data.T)
    assert dense.series.step == 2.0
    # Our grayordinates, read from the map, hold what nibabel's axis holds.
    assert_same_grayordinates(dense.brain_models, models)
    assert dense.brain_models == cifti.Grayordinates.from_axis(models)
    # The parcels of a .ptseries.nii written here are those nibabel makes from the
    # labels (ParcelsAxis.from_brain_models, one BrainModelAxis cut per parcel).
    values = rng.integers(1, 11, size=n)
    dlabel = cifti.save_dlabel(values, models, tmp_path / "ward10.dlabel.nii")
    back = nb.load(dlabel)
    label_axis, model_axis = (back.header.get_axis(i) for i in range(2))
    assert isinstance(label_axis, cifti2.LabelAxis) and model_axis == models
    assert sorted(label_axis.label[0]) == list(range(11))
    np.testing.assert_array_equal(np.asanyarray(back.dataobj)[0], values)
    means = np.stack([data.T[values == k].mean(axis=0) for k in range(1, 11)])
    ptseries = cifti.save_ptseries(means, values, models, series, tmp_path / "ward10.ptseries.nii")
    back = nb.load(ptseries)
    series_axis, parcels = (back.header.get_axis(i) for i in range(2))
    assert isinstance(parcels, cifti2.ParcelsAxis) and len(parcels) == 10
    assert parcels == cifti2.ParcelsAxis.from_brain_models(
        [(f"parcel_{k:02d}", models[values == k]) for k in range(1, 11)])
    assert series_axis.size == 15
    np.testing.assert_allclose(np.asanyarray(back.dataobj), means.T, rtol=1e-6)
    bad = tmp_path / "nan.dtseries.nii"
    data[0, 5] = np.nan
    nb.save(cifti2.Cifti2Image(data, header=cifti2.Cifti2Header.from_axes((series, models))), bad)
    with pytest.raises(Exception, match="1 grayordinates hold NaN"):
        cifti.load_dtseries(bad)


def _write_surfaces(tmp_path, fsaverage5):
    paths = []
    for part, hemi in (("left", "L"), ("right", "R")):
        mesh = fsaverage5.parts[part]
        surface = nb.gifti.GiftiImage(darrays=[
            nb.gifti.GiftiDataArray(np.asarray(mesh.coordinates, np.float32),
                                    intent="NIFTI_INTENT_POINTSET", datatype="float32"),
            nb.gifti.GiftiDataArray(np.asarray(mesh.faces, np.int32),
                                    intent="NIFTI_INTENT_TRIANGLE", datatype="int32")])
        path = tmp_path / f"tpl-fsaverage_hemi-{hemi}_den-10k_pial.surf.gii"
        nb.save(surface, path)
        paths.append(path)
    return paths


def _run_surface_wf(tmp_path, bold, right, surfaces, k):
    from nipype_ward.workflows import init_ward_parcellation_wf

    wf = init_ward_parcellation_wf(n_clusters=(k,), surfaces=surfaces, split_half=False,
                                   save_compressed=True, name="surface_wf")
    wf.base_dir = str(tmp_path / "work")
    # A GIFTI pair is one series of two files, the left hemisphere's first.
    wf.inputs.inputnode.bold_file = str(bold) if right is None else [str(bold), str(right)]
    result = wf.run(plugin="Linear")
    nodes = {node.name: node for node in result.nodes()}
    (labels_file,) = nodes["cut_tree"].result.outputs.labels_file
    (timeseries,) = nodes["parcel_compress"].result.outputs.timeseries_file
    (compressed,) = nodes["parcel_compress"].result.outputs.compressed_file
    return labels_file, timeseries, compressed


def _sklearn_per_structure(X, models, graph, labels):
    from sklearn.cluster import AgglomerativeClustering

    for _, part, _ in cifti.structures(models):
        mine = labels[part]
        k = len(np.unique(mine))
        if k == mine.size:
            continue
        reference = AgglomerativeClustering(n_clusters=k, linkage="ward",
                                            connectivity=graph[part][:, part]).fit(X[part]).labels_
        assert len(set(zip(mine.tolist(), reference.tolist()))) == k


@pytest.mark.filterwarnings("ignore::scipy.sparse.SparseEfficiencyWarning")  # nilearn's
def test_the_workflow_parcellates_a_gifti_pair_as_scikit_learn(tmp_path, fsaverage5):
    import json

    import pandas as pd
    from nilearn.regions.parcellations import _connectivity_surface
    from nilearn.surface import SurfaceImage

    rng = np.random.default_rng(4)
    surfaces = _write_surfaces(tmp_path, fsaverage5)
    series, kept = [], {}
    for part, hemi in (("left", "L"), ("right", "R")):
        mesh = fsaverage5.parts[part]
        graph = mesh_connectivity(np.asarray(mesh.faces), mesh.n_vertices)
        data = (1000 + 10 * _smooth_signals(graph, 40, rng)).astype(np.float32)
        data[:50] = 0.0  # a "medial wall" without data
        kept[part] = np.arange(mesh.n_vertices) >= 50
        img = nb.gifti.GiftiImage(darrays=[nb.gifti.GiftiDataArray(
            data[:, t], intent="NIFTI_INTENT_TIME_SERIES", datatype="float32")
            for t in range(40)])
        path = tmp_path / f"sub-01_task-rest_hemi-{hemi}_space-fsaverage5_bold.func.gii"
        nb.save(img, path)
        path.with_name(path.name.replace(".func.gii", ".json")).write_text(
            json.dumps({"RepetitionTime": 2.0}))
        series.append((path, data[50:]))
    labels_file, timeseries, compressed = _run_surface_wf(
        tmp_path, series[0][0], series[1][0], surfaces, 120)
    assert labels_file.endswith(".dlabel.nii") and compressed.endswith(".dtseries.nii")
    dlabel = nb.load(labels_file)
    models = dlabel.header.get_axis(1)
    labels = np.asanyarray(dlabel.dataobj)[0]
    assert sorted(np.unique(labels)) == list(range(1, 121))  # K over both hemispheres
    X = np.vstack([data for _, data in series]).astype(np.float64)
    reference_graph = _connectivity_surface(SurfaceImage(mesh=fsaverage5, data=kept))
    n_left = series[0][1].shape[0]
    assert not set(labels[:n_left]) & set(labels[n_left:])  # none spans the hemispheres
    _sklearn_per_structure(X, models, reference_graph.tocsr(), labels)
    table = pd.read_csv(timeseries, sep="\t")
    assert table.shape == (40, 120)
    dense = nb.load(compressed)
    assert dense.header.get_axis(1) == models and dense.header.get_axis(0).step == 2.0
    values = np.asanyarray(dense.dataobj).T
    first = labels == int(table.columns[0])
    np.testing.assert_allclose(values[first][0], X[first].mean(axis=0), rtol=1e-5)


def test_the_workflow_parcellates_a_cifti_series_by_structure(tmp_path, fsaverage5):
    rng = np.random.default_rng(5)
    surfaces = _write_surfaces(tmp_path, fsaverage5)
    models = _brain_models(fsaverage5)
    faces = {"CIFTI_STRUCTURE_CORTEX_LEFT": np.asarray(fsaverage5.parts["left"].faces),
             "CIFTI_STRUCTURE_CORTEX_RIGHT": np.asarray(fsaverage5.parts["right"].faces)}
    graph = cifti.grayordinate_connectivity(models, faces)
    X = _smooth_signals(graph, 30, rng)
    series = cifti2.SeriesAxis(start=0.0, step=0.8, size=30)
    bold = tmp_path / "sub-01_task-rest_space-fsLR_den-91k_bold.dtseries.nii"
    nb.save(cifti2.Cifti2Image(X.T.astype(np.float32),
                               header=cifti2.Cifti2Header.from_axes((series, models))), bold)
    labels_file, timeseries, compressed = _run_surface_wf(tmp_path, bold, None, surfaces, 200)
    dlabel = nb.load(labels_file)
    assert dlabel.header.get_axis(1) == models
    labels = np.asanyarray(dlabel.dataobj)[0]
    assert len(np.unique(labels)) == 200
    pieces = [labels[part] for _, part, _ in cifti.structures(models)]
    for a in range(len(pieces)):  # no parcel joins two structures
        for b in range(a + 1, len(pieces)):
            assert not set(pieces[a]) & set(pieces[b])
    _sklearn_per_structure(X.astype(np.float32).astype(np.float64), models, graph, labels)
    assert nb.load(compressed).header.get_axis(0).step == 0.8  # the TR of the series


def test_fsaverage5_meshes_are_nilearns_bundled_ones(fsaverage5):
    from nipype_ward.templates import surface_meshes

    for path, part in zip(surface_meshes("fsaverage5"), ("left", "right")):
        mesh = gifti.load_mesh(path)
        assert mesh.n_vertices == 10242
        np.testing.assert_array_equal(mesh.faces, np.asarray(fsaverage5.parts[part].faces))


def _meshes_in_a_subprocess(home, space="fsLR"):
    import os
    import subprocess
    import sys

    code = ("from nipype_ward.templates import surface_meshes\n"
            "from nipype_ward.io.errors import InputError\n"
            f"try:\n    print(*surface_meshes({space!r}), sep='\\n')\n"
            "except InputError as exc:\n    print('error:', exc)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TEMPLATEFLOW_HOME": str(home)})


def test_fslr_meshes_come_from_the_templateflow_cache(tmp_path, fsaverage5):
    home = tmp_path / "templateflow"
    (home / "tpl-fsLR").mkdir(parents=True)
    written = []
    for hemi, surface in zip("LR", _write_surfaces(tmp_path, fsaverage5)):
        target = home / "tpl-fsLR" / f"tpl-fsLR_den-32k_hemi-{hemi}_midthickness.surf.gii"
        target.write_bytes(surface.read_bytes())
        written.append(str(target))
    proc = _meshes_in_a_subprocess(home)
    assert proc.stdout.split() == written, proc.stderr
    # Where the cache only names the files (TemplateFlow's placeholders), a clear
    # error, nothing downloaded.
    proc = _meshes_in_a_subprocess(tmp_path / "empty")
    assert "error:" in proc.stdout and "not in the TemplateFlow cache" in proc.stdout, \
        proc.stdout + proc.stderr
    assert "--surfaces" in proc.stdout


def test_explicit_and_unknown_meshes(tmp_path):
    from nipype_ward.io.errors import InputError
    from nipype_ward.templates import surface_meshes

    with pytest.raises(InputError, match="no meshes known"):
        surface_meshes("MNI152NLin2009cAsym")
    with pytest.raises(InputError, match="--surfaces: no such file"):
        surface_meshes("fsLR", surfaces=(tmp_path / "l.surf.gii", tmp_path / "r.surf.gii"))


def test_bad_surface_inputs_are_one_clear_error_and_write_nothing(tmp_path, fsaverage5):
    from nipype_ward.interfaces import MeshConnectivity, PrepareSignals

    rng = np.random.default_rng(6)
    left = tmp_path / "sub-01_hemi-L_space-fsaverage5_bold.func.gii"
    nb.save(nb.gifti.GiftiImage(darrays=[nb.gifti.GiftiDataArray(
        rng.normal(size=10242).astype(np.float32), intent="NIFTI_INTENT_TIME_SERIES",
        datatype="float32") for _ in range(5)]), left)
    run_dir = tmp_path / "prepare"
    run_dir.mkdir()
    with pytest.raises(Exception, match="a GIFTI series is one hemisphere: give the left"):
        PrepareSignals(in_file=str(left)).run(cwd=str(run_dir))
    assert not list(run_dir.glob("*.npy")) and not list(run_dir.glob("*.nii"))
    # A mesh of another space than the data's: named, with what to do.
    points = tmp_path / "points.dscalar.nii"
    cifti.save_points(_brain_models(fsaverage5), points)
    small = tmp_path / "small.surf.gii"
    nb.save(nb.gifti.GiftiImage(darrays=[
        nb.gifti.GiftiDataArray(np.zeros((4, 3), np.float32), intent="NIFTI_INTENT_POINTSET",
                                datatype="float32"),
        nb.gifti.GiftiDataArray(np.array([[0, 1, 2], [1, 2, 3]], np.int32),
                                intent="NIFTI_INTENT_TRIANGLE", datatype="int32")]), small)
    run_dir = tmp_path / "mesh"
    run_dir.mkdir()
    with pytest.raises(Exception, match=r"small.surf.gii: a mesh of 4 vertices, but the data "
                                        r"have 10242 for CIFTI_STRUCTURE_CORTEX_LEFT"):
        MeshConnectivity(mask_file=str(points), left_surface=str(small),
                         right_surface=str(small)).run(cwd=str(run_dir))
    assert not list(run_dir.glob("*.npz"))
