"""The BIDS App's graph, built for a matrix of options and checked without running it.

As fMRIPrep's ``test_base.py`` does for its BOLD workflow: the cheap test
beside the few that run. Each top-level workflow is one of
:func:`~nipype_ward.workflows.base.subject_workflows` (the record a failed
node is attributed from) and holds its subject's files only; every
connection names fields that exist on both ends; the group level feeds
each run's parcellation into its space's group workflow.
"""

import shutil

import networkx as nx
import pytest
from conftest import RUNS, SPACE
from nipype.interfaces import utility as niu
from nipype.interfaces.base import isdefined

from nipype_ward.bids import collect_runs
from nipype_ward.cli.parser import parse_settings
from nipype_ward.workflows.base import (
    init_nipype_ward_wf,
    run_workflow_name,
    subject_workflows,
)
from nipype_ward.workflows.group import init_group_level_wf


def _fields(node, spec):
    """A node's input or output fields as this node has them (Merge, Select and Function
    nodes make theirs from their arguments)."""
    if isinstance(node.interface, niu.IdentityInterface) or spec == "input_spec":
        return set(node.inputs.copyable_trait_names())
    outputs = node.outputs  # a Bunch of lists for a map node
    return set(outputs.copyable_trait_names() if hasattr(outputs, "copyable_trait_names")
               else vars(outputs))


def _settings(dataset, tmp_path, level, *options):
    settings = parse_settings([str(dataset), str(tmp_path / "out"), level, "--n-clusters", "10",
                               "20", *options])
    settings.output_dir.mkdir(exist_ok=True)  # as run_staged makes its staging folder
    return settings


def _paths(value):
    """Every string in an input value (lists and dicts walked)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _paths(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _paths(item)


def _check_connections(workflow):
    """Every edge of the flattened graph names an output and an input that exist."""
    flat = workflow._create_flat_graph()
    edges = 0
    for source, target, data in flat.edges(data=True):
        for out_field, in_field in data["connect"]:
            out_field = out_field[0] if isinstance(out_field, tuple) else out_field
            assert out_field in _fields(source, "output_spec"), (source.fullname, out_field)
            assert in_field in _fields(target, "input_spec"), (target.fullname, in_field)
            edges += 1
    return flat, edges


@pytest.mark.parametrize("options", [
    (),
    ("--combine-runs",),
    ("--write-provenance", "--save-compressed", "--no-split-half"),
    ("--combine-runs", "--write-provenance", "--confounds-strategy", "scrubbing"),
    ("--atlas", "ATLAS"),
], ids=["defaults", "combined", "provenance", "combined-scrubbing", "atlas"])
def test_participant_graph(fmriprep_dir, tmp_path, options):
    atlas = tmp_path / "tpl-MNI152NLin2009cAsym_atlas-own_dseg.nii.gz"  # the user's own file
    shutil.copyfile(f"{fmriprep_dir / RUNS[2]}_{SPACE}_desc-brain_mask.nii.gz", atlas)
    atlas = f"own={atlas}"
    settings = _settings(fmriprep_dir, tmp_path, "participant",
                         *[atlas if option == "ATLAS" else option for option in options])
    runs = collect_runs(fmriprep_dir, settings.selection)
    workflow = init_nipype_ward_wf(settings=settings, runs=runs)
    owners = subject_workflows(settings, runs)
    # One top-level workflow per run (per subject and space when combined), as recorded.
    tops = {name.split(".")[0] for name in workflow.list_node_names()}
    assert tops == set(owners)
    expected = 2 if "--combine-runs" in options else len(runs)
    assert len(owners) == expected
    assert sorted({subject for subject, _ in owners.values()}) == ["01", "02"]
    # Each node takes files of its own subject only, and delivers into OUTPUT_DIR.
    for name in workflow.list_node_names():
        subject, own_runs = owners[name.split(".")[0]]
        node = workflow.get_node(name)
        for field, value in node.inputs.get().items():
            if not isdefined(value):
                continue
            for text in _paths(value):
                if text.startswith(str(fmriprep_dir / "sub-")):
                    assert text.startswith(str(fmriprep_dir / f"sub-{subject}")), (name, text)
            if field == "base_directory":
                assert value == str(settings.output_dir), name
    # Edges never cross from one subject's workflow into another's.
    flat, edges = _check_connections(workflow)
    assert edges > 0
    for source, target in flat.edges():
        assert source.fullname.split(".")[1] == target.fullname.split(".")[1]


@pytest.mark.parametrize("reduction", [("exact",), ("migp", "--group-dimensions", "50")])
def test_group_graph(fmriprep_dir, tmp_path, reduction):
    settings = _settings(fmriprep_dir, tmp_path, "group", "--group-reduction", *reduction)
    runs = collect_runs(fmriprep_dir, settings.selection)
    workflow = init_group_level_wf(settings=settings, runs=runs)
    run_names = [run_workflow_name(run) for run in runs]
    flat, edges = _check_connections(workflow)
    # Every run's prepared series and mask reach the group reduction of its subject,
    # and the group tree is built once per space.
    names = {node.fullname.split(".", 1)[1] for node in flat.nodes()}
    assert sum(name.endswith(".ward_tree") and name.startswith("group_") for name in names) == 1
    # Each run's prepared series goes into the group workflow's inputnode through one
    # gathering node, in<i> from the i-th run's workflow...
    (gather,) = [node for node in flat.nodes()
                 if node.name.startswith("group_") and node.name.endswith("_series_files")]
    gathered = {}
    for source, _, data in flat.in_edges(gather, data=True):
        # the run's parcellation workflow's outputnode, which its prepare_signals feeds
        assert source.fullname.endswith("ward_parcellation_wf.outputnode")
        assert any(node.name == "prepare_signals" for node in flat.predecessors(source))
        for _, in_field in data["connect"]:
            gathered[int(in_field[2:]) - 1] = source.fullname.split(".")[1]
    assert sorted(gathered.values()) == sorted(run_names)
    (series,) = [node for node in flat.nodes() if node.name == "group_series"]
    if reduction[0] == "exact":
        # ... straight to the group series (no subject needs its own reduction), with
        # each run's subject in the same order.
        assert not [node for node in flat.nodes() if node.name.startswith("reduce_sub_")]
        assert nx.has_path(flat, gather, series)
        assert series.inputs.run_subjects == [run.entities["subject"] for run in runs]
        assert not isdefined(series.inputs.reduced_files)
    for subject in ("01", "02") if reduction[0] == "migp" else ():
        # ... or, sub-01 having 240 volumes > 50, through each subject's reduction, which
        # selects its own runs' series from that list.
        (select,) = [source for source, target, data in flat.in_edges(data=True)
                     if target.name == f"reduce_sub_{subject}"
                     and ("out", "series_files") in data["connect"]]
        assert nx.has_path(flat, gather, select)
        assert {gathered[i] for i in select.inputs.index} == {
            name for name, run in zip(run_names, runs) if run.entities["subject"] == subject}
    # The group step asks the scheduler for its matrix and tree, not for a run's tree
    # per run: 0.3 GB + 20 bytes per voxel (of the first run's mask) and volume.
    import nibabel as nib
    import numpy as np

    n_voxels = int((np.asanyarray(nib.load(runs[0].mask).dataobj) > 0).sum())
    n_volumes = sum(nib.load(run.bold).shape[3] for run in runs)
    if reduction[0] == "migp":
        n_volumes = min(n_volumes, 2 * 50)  # MIGP's running matrix and pending subjects
    assert series.mem_gb == round(0.3 + n_voxels * n_volumes * 20 / 1e9, 2)
