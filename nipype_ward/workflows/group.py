"""The group level: one Ward atlas per K from many subjects, as a BIDS-Atlas dataset.

The graph (``nipype-ward BIDS_DIR OUTPUT_DIR group``):

* every selected run is prepared by the participant level's node under
  the same name (:func:`~nipype_ward.workflows.base.run_series_wf`), so a
  group run after a participant run with the same work dir finds its
  prepared series in Nipype's cache;
* per space, one :class:`~nipype_ward.interfaces.group.GroupMask` (the
  voxels inside every run's mask), one
  :class:`~nipype_ward.interfaces.group.GroupSeries` (exact concatenation
  or MIGP) reading every run's prepared series in the group mask, the
  group tree, its cuts, and the atlas files; when some subject has more
  volumes than MIGP keeps, one
  :class:`~nipype_ward.interfaces.group.ReduceSubject` node *per subject*
  (the execution plugin spreads them over cores or cluster jobs) reduces
  each subject first, and the group series is made of theirs;
* with ``--group-quality`` (``settings.group.quality``), their quality:
  every run is also parcellated on its own
  (:func:`~nipype_ward.workflows.base.run_parcellation_wf`, without halves:
  a participant run with ``--no-split-half`` leaves its trees and cuts in the
  cache), the atlases of two halves of the subjects (alternating in sorted
  order) give their ARI at each K, and every run gets the R2 and
  homogeneity of the group atlas against those of its own parcellation at
  the same K (:class:`~nipype_ward.interfaces.group.CompareParcellations`);
  both go into the atlas sidecars. The atlases are the same with or
  without it.
"""

from __future__ import annotations

import re

import numpy as np
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from nipype_ward.bids import ATLAS_DIR, Run, atlas_label, confounds_tables
from nipype_ward.core.reduction import split_subjects
from nipype_ward.interfaces import (
    CutWardTree,
    GridConnectivity,
    MeshConnectivity,
    PlotGroupQuality,
    PlotParcellation,
    WardTree,
)
from nipype_ward.interfaces.bids import (
    AtlasSidecars,
    AtlasSink,
    ParcelTable,
    SplitHemispheres,
)
from nipype_ward.interfaces.group import (
    CompareParcellations,
    GroupMask,
    GroupSeries,
    GroupSplitHalf,
    ReduceSubject,
)
from nipype_ward.io.geometry import load_mask
from nipype_ward.io.series import count_volumes, estimate_mem_gb, read_header
from nipype_ward.preflight import space_key
from nipype_ward.settings import AppSettings
from nipype_ward.workflows.base import (
    run_meshes,
    run_parcellation_wf,
    run_series_wf,
    run_workflow_name,
)


#: Bytes per point and feature of the group step: the group matrix and the tree's
#: float64 sums and centroids (as ``estimate_mem_gb``'s tree: its series' 4 bytes + 16).
GROUP_BYTES = 20


def _safe(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]", "_", text)


def _select(inlist, index):
    """The items of ``inlist`` at ``index``, always a list (``niu.Select`` gives one item alone)."""
    return [inlist[i] for i in index]


#: What the group atlas workflow takes of each run's parcellation (its outputnode field),
#: as the field of its inputnode that lists them in the order of its runs.
RUN_FIELDS = {"mask_file": "mask_files", "mean_file": "mean_files",
              "series_file": "series_files", "series_info": "series_infos",
              "labels_files": "own_labels"}


