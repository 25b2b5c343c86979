"""The BIDS App on fMRIPrep's surface outputs: fsLR CIFTI-2 and fsaverage5 GIFTI pairs.

The dataset of conftest holds, for every run, the series on the real
meshes (nilearn's fsaverage5, the HCP's fsLR 32k); the references are
nibabel, nilearn's cleaning and scikit-learn's Ward on mesh graphs built
here from the meshes' triangles.
"""

import json
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
import pytest
from conftest import RUNS, fslr_meshes, run_app, write_templateflow_fslr
from scipy import sparse
from scipy.sparse import csgraph

K_FSLR = (30, 100)
K_FSAVERAGE = 40
CIFTI = "space-fsLR_den-91k"

#: The App on fsLR 32k and fsaverage5 series, several runs per test: the second tier.
pytestmark = pytest.mark.heavy


def _mesh_graph(faces, n_vertices, kept=None):
    """Vertex adjacency of a triangle mesh, restricted to ``kept`` (written for the tests)."""
    faces = np.asarray(faces)
    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    graph = sparse.coo_matrix((np.ones(rows.size), (rows, cols)),
                              shape=(n_vertices, n_vertices)).tocsr()
    graph = ((graph + graph.T) > 0).astype(float)
    if kept is not None:
        graph = graph[kept][:, kept]
    return graph


def _connected(graph, labels):
    """Whether every parcel is one piece of ``graph``."""
    for value in np.unique(labels):
        inside = np.flatnonzero(labels == value)
        if csgraph.connected_components(graph[inside][:, inside])[0] != 1:
            return False
    return True


def _same_partition(a, b):
    return len(set(zip(np.asarray(a).tolist(), np.asarray(b).tolist()))) \
        == len(set(np.asarray(a).tolist())) == len(set(np.asarray(b).tolist()))


def _validator_errors(folder):
    import subprocess

    proc = subprocess.run(["bids-validator-deno", "--json", str(folder)],
                          capture_output=True, text=True, timeout=300)
    return [(issue["code"], issue.get("location"))
            for issue in json.loads(proc.stdout)["issues"]["issues"]
            if issue["severity"] == "error"]


@pytest.fixture(scope="session")
def templateflow_home(tmp_path_factory):
    """A TemplateFlow cache holding fsLR 32k (conftest.fslr_meshes), as fMRIPrep users have."""
    return write_templateflow_fslr(tmp_path_factory.mktemp("templateflow"))


@pytest.fixture(scope="session")
def fslr_output(fmriprep_dir, templateflow_home, tmp_path_factory):
    """The App on the fsLR CIFTI series, defaults (simple confounds, z-scoring)."""
    root = tmp_path_factory.mktemp("fslr_app")
    proc = run_app(fmriprep_dir, root / "out", "participant", "--space", "fsLR:den-91k",
                   "--n-clusters", *K_FSLR, "--save-compressed", "-w", root / "work",
                   "--nprocs", 2, cwd=root, env={"TEMPLATEFLOW_HOME": str(templateflow_home)})
    assert proc.returncode == 0, proc.stderr
    return root / "out"


