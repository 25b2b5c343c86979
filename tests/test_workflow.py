"""The parcellation workflow: wiring for a matrix of options, and real runs."""

import builtins
import io
import os
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from nipype_ward.steps import SignalPreparation
from nipype_ward.workflows import init_rest_clustering_wf, init_ward_parcellation_wf

OUTPUT_FIELDS = {
    "mask_file", "mean_file", "series_file", "series_info", "connectivity_file", "tree_file",
    "n_clusters",
    "labels_files", "timeseries_files", "compressed_files", "metrics_files",
}
INPUT_FIELDS = {"bold_file", "mask_file", "confounds_file", "true_regions_file"}

#: The parcellation workflow's connections, written out from its design as
#: (source node, output field, target node, input field): the BOLD is read by
#: prepare_signals only; the counts are checked against its mask before any
#: tree; the tree is built once and cut at every K; each cut compresses the
#: prepared series.
EXPECTED_CONNECTIONS = {
    ("inputnode", "bold_file", "prepare_signals", "in_file"),
    ("inputnode", "mask_file", "prepare_signals", "brain_mask_file"),
    ("inputnode", "confounds_file", "prepare_signals", "confounds_file"),
    ("inputnode", "bold_file", "check_counts", "source_file"),
    ("prepare_signals", "mask_file", "check_counts", "mask_file"),
    ("check_counts", "mask_file", "grid_connectivity", "mask_file"),
    ("check_counts", "mask_file", "ward_tree", "mask_file"),
    ("prepare_signals", "series_file", "ward_tree", "series_file"),
    ("grid_connectivity", "connectivity_file", "ward_tree", "connectivity_file"),
    ("ward_tree", "tree_file", "cut_tree", "tree_file"),
    ("prepare_signals", "mask_file", "cut_tree", "mask_file"),
    ("prepare_signals", "series_file", "parcel_compress", "series_file"),
    ("prepare_signals", "series_info", "parcel_compress", "series_info"),
    ("prepare_signals", "mask_file", "parcel_compress", "mask_file"),
    ("inputnode", "true_regions_file", "parcel_compress", "true_regions_file"),
    ("cut_tree", "labels_file", "parcel_compress", "labels_file"),
    ("grid_connectivity", "connectivity_file", "parcel_compress", "connectivity_file"),
    ("ward_tree", "half_tree_files", "parcel_compress", "half_tree_files"),
    ("prepare_signals", "series_file", "outputnode", "series_file"),
    ("prepare_signals", "series_info", "outputnode", "series_info"),
    ("prepare_signals", "mask_file", "outputnode", "mask_file"),
    ("prepare_signals", "mean_file", "outputnode", "mean_file"),
    ("grid_connectivity", "connectivity_file", "outputnode", "connectivity_file"),
    ("ward_tree", "tree_file", "outputnode", "tree_file"),
    ("cut_tree", "labels_file", "outputnode", "labels_files"),
    ("parcel_compress", "timeseries_file", "outputnode", "timeseries_files"),
    ("parcel_compress", "compressed_file", "outputnode", "compressed_files"),
    ("parcel_compress", "metrics_file", "outputnode", "metrics_files"),
}