def init_group_level_wf(*, settings: AppSettings, runs: list[Run], name: str = "nipype_ward_wf"):
    """Every run's parcellation and, per space, the group atlases (see the module).

    Each run's parcellation workflow (the participant level's, under the
    same names: :func:`~nipype_ward.workflows.base.run_parcellation_wf`)
    feeds, through one ``gather_<space>`` node a space, the inputnode of its
    space's :func:`init_group_atlas_wf`.

    Parameters
    ----------
    settings : :class:`~nipype_ward.settings.AppSettings`
        The command line's settings.
    runs : list of :class:`~nipype_ward.bids.Run`
        The selected runs, of one space or several.
    name : str
        The workflow's name.

    Inputs and outputs: none; the runs' files are set on the nodes, the
    atlases delivered by sink nodes into ``OUTPUT_DIR/atlases``.
    """
    workflow = pe.Workflow(name=name)
    by_space: dict[tuple, list[Run]] = {}
    for run in runs:
        by_space.setdefault(space_key(run), []).append(run)
    for key in sorted(by_space):
        space_runs = by_space[key]
        group_wf = init_group_atlas_wf(runs=space_runs, settings=settings)
        fields = {field: listed for field, listed in RUN_FIELDS.items()
                  if settings.group.quality or listed != "own_labels"}
        gather = {field: pe.Node(niu.Merge(len(space_runs), no_flatten=True),
                                 name=f"{group_wf.name[:-3]}_{listed}",
                                 run_without_submitting=True)
                  for field, listed in fields.items()}
        for index, run in enumerate(space_runs, 1):
            run_wf = pe.Workflow(name=run_workflow_name(run))
            if settings.group.quality:  # the run's own parcellations, to compare
                run_wf.add_nodes([run_parcellation_wf(run, settings, split_half=False,
                                                      save_compressed=False)])
            else:
                run_wf.add_nodes([run_series_wf(run, settings)])
            prefix = "ward_parcellation_wf.outputnode."
            workflow.connect([(run_wf, gather[field], [(prefix + field, f"in{index}")])
                              for field in fields])
        workflow.connect([(gather[field], group_wf, [("out", f"inputnode.{listed}")])
                          for field, listed in fields.items()])
    return workflow


def init_group_atlas_wf(*, runs: list[Run], settings: AppSettings, name: str | None = None):
    """The group atlases at every K of runs in one space, delivered as a BIDS-Atlas dataset.

    .. workflow::
        :graph2use: orig
        :simple_form: yes

        import tempfile
        from pathlib import Path
        from nipype_ward.bids import Selection, collect_runs
        from nipype_ward.datasets import write_fmriprep_example
        from nipype_ward.settings import AppSettings
        from nipype_ward.workflows.group import init_group_atlas_wf

        root = Path(tempfile.mkdtemp())
        bids_dir = write_fmriprep_example(root / "fmriprep", subjects=("01", "02"))
        runs = collect_runs(bids_dir, Selection())
        settings = AppSettings(bids_dir=bids_dir, output_dir=root / "out",
                               work_dir=root / "work", analysis_level="group")
        wf = init_group_atlas_wf(runs=runs, settings=settings)

    Parameters
    ----------
    runs : list of :class:`~nipype_ward.bids.Run`
        The runs of one space (and resolution), of every selected subject.
    settings : :class:`~nipype_ward.settings.AppSettings`
        K, the neighbourhood, the group reduction, the output folder.
    name : str
        The workflow's name (default: ``group_space-<space>[_res-<res>]_wf``).

    Inputs
    ------
    mask_files, mean_files, series_files, series_infos
        Each run's mask, temporal mean, prepared series and its info
        (:class:`~nipype_ward.interfaces.PrepareSignals`'), one per run in the
        order of ``runs``.
    own_labels
        Each run's own parcellations (a list of one label file per K), for
        the comparison with the atlases.

    Outputs: none; the atlases, their tables, sidecars and figures are
    delivered by sink nodes into ``OUTPUT_DIR/atlases``.
    """
    options, group = settings.parcellation, settings.group
    first = runs[0]
    template = str(first.entities["space"])
    res, den = first.entities.get("res"), first.entities.get("den")
    meshes = run_meshes(first, settings)
    n_clusters = list(options.n_clusters)
    workflow = pe.Workflow(name=name or "group_" + _safe(
        f"space-{template}" + (f"_res-{res}" if res else "")) + "_wf")
    mem = settings.node_mem_gb(estimate_mem_gb(first.sources, mask=first.mask))
    subjects = sorted({run.entities["subject"] for run in runs})
    reduction = {"reduction": group.reduction, "n_components": group.n_components}
    # Each subject's volumes, from the runs' headers: the reduction and the memory read them.
    volumes = {subject: sum(count_volumes(run.sources) for run in runs
                            if run.entities["subject"] == subject) for subject in subjects}
    group_mem = settings.node_mem_gb(_group_mem_gb(runs, sum(volumes.values()), group.reduction,
                                                   group.n_components))

    inputnode = pe.Node(niu.IdentityInterface(fields=list(RUN_FIELDS.values())),
                        name="inputnode")
    group_mask = pe.Node(GroupMask(), name="group_mask")
    workflow.connect([(inputnode, group_mask, [("mask_files", "mask_files"),
                                               ("mean_files", "mean_files")])])

    if meshes is None:
        connectivity = pe.Node(GridConnectivity(neighbourhood=options.neighbourhood),
                               name="grid_connectivity")
    else:
        connectivity = pe.Node(MeshConnectivity(), name="mesh_connectivity")
        for field, path in zip(("left_surface", "right_surface"), meshes):
            if path is not None:
                setattr(connectivity.inputs, field, str(path))
    workflow.connect([(group_mask, connectivity, [("mask_file", "mask_file")])])

    if group.reduction == "migp" and max(volumes.values()) > group.n_components:
        # Some subject is reduced on its own first: one node a subject, run in parallel.
        group_series = _reduced_group_series(workflow, inputnode, group_mask, runs, subjects,
                                             reduction, mem, group_mem)
    else:
        group_series = _runs_group_series(workflow, inputnode, group_mask, runs, reduction,
                                          group_mem)

    def group_tree(series, suffix=""):
        tree = pe.Node(WardTree(), name=f"ward_tree{suffix}", mem_gb=group_mem)
        workflow.connect([
            (series, tree, [("series_file", "series_file")]),
            (group_mask, tree, [("mask_file", "mask_file")]),
            (connectivity, tree, [("connectivity_file", "connectivity_file")]),
        ])
        return tree

    # The atlases: from every subject at once, whether or not they are measured.
    series = group_series(subjects)
    tree = group_tree(series)
    cut = pe.MapNode(CutWardTree(), iterfield=["n_clusters"], name="cut_tree",
                     run_without_submitting=True)
    cut.inputs.n_clusters = n_clusters
    tables = pe.MapNode(ParcelTable(), iterfield=["labels_file"], name="dseg_tables",
                        run_without_submitting=True)
    workflow.connect([
        (tree, cut, [("tree_file", "tree_file")]),
        (group_mask, cut, [("mask_file", "mask_file")]),
        (cut, tables, [("labels_file", "labels_file")]),
    ])

    sidecars = pe.Node(AtlasSidecars(
        bold_file=[str(path) for run in runs for path in run.sources],
        mask_file=[str(run.mask) for run in runs if run.mask is not None],
        confounds_file=confounds_tables(runs),
        source_dir=str(settings.bids_dir), template=template, n_clusters=n_clusters,
        parameters={**options.as_dict(), "group": settings.group.as_dict()},
    ), name="atlas_sidecars")
    if res:
        sidecars.inputs.resolution = str(res)
    if den:
        sidecars.inputs.density = str(den)
    workflow.connect([(series, sidecars, [("series_info", "series_info")])])

    if group.quality:
        _measure_atlases(workflow, (inputnode, group_mask, cut, sidecars),
                         (group_series, group_tree), subjects, settings)
    _deliver_atlases(workflow, settings, runs, cut, tables, sidecars, group_mask,
                     quality=group.quality)
    return workflow