@pytest.mark.filterwarnings("ignore::UserWarning")  # nilearn's confounds notes
def test_fslr_cifti_parcels_are_scikit_learns_on_each_structure(fslr_output, fmriprep_dir):
    from nilearn import signal
    from nilearn.interfaces.fmriprep import load_confounds_strategy
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.image import grid_to_graph

    run = RUNS[2]
    bold = fmriprep_dir / f"{run}_{CIFTI}_bold.dtseries.nii"
    source = nb.load(bold)
    models = source.header.get_axis(1)
    k = K_FSLR[1]
    stem = fslr_output / f"{run}_space-fsLR_seg-ward_scale-{k}_den-91k"
    dlabel = nb.load(f"{stem}_dseg.dlabel.nii")
    assert dlabel.header.get_axis(1) == models  # the source's brain models
    (table,) = dlabel.header.get_axis(0).label
    assert sorted(table) == list(range(k + 1)) and table[0][0] == "???"
    assert table[7][0] == "parcel_007"
    labels = np.asanyarray(dlabel.dataobj)[0].astype(int)
    assert sorted(set(labels.tolist())) == list(range(1, k + 1))  # K in all, every one
    # nilearn cleans the series as the App's defaults say.
    confounds, _ = load_confounds_strategy(str(bold), denoise_strategy="simple")
    cleaned = signal.clean(np.asanyarray(source.dataobj, dtype=np.float32),
                           confounds=confounds.to_numpy(), standardize="zscore_sample",
                           standardize_confounds=True, detrend=False, filter=False, t_r=2.0,
                           ensure_finite=False).T
    (paths, cortex) = fslr_meshes()
    seen = set()
    for name, part, model in models.iter_structures():
        mine = labels[part]
        assert not seen & set(mine.tolist())  # no parcel spans two structures
        seen |= set(mine.tolist())
        if model.volume_mask.any():
            voxels = model.voxel
            box = np.zeros(voxels.max(axis=0) + 1, bool)
            box[tuple(voxels.T)] = True
            graph = grid_to_graph(*box.shape, mask=box)
            order = np.ravel_multi_index(tuple(voxels.T), box.shape)
            rank = np.argsort(np.argsort(order))  # grid_to_graph numbers voxels in C order
            graph = graph.tocsr()[rank][:, rank]
        else:
            hemi = 0 if name.endswith("LEFT") else 1
            mesh = nb.load(paths[hemi])
            faces = mesh.agg_data("NIFTI_INTENT_TRIANGLE")
            graph = _mesh_graph(faces, mesh.darrays[0].data.shape[0], model.vertex)
        assert _connected(graph, mine), name
        n_here = len(set(mine.tolist()))
        if n_here < mine.size:
            reference = AgglomerativeClustering(n_clusters=n_here, linkage="ward",
                                                connectivity=graph).fit(cleaned[part]).labels_
            assert _same_partition(mine, reference), name
    # The parcel series: the TSV, the .ptseries.nii and the compressed series agree
    # with the cleaned grayordinates' means.
    series = pd.read_csv(f"{stem}_stat-mean_timeseries.tsv", sep="\t")
    assert series.shape == (source.shape[0], k)
    first = labels == int(series.columns[0])
    np.testing.assert_allclose(series.iloc[:, 0], cleaned[first].mean(axis=0),
                               rtol=1e-4, atol=1e-5)
    parcels = nb.load(f"{stem}_stat-mean_timeseries.ptseries.nii")
    axis = parcels.header.get_axis(1)
    assert len(axis) == k and axis.name[0] == "parcel_001"
    np.testing.assert_allclose(np.asanyarray(parcels.dataobj)[:, 0],
                               cleaned[labels == 1].mean(axis=0), rtol=1e-4, atol=1e-5)
    compressed = nb.load(fslr_output / f"{run}_{CIFTI}_desc-ward{k}_bold.dtseries.nii")
    assert compressed.header.get_axis(1) == models
    assert compressed.header.get_axis(0).step == 2.0
    np.testing.assert_allclose(np.asanyarray(compressed.dataobj)[:, first][:, 0],
                               cleaned[first].mean(axis=0), rtol=1e-4, atol=1e-5)