@pytest.mark.parametrize("n_clusters", [(10,), (1000, 2000), [5, 50, 500]])
@pytest.mark.parametrize("neighbourhood", [6, 18, 26])
def test_wiring(n_clusters, neighbourhood, tmp_path):
    wf = init_ward_parcellation_wf(n_clusters=n_clusters, neighbourhood=neighbourhood)
    wf.base_dir = str(tmp_path)
    inputnode, outputnode = wf.get_node("inputnode"), wf.get_node("outputnode")
    assert set(inputnode.inputs.copyable_trait_names()) == INPUT_FIELDS
    assert set(outputnode.inputs.copyable_trait_names()) == OUTPUT_FIELDS
    # Every connection names fields that exist on both ends (identity nodes
    # would accept anything), and every output field is fed.
    fed = set()
    for source, target, data in wf._graph.edges(data=True):
        for out_field, in_field in data["connect"]:
            out_field = out_field[0] if isinstance(out_field, tuple) else out_field
            assert out_field in _fields(source, "output_spec")
            assert in_field in _fields(target, "input_spec")
            if target is outputnode:
                fed.add(in_field)
    assert fed | {"n_clusters"} == OUTPUT_FIELDS
    # The connections themselves, against the hand-written list.
    # A field passed through a function (the series' first file naming it) is (field, function).
    connections = {(source.name, out_field[0] if isinstance(out_field, tuple) else out_field,
                    target.name, in_field)
                   for source, target, data in wf._graph.edges(data=True)
                   for out_field, in_field in data["connect"]}
    assert connections == EXPECTED_CONNECTIONS, (
        f"missing {EXPECTED_CONNECTIONS - connections}, unexpected "
        f"{connections - EXPECTED_CONNECTIONS}")
    assert set(wf.list_node_names()) == {name for source, _, target, _ in
                                         EXPECTED_CONNECTIONS for name in (source, target)}
    # The options reach their nodes.
    assert wf.get_node("grid_connectivity").inputs.neighbourhood == neighbourhood
    assert wf.get_node("cut_tree").inputs.n_clusters == list(n_clusters)
    assert wf.get_node("cut_tree").iterfield == ["n_clusters"]
    assert wf.get_node("parcel_compress").iterfield == ["labels_file"]
    assert wf.get_node("ward_tree").inputs.split_half is True
    assert outputnode.inputs.n_clusters == list(n_clusters)
    # Default memory: the documented 2 mm MNI grid (91 x 109 x 91) x 300
    # float32 volumes, per value 2 x 4 + 16 bytes to prepare, 4 + 16 for the
    # tree, 4 + 1 to compress, plus 0.3 GB; given to a tenth of a GB.
    gb = 91 * 109 * 91 * 300 / 1e9
    for node, per_value in (("prepare_signals", 24), ("ward_tree", 20), ("parcel_compress", 5)):
        assert wf.get_node(node).mem_gb == pytest.approx(0.3 + gb * per_value, abs=0.05), node
    # Only the prepare node reads the BOLD: the bold input feeds nothing else.
    readers = {target.name for source, target, data in wf._graph.edges(data=True)
               if source is inputnode and ("bold_file", "in_file") in data["connect"]}
    assert readers == {"prepare_signals"}
    wf._create_flat_graph()  # expands without running


@pytest.mark.parametrize("figures", [True, False])
def test_seed_workflow_wiring(figures, tmp_path):
    out = tmp_path / "out"
    wf = init_rest_clustering_wf(output_dir=out, n_clusters=(10, 20), figures=figures)
    sink = wf.get_node("ds_results")
    names = ["mask.nii.gz", "mean.nii.gz", "ward_tree.npz"] + [
        f"ward{k}_{kind}" for kind in ("labels.nii.gz", "timeseries.tsv", "compressed.nii.gz",
                                       "metrics.json") for k in (10, 20)
    ]
    if figures:
        names += [f"ward{k}_{kind}" for kind in ("parcellation.png", "compression.png")
                  for k in (10, 20)]
    assert sink.inputs.out_files == [str(out / name) for name in names]
    assert sink.inputs.hardlink  # every file it delivers is a node's output
    # The merge node has one input per delivery, each connected.
    gather = wf.get_node("gather_results")
    connected = {in_field for _, target, data in wf._graph.edges(data=True)
                 if target is gather for _, in_field in data["connect"]}
    assert connected == {f"in{i}" for i in range(1, len(connected) + 1)}
    assert len(connected) == (9 if figures else 7)
    if figures:
        assert wf.get_node("parcellation_figures_wf.plot_parcellation") is not None
    wf._create_flat_graph()
    with pytest.raises(ValueError, match="absolute"):
        init_rest_clustering_wf(output_dir="relative/out")


def _fields(node, spec):
    interface = node.interface
    if isinstance(interface, niu.IdentityInterface):
        return set(interface.inputs.copyable_trait_names())
    return set(getattr(interface, spec)().copyable_trait_names())


def test_bad_arguments():
    with pytest.raises(ValueError, match="positive integer"):
        init_ward_parcellation_wf(n_clusters=(0, 10))
    with pytest.raises(ValueError, match="neighbourhood"):
        init_ward_parcellation_wf(neighbourhood=7)
    with pytest.raises(TypeError):
        init_ward_parcellation_wf(nclusters=(10,))  # keyword typos are errors


def _collect(**outputs):
    return outputs


def _run(wf, tmp_path, plugin="Linear", **plugin_args):
    """Run ``wf`` inside an outer workflow whose last node receives its outputnode.

    The values reach that node through Nipype's own connections, so this reads
    the workflow's results the way a user's downstream node would.
    """
    outer = pe.Workflow(name="test_run", base_dir=str(tmp_path / "work"))
    fields = sorted(OUTPUT_FIELDS)
    collect = pe.Node(
        niu.Function(function=_collect, input_names=fields, output_names=["outputs"]),
        name="collect",
    )
    outer.connect([(wf, collect, [(f"outputnode.{field}", field) for field in fields])])
    graph = outer.run(plugin=plugin, plugin_args=plugin_args)
    (node,) = [node for node in graph.nodes() if node.name == "collect"]
    return node.result.outputs.outputs, graph