def _runs_group_series(workflow, inputnode, group_mask, runs: list[Run], reduction: dict,
                       group_mem: float):
    """A factory of GroupSeries nodes fed with the runs' series (no subject reduced on its own).

    ``group_series(members, suffix)`` makes the node of the subjects
    ``members``: every run's series, mask and info, or those of the
    members' runs through one selection node a field.
    """
    fields = {"series_files": "series_files", "mask_files": "mask_files",
              "series_infos": "series_infos"}

    def group_series(members, suffix=""):
        indices = [i for i, run in enumerate(runs) if run.entities["subject"] in members]
        series = pe.Node(GroupSeries(**reduction, run_subjects=[
            runs[i].entities["subject"] for i in indices]), name=f"group_series{suffix}",
            mem_gb=group_mem)
        workflow.connect([(group_mask, series, [("mask_file", "group_mask_file")])])
        for listed, field in fields.items():
            if len(indices) == len(runs):
                workflow.connect([(inputnode, series, [(listed, field)])])
                continue
            select = pe.Node(niu.Function(function=_select, input_names=["inlist", "index"],
                                          output_names=["out"]),
                             name=f"select_{listed}{suffix}", run_without_submitting=True)
            select.inputs.index = indices
            workflow.connect([(inputnode, select, [(listed, "inlist")]),
                              (select, series, [("out", field)])])
        return series

    return group_series