def test_fslr_outputs_have_their_tables_sidecars_and_figures(fslr_output):
    for run in RUNS:
        for k in K_FSLR:
            stem = fslr_output / f"{run}_space-fsLR_seg-ward_scale-{k}_den-91k"
            table = pd.read_csv(f"{stem}_dseg.tsv", sep="\t")
            assert list(table.columns) == ["index", "name", "n_grayordinates", "structure"]
            labels = np.asanyarray(nb.load(f"{stem}_dseg.dlabel.nii").dataobj)[0]
            assert table["n_grayordinates"].tolist() == np.bincount(labels)[1:].tolist()
            assert set(table["structure"]) == {"CORTEX_LEFT", "CORTEX_RIGHT",
                                               "THALAMUS_LEFT", "THALAMUS_RIGHT"}
            meta = json.loads(Path(f"{stem}_dseg.json").read_text())
            assert meta["Density"].startswith(f"den-91k: {labels.size} grayordinates")
            assert meta["Sources"][0].endswith(f"{Path(run).name}_{CIFTI}_bold.dtseries.nii")
            metrics = json.loads(Path(f"{stem}_metrics.json").read_text())
            assert metrics["n_parcels"] == k and metrics["n_noncontiguous"] == 0
            figures = fslr_output / run.split("/")[0] / "figures"
            name = Path(run).name + f"_space-fsLR_seg-ward_scale-{k}_den-91k"
            for kind in ("parcellation", "compression", "parcelcarpet"):
                png = figures / f"{name}_desc-{kind}_bold.png"
                assert png.stat().st_size > 10_000  # drawn, not empty
        # The run's denoising carpet, rows sampled from its grayordinates.
        carpet = figures / f"{Path(run).name}_space-fsLR_den-91k_desc-carpet_bold.png"
        assert carpet.stat().st_size > 100_000
    # The original volume is drawn with contrast: its cortex spans the grey scale (the
    # test data's subcortical voxels hold outliers that would leave it black).
    import matplotlib.image as mpimg

    png = figures / f"{name}_desc-compression_bold.png"
    grey = mpimg.imread(png)[..., :3].mean(axis=2)
    left = grey[40:, : grey.shape[1] // 2]  # the original's lateral views, no title
    drawn = left[left < 0.97]
    assert 0.3 < np.median(drawn) < 0.7 and np.percentile(drawn, 90) - np.percentile(
        drawn, 10) > 0.3
    # The report speaks of grayordinates and meshes, not voxels and masks.
    about = (fslr_output / "sub-01" / "figures" / "sub-01_desc-about_bold.html").read_text()
    assert "neighbours on the cortical mesh" in about and "brain mask" not in about
    assert "59540 grayordinates" in (figures / f"{Path(run).name}_space-fsLR_seg-ward_den-91k_"
                                     "desc-summary_bold.html").read_text()
    assert (fslr_output / "sub-01.html").is_file()
    assert "*_space-fsLR_*" in (fslr_output / ".bidsignore").read_text().split()
    assert _validator_errors(fslr_output) == []


def test_fsaverage5_gifti_pair_is_scikit_learns_on_each_hemisphere(fmriprep_dir, tmp_path):
    from nilearn.datasets import load_fsaverage
    from sklearn.cluster import AgglomerativeClustering

    out = tmp_path / "out"
    proc = run_app(fmriprep_dir, out, "participant", "--space", "fsaverage5",
                   "--participant-label", "02", "--n-clusters", K_FSAVERAGE,
                   "--confounds-strategy", "none", "--standardize", "none", "--no-split-half",
                   "--save-compressed", "-w", tmp_path / "work", "--nprocs", 2, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = RUNS[2]
    fsaverage = load_fsaverage("fsaverage5")["pial"]
    found = []
    for hemi, part in (("L", "left"), ("R", "right")):
        img = nb.load(out / f"{run}_hemi-{hemi}_space-fsaverage5_seg-ward_scale-"
                            f"{K_FSAVERAGE}_dseg.label.gii")
        labels = img.agg_data().astype(int)
        assert img.meta["AnatomicalStructurePrimary"] == {"L": "CortexLeft",
                                                         "R": "CortexRight"}[hemi]
        assert len(img.labeltable.labels) == K_FSAVERAGE + 1
        assert img.labeltable.get_labels_as_dict()[3] == "parcel_03"
        bold = nb.load(fmriprep_dir / f"{run}_hemi-{hemi}_space-fsaverage5_bold.func.gii")
        X = np.column_stack([d.data for d in bold.darrays]).astype(np.float64)
        mesh = fsaverage.parts[part]
        graph = _mesh_graph(mesh.faces, mesh.n_vertices)
        assert (labels > 0).all()  # every vertex has data in this dataset
        assert _connected(graph, labels)
        n_here = len(set(labels.tolist()))
        reference = AgglomerativeClustering(n_clusters=n_here, linkage="ward",
                                            connectivity=graph).fit(X).labels_
        assert _same_partition(labels, reference)
        found.append(set(labels.tolist()))
        compressed = nb.load(out / f"{run}_hemi-{hemi}_space-fsaverage5_desc-ward"
                                   f"{K_FSAVERAGE}_bold.func.gii")
        values = np.column_stack([d.data for d in compressed.darrays])
        first = labels == labels[0]
        np.testing.assert_allclose(values[first][0], X[first].mean(axis=0), rtol=1e-5)
    assert not found[0] & found[1]  # no parcel spans the hemispheres
    assert found[0] | found[1] == set(range(1, K_FSAVERAGE + 1))
    series = pd.read_csv(out / f"{run}_space-fsaverage5_seg-ward_scale-{K_FSAVERAGE}"
                               "_stat-mean_timeseries.tsv", sep="\t")
    assert series.shape == (120, K_FSAVERAGE)
    # A GIFTI pair's carpets: one for the pair, one parcel carpet for its K.
    figures = out / "sub-02" / "figures" / f"{Path(run).name}_space-fsaverage5"
    assert Path(f"{figures}_desc-carpet_bold.png").stat().st_size > 100_000
    assert Path(f"{figures}_seg-ward_scale-{K_FSAVERAGE}_desc-parcelcarpet_bold.png").is_file()
    assert _validator_errors(out) == []


def test_surface_inputs_without_their_meshes_are_one_line(fmriprep_dir, tmp_path,
                                                          templateflow_home):
    from nilearn.datasets import load_fsaverage

    # fsLR with an empty TemplateFlow cache: says how to get the meshes, nothing written.
    proc = run_app(fmriprep_dir, tmp_path / "out", "participant", "--space", "fsLR",
                   "--n-clusters", 20, "-w", tmp_path / "work", cwd=tmp_path,
                   env={"TEMPLATEFLOW_HOME": str(tmp_path / "empty")})
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "not in the TemplateFlow cache" in proc.stderr
    assert "--surfaces" in proc.stderr and "Traceback" not in proc.stdout + proc.stderr
    assert " ERROR" not in proc.stdout + proc.stderr  # Nipype's log lines
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()
    # Meshes of another space given with --surfaces: the vertex counts differ.
    pial = load_fsaverage("fsaverage5")["pial"]
    meshes = []
    for hemi, part in (("L", "left"), ("R", "right")):
        mesh = pial.parts[part]
        path = tmp_path / f"fsaverage5_{hemi}.surf.gii"
        nb.save(nb.gifti.GiftiImage(darrays=[
            nb.gifti.GiftiDataArray(np.asarray(mesh.coordinates, np.float32),
                                    intent="NIFTI_INTENT_POINTSET"),
            nb.gifti.GiftiDataArray(np.asarray(mesh.faces, np.int32),
                                    intent="NIFTI_INTENT_TRIANGLE")]), path)
        meshes.append(path)
    proc = run_app(fmriprep_dir, tmp_path / "out", "participant", "--space", "fsLR",
                   "--surfaces", *meshes, "-w", tmp_path / "work", cwd=tmp_path,
                   env={"TEMPLATEFLOW_HOME": str(templateflow_home)})
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "has 32492 vertices" in proc.stderr
    assert "has 10242" in proc.stderr and "--surfaces" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_group_atlas_on_fslr_is_a_bids_atlas_xcpd_reads(fmriprep_dir, tmp_path,
                                                         templateflow_home):
    from nipype_ward.bids import ATLAS_NAME

    out = tmp_path / "out"
    proc = run_app(fmriprep_dir, out, "group", "--space", "fsLR", "--n-clusters", 60,
                   "--group-quality", "-w", tmp_path / "work", "--nprocs", 2, cwd=tmp_path,
                   env={"TEMPLATEFLOW_HOME": str(templateflow_home)})
    assert proc.returncode == 0, proc.stderr
    atlases = out / "atlases"
    found = sorted(str(path.relative_to(atlases)) for path in (atlases / "tpl-fsLR").iterdir())
    assert found == [f"tpl-fsLR/tpl-fsLR_atlas-ward60_den-91k_dseg{ext}"
                     for ext in (".dlabel.nii", ".json", ".tsv")]
    assert all(ATLAS_NAME.match(name) for name in found)  # XCP-D's pattern
    dlabel = nb.load(atlases / found[0])
    source = nb.load(fmriprep_dir / f"{RUNS[0]}_{CIFTI}_bold.dtseries.nii")
    assert dlabel.header.get_axis(1) == source.header.get_axis(1)
    labels = np.asanyarray(dlabel.dataobj)[0].astype(int)
    assert sorted(set(labels.tolist())) == list(range(1, 61))
    (paths, cortex) = fslr_meshes()
    for hemi, name in enumerate(("CIFTI_STRUCTURE_CORTEX_LEFT", "CIFTI_STRUCTURE_CORTEX_RIGHT")):
        models = dlabel.header.get_axis(1)
        part = [p for n, p, _ in models.iter_structures() if n == name][0]
        mesh = nb.load(paths[hemi])
        graph = _mesh_graph(mesh.agg_data("NIFTI_INTENT_TRIANGLE"), 32492, cortex[hemi])
        assert _connected(graph, labels[part])
    meta = json.loads((atlases / found[1]).read_text())
    assert meta["Subjects"] == ["01", "02"] and len(meta["Quality"]["Runs"]) == 3
    assert meta["Density"].startswith(f"den-91k: {labels.size} grayordinates")
    assert _validator_errors(atlases) == []
    # The atlas back on a run (--atlas): each column the mean of its grayordinates.
    proc = run_app(fmriprep_dir, tmp_path / "reduced", "participant", "--space", "fsLR",
                   "--participant-label", "02", "--n-clusters", 20, "--atlas",
                   atlases / found[0], "--confounds-strategy", "none", "--standardize", "none",
                   "--no-split-half", "-w", tmp_path / "work", "--nprocs", 2, cwd=tmp_path,
                   env={"TEMPLATEFLOW_HOME": str(templateflow_home)})
    assert proc.returncode == 0, proc.stderr
    series = pd.read_csv(tmp_path / "reduced" / f"{RUNS[2]}_space-fsLR_seg-ward60_den-91k_"
                         "stat-mean_timeseries.tsv", sep="\t")
    X = np.asanyarray(nb.load(fmriprep_dir / f"{RUNS[2]}_{CIFTI}_bold.dtseries.nii").dataobj)
    assert list(series.columns) == [str(k) for k in range(1, 61)]
    np.testing.assert_allclose(series.to_numpy(),
                               np.stack([X[:, labels == k].mean(axis=1) for k in range(1, 61)],
                                        axis=1), rtol=1e-5)
    # Not on GIFTI series: one line, nothing written.
    proc = run_app(fmriprep_dir, tmp_path / "refused", "participant", "--space", "fsaverage5",
                   "--atlas", atlases / found[0], "-w", tmp_path / "work2", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "--atlas on GIFTI series is not supported" in proc.stderr
    assert not (tmp_path / "refused").exists()


def test_group_and_combined_runs_on_fsaverage5_are_scikit_learns(fmriprep_dir, tmp_path):
    """Without preparation: the group (exact) and a subject's combined runs are Ward on
    the runs' series concatenated in time, per hemisphere."""
    from nilearn.datasets import load_fsaverage
    from sklearn.cluster import AgglomerativeClustering

    common = ("--space", "fsaverage5", "--n-clusters", 30, "--confounds-strategy", "none",
              "--standardize", "none", "--no-split-half", "-w", tmp_path / "work",
              "--nprocs", 2)
    for level, extra in (("group", ()), ("participant", ("--participant-label", "01",
                                                          "--combine-runs"))):
        proc = run_app(fmriprep_dir, tmp_path / level, level, *common, *extra, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    fsaverage = load_fsaverage("fsaverage5")["pial"]
    for hemi, part in (("L", "left"), ("R", "right")):
        series = {run: np.column_stack([d.data for d in nb.load(
            fmriprep_dir / f"{run}_hemi-{hemi}_space-fsaverage5_bold.func.gii").darrays])
            for run in RUNS}
        graph = _mesh_graph(fsaverage.parts[part].faces, fsaverage.parts[part].n_vertices)
        for labels_path, runs in (
            (tmp_path / "group" / "atlases" / "tpl-fsaverage5"
             / f"tpl-fsaverage5_hemi-{hemi}_atlas-ward30_dseg.label.gii", RUNS),
            (tmp_path / "participant" / "sub-01/ses-1/func" / f"sub-01_ses-1_task-rest_hemi-"
             f"{hemi}_space-fsaverage5_seg-ward_scale-30_desc-combined_dseg.label.gii",
             RUNS[:2]),
        ):
            labels = nb.load(labels_path).agg_data().astype(int)
            X = np.hstack([series[run] for run in runs]).astype(np.float64)
            reference = AgglomerativeClustering(n_clusters=len(set(labels.tolist())),
                                                linkage="ward", connectivity=graph
                                                ).fit(X).labels_
            assert _same_partition(labels, reference), labels_path.name