def test_run_and_tree_is_not_rebuilt_when_k_changes(small_data, tmp_path):
    wf = init_ward_parcellation_wf(n_clusters=(20, 100))
    wf.inputs.inputnode.bold_file = str(small_data["bold"])
    outputs, _ = _run(wf, tmp_path)
    assert outputs["n_clusters"] == [20, 100]
    for k, labels_file, metrics_file in zip(
        outputs["n_clusters"], outputs["labels_files"], outputs["metrics_files"]
    ):
        data = np.asanyarray(nb.load(labels_file).dataobj)
        assert data.max() == k and len(np.unique(data)) == k + 1
        metrics = __import__("json").loads(Path(metrics_file).read_text())
        assert metrics["n_parcels"] == k and metrics["n_noncontiguous"] == 0
        assert 0 < metrics["split_half_ari"] <= 1
    tree_file = Path(outputs["tree_file"])
    tree_stamp = tree_file.stat().st_mtime_ns
    mask_stamp = Path(outputs["mask_file"]).stat().st_mtime_ns

    # Same workflow, another list of K, same working directory.
    wf = init_ward_parcellation_wf(n_clusters=(20, 100, 300))
    wf.inputs.inputnode.bold_file = str(small_data["bold"])
    outputs, _ = _run(wf, tmp_path)
    assert Path(outputs["tree_file"]) == tree_file
    assert tree_file.stat().st_mtime_ns == tree_stamp  # taken from the cache
    assert Path(outputs["mask_file"]).stat().st_mtime_ns == mask_stamp
    assert len(outputs["labels_files"]) == 3
    assert np.asanyarray(nb.load(outputs["labels_files"][2]).dataobj).max() == 300


def test_given_mask_replaces_the_epi_mask(small_data, tmp_path):
    wf = init_ward_parcellation_wf(n_clusters=(30,))
    wf.inputs.inputnode.bold_file = str(small_data["bold"])
    wf.inputs.inputnode.mask_file = str(small_data["mask"])
    outputs, _ = _run(wf, tmp_path)
    given = np.asanyarray(nb.load(small_data["mask"]).dataobj) > 0
    used = np.asanyarray(nb.load(outputs["mask_file"]).dataobj) > 0
    np.testing.assert_array_equal(used, given)
    labels = np.asanyarray(nb.load(outputs["labels_files"][0]).dataobj)
    np.testing.assert_array_equal(labels > 0, given)


def _to_float32(in_file):
    """An upstream step of someone else's pipeline: convert the series to float32."""
    import os

    import nibabel as nb
    import numpy as np

    img = nb.load(in_file)
    out = os.path.abspath("bold_float32.nii.gz")
    nb.save(nb.Nifti1Image(img.get_fdata(dtype=np.float32), img.affine, img.header), out)
    return out


@pytest.mark.heavy
def test_embedded_in_a_larger_workflow_with_multiproc(small_data, tmp_path):
    outer = pe.Workflow(name="user_pipeline", base_dir=str(tmp_path / "work"))
    source = pe.Node(niu.IdentityInterface(fields=["bold"]), name="source")
    source.inputs.bold = str(small_data["bold"])
    convert = pe.Node(
        niu.Function(function=_to_float32, input_names=["in_file"], output_names=["out_file"]),
        name="convert",
    )
    parcellation = init_ward_parcellation_wf(n_clusters=(25, 75), name="parcellation_wf")
    sizes = pe.MapNode(
        niu.Function(
            function=_largest_label, input_names=["labels_file"], output_names=["largest"]
        ),
        iterfield=["labels_file"],
        name="largest_label",
    )
    outer.connect([
        (source, convert, [("bold", "in_file")]),
        (convert, parcellation, [("out_file", "inputnode.bold_file")]),
        (parcellation, sizes, [("outputnode.labels_files", "labels_file")]),
    ])
    graph = outer.run(plugin="MultiProc", plugin_args={"n_procs": 2})
    names = {node.fullname: node for node in graph.nodes()}
    assert names["user_pipeline.largest_label"].result.outputs.largest == [25, 75]
    ward = names["user_pipeline.parcellation_wf.ward_tree"].result
    assert "bold_float32" in ward.outputs.tree_file