def _reduced_group_series(workflow, inputnode, group_mask, runs: list[Run], subjects, reduction,
                          mem, group_mem):
    """One ReduceSubject node a subject, and a factory of GroupSeries nodes fed by them."""
    # One reduction per subject: the plugin runs them in parallel.
    reduced = {}
    for subject in subjects:
        indices = [i for i, run in enumerate(runs) if run.entities["subject"] == subject]
        merges = {}
        for field in ("series_file", "series_info", "mask_file"):
            merges[field] = pe.Node(niu.Function(function=_select, input_names=["inlist", "index"],
                                                 output_names=["out"]),
                                    name=f"sub_{_safe(subject)}_{field}s",
                                    run_without_submitting=True)
            merges[field].inputs.index = indices
            workflow.connect([(inputnode, merges[field], [(RUN_FIELDS[field], "inlist")])])
        reduce = pe.Node(ReduceSubject(subject=subject, **reduction),
                         name=f"reduce_sub_{_safe(subject)}", mem_gb=mem["prepare"] * len(indices))
        workflow.connect([
            (group_mask, reduce, [("mask_file", "group_mask_file")]),
            (merges["series_file"], reduce, [("out", "series_files")]),
            (merges["series_info"], reduce, [("out", "series_infos")]),
            (merges["mask_file"], reduce, [("out", "mask_files")]),
        ])
        reduced[subject] = reduce

    def merged(members, field, suffix):
        node = pe.Node(niu.Merge(len(members)), name=f"merge_{field}s{suffix}",
                       run_without_submitting=True)
        workflow.connect([(reduced[subject], node, [(field, f"in{n}")])
                          for n, subject in enumerate(members, 1)])
        return node

    def group_series(members, suffix=""):
        """GroupSeries of the subjects ``members``."""
        series = pe.Node(GroupSeries(**reduction), name=f"group_series{suffix}", mem_gb=group_mem)
        workflow.connect([
            (merged(members, "subject_info", suffix), series, [("out", "subject_infos")]),
            (merged(members, "reduced_file", suffix), series, [("out", "reduced_files")]),
            (group_mask, series, [("mask_file", "group_mask_file")]),
        ])
        return series

    return group_series


def _group_mem_gb(runs: list[Run], n_volumes: int, reduction: str, n_components: int) -> float:
    """Memory (GB) of the group series and tree nodes: points x features x bytes, + 0.3.

    Points: the first run's mask (the group mask is inside it) or its
    grayordinates. Features: all the group's ``n_volumes`` (``exact``), or
    twice MIGP's (the running matrix and the subjects pending, then the tree).
    """
    first = runs[0]
    if first.mask is not None and not first.is_surface:
        n_points = int(load_mask(first.mask)[0].sum())
    else:
        header = read_header(first.sources)
        n_points = header.n_points or int(np.prod(header.grid.shape[:3]))
    n_features = n_volumes
    if reduction == "migp":
        n_features = min(n_features, 2 * n_components)
    return round(0.3 + n_points * n_features * GROUP_BYTES / 1e9, 2)


def _measure_atlases(workflow, nodes, factories, subjects: list[str],
                     settings: AppSettings) -> None:
    """``--group-quality``: the halves' agreement and each run against its own parcellation.

    ``nodes`` are the atlas workflow's inputnode, group mask, cuts and
    sidecars; ``factories`` make a group series of some subjects and its tree.
    """
    inputnode, group_mask, cut, sidecars = nodes
    group_series, group_tree = factories
    n_clusters = list(settings.parcellation.n_clusters)
    if settings.parcellation.split_half and len(subjects) >= 2:
        half_series = [group_series(half, f"_half{n}")
                       for n, half in enumerate(split_subjects(subjects), 1)]
        half_trees = [group_tree(part, f"_half{n}") for n, part in enumerate(half_series, 1)]
        merge_halves = pe.Node(niu.Merge(2), name="merge_half_trees", run_without_submitting=True)
        split_half = pe.Node(GroupSplitHalf(n_clusters=n_clusters), name="group_split_half")
        workflow.connect([
            (half_trees[0], merge_halves, [("tree_file", "in1")]),
            (half_trees[1], merge_halves, [("tree_file", "in2")]),
            (merge_halves, split_half, [("out", "half_tree_files")]),
            (group_mask, split_half, [("mask_file", "mask_file")]),
            (split_half, sidecars, [("split_half_ari", "split_half_ari")]),
        ])

    # Each run on the atlases and on its own parcellations: one node a run.
    compare = pe.MapNode(CompareParcellations(n_clusters=n_clusters),
                         iterfield=["series_file", "series_info", "mask_file", "own_files"],
                         name="compare_parcellations")
    records = pe.Node(niu.Merge(1, ravel_inputs=True), name="merge_records",
                      run_without_submitting=True)
    workflow.connect([
        (inputnode, compare, [("series_files", "series_file"), ("series_infos", "series_info"),
                              ("mask_files", "mask_file"), ("own_labels", "own_files")]),
        (cut, compare, [("labels_file", "atlas_files")]),
        (compare, records, [("records", "in1")]),
        (records, sidecars, [("out", "records")]),
    ])


def _deliver_atlases(workflow, settings: AppSettings, runs: list[Run], cut, tables, sidecars,
                     group_mask, *, quality: bool) -> None:
    """The atlases, their tables, sidecars and figures (``quality``: and its figure), sunk."""
    first = runs[0]
    template = str(first.entities["space"])
    res, den = first.entities.get("res"), first.entities.get("den")
    meshes = run_meshes(first, settings)
    n_clusters = list(settings.parcellation.n_clusters)
    atlas_dir = str(settings.output_dir / ATLAS_DIR)
    common = {"base_directory": atlas_dir, "template": template}
    if res:
        common["res"] = str(res)
    if den:
        common["den"] = str(den)
    labels = [atlas_label(k) for k in n_clusters]
    ds_atlas = pe.MapNode(AtlasSink(**common), iterfield=["in_file", "atlas", "meta_dict",
                                                          "description"],
                          name="ds_atlas", run_without_submitting=True)
    ds_atlas.inputs.atlas = labels
    if read_header(first.sources).hemispheres:  # one atlas file a hemisphere
        split = pe.MapNode(SplitHemispheres(), iterfield=["in_file"], name="split_atlas",
                           run_without_submitting=True)
        ds_atlas.inputs.hemi = "L"
        ds_right = pe.MapNode(AtlasSink(**common, hemi="R"), iterfield=["in_file", "atlas"],
                              name="ds_atlas_right", run_without_submitting=True)
        ds_right.inputs.atlas = labels
        workflow.connect([
            (cut, split, [("labels_file", "in_file")]),
            (split, ds_atlas, [("left_hemisphere", "in_file")]),
            (split, ds_right, [("right_hemisphere", "in_file")]),
        ])
    else:
        workflow.connect([(cut, ds_atlas, [("labels_file", "in_file")])])
    ds_tables = pe.MapNode(AtlasSink(**common), iterfield=["in_file", "atlas"],
                           name="ds_atlas_tables", run_without_submitting=True)
    ds_tables.inputs.atlas = labels
    figures = pe.MapNode(PlotParcellation(), iterfield=["labels_file"], name="plot_atlas")
    for field, path in zip(("left_surface", "right_surface"), meshes or ()):
        if path is not None:
            setattr(figures.inputs, field, str(path))
    ds_figures = pe.MapNode(AtlasSink(**common, figure_desc="parcellation"),
                            iterfield=["in_file", "atlas"], name="ds_atlas_figures",
                            run_without_submitting=True)
    ds_figures.inputs.atlas = labels
    workflow.connect([
        (sidecars, ds_atlas, [("dseg_meta", "meta_dict"), ("descriptions", "description")]),
        (tables, ds_tables, [("out_file", "in_file")]),
        (cut, figures, [("labels_file", "labels_file")]),
        (group_mask, figures, [("mean_file", "mean_file"), ("mask_file", "mask_file")]),
        (figures, ds_figures, [("out_file", "in_file")]),
    ])
    if not quality:
        return
    plot_quality = pe.MapNode(PlotGroupQuality(), iterfield=["meta_dict"],
                              name="plot_group_quality")
    ds_quality = pe.MapNode(AtlasSink(**common, figure_desc="quality"),
                            iterfield=["in_file", "atlas"], name="ds_quality_figures",
                            run_without_submitting=True)
    ds_quality.inputs.atlas = labels
    workflow.connect([
        (sidecars, plot_quality, [("dseg_meta", "meta_dict")]),
        (plot_quality, ds_quality, [("out_file", "in_file")]),
    ])