def test_heavy_nodes_take_omp_nthreads_cpus_and_keep_their_cache(small_data, tmp_path):
    """n_procs of the heavy nodes (MultiProc counts them, Slurm asks for them) is their
    num_threads; the threads change no output, so no cache key either."""
    wf = init_ward_parcellation_wf(n_clusters=(25,), omp_nthreads=3)
    procs = {name: wf.get_node(name).n_procs
             for name in ("prepare_signals", "ward_tree", "parcel_compress", "cut_tree")}
    assert procs == {"prepare_signals": 3, "ward_tree": 2, "parcel_compress": 3, "cut_tree": 1}
    assert wf.get_node("ward_tree").inputs.num_threads == 2  # two halves at most
    alone = init_ward_parcellation_wf(n_clusters=(25,), omp_nthreads=3, split_half=False,
                                      save_compressed=False)
    assert alone.get_node("ward_tree").n_procs == alone.get_node("parcel_compress").n_procs == 1
    # One run on 1 thread, then the same workflow on 2: every file from the cache.
    stamps = []
    for threads in (1, 2):
        wf = init_ward_parcellation_wf(n_clusters=(25,), omp_nthreads=threads)
        wf.inputs.inputnode.bold_file = str(small_data["bold"])
        outputs, _ = _run(wf, tmp_path)
        files = [outputs["mask_file"], outputs["tree_file"], *outputs["compressed_files"]]
        stamps.append({path: Path(path).stat().st_mtime_ns for path in files})
    assert stamps[0] == stamps[1]


def _largest_label(labels_file):
    import nibabel as nb
    import numpy as np

    return int(np.asanyarray(nb.load(labels_file).dataobj).max())


def test_a_changed_preparation_rebuilds_the_tree(small_data, tmp_path):
    def run(**options):
        wf = init_ward_parcellation_wf(n_clusters=(20,), preparation=SignalPreparation(**options))
        wf.inputs.inputnode.bold_file = str(small_data["bold"])
        outputs, _ = _run(wf, tmp_path)
        return Path(outputs["tree_file"]), outputs

    tree_file, _ = run()
    raw_stamp = tree_file.stat().st_mtime_ns
    tree_file, outputs = run(standardize="zscore_sample")
    assert tree_file.stat().st_mtime_ns != raw_stamp
    zscored_stamp = tree_file.stat().st_mtime_ns
    metrics = __import__("json").loads(Path(outputs["metrics_files"][0]).read_text())
    assert metrics["preparation"]["standardize"] == "zscore_sample"
    tree_file, _ = run(standardize="zscore_sample", t_r=2.0)  # t_r unused: still a new key
    assert tree_file.stat().st_mtime_ns != zscored_stamp


@pytest.fixture
def count_openings(monkeypatch):
    """Count every opening of a given file through Python's ``open`` (gzip,
    ISA-L, nibabel and numpy all open files with it), in this process."""
    counts = {}
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):
            path = os.path.realpath(file)
            if path in counts:
                counts[path] += 1
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(io, "open", counting_open)

    def watch(path):
        counts[os.path.realpath(path)] = 0
        return lambda: counts[os.path.realpath(path)]

    return watch


def test_the_bold_is_read_once_and_a_new_k_reads_nothing(
    small_data, tmp_path, count_openings
):
    bold = tmp_path / "sub-01_task-rest_bold.nii.gz"
    bold.write_bytes(small_data["bold"].read_bytes())
    openings = count_openings(bold)
    nb.load(bold).get_fdata()  # the counter sees nibabel's reads (3 openings)
    assert openings() >= 1

    def run(n_clusters):
        wf = init_ward_parcellation_wf(n_clusters=n_clusters)
        wf.inputs.inputnode.bold_file = str(bold)
        before = openings()
        outputs, graph = _run(wf, tmp_path)  # Linear: every node in this process
        return outputs, openings() - before

    outputs, read = run((20, 100))
    assert read == 1  # mask, mean, tree, halves, both compressions: one read
    stamps = {name: Path(outputs[name]).stat().st_mtime_ns
              for name in ("series_file", "tree_file", "mask_file")}
    for k, labels_file in zip((20, 100), outputs["labels_files"]):
        assert np.asanyarray(nb.load(labels_file).dataobj).max() == k

    outputs, read = run((20, 100, 300))
    assert read == 0  # the series and the tree come from Nipype's cache
    assert {name: Path(outputs[name]).stat().st_mtime_ns for name in stamps} == stamps
    assert len(outputs["metrics_files"]) == 3
    assert np.asanyarray(nb.load(outputs["labels_files"][2]).dataobj).max() == 300
