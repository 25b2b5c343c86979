"""The seed example as a workflow: parcellations, figures, and files delivered by sinks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from nipype_ward.core.validation import check_n_clusters
from nipype_ward.interfaces import ExportFiles
from nipype_ward.steps import SignalPreparation
from nipype_ward.workflows.figures import (
    FIGURE_INPUTS,
    connect_fields,
    init_parcellation_figures_wf,
)
from nipype_ward.workflows.parcellation import init_ward_parcellation_wf

#: Files delivered once per run, by the output of the parcellation workflow.
RUN_FILES = {"mask_file": "mask.nii.gz", "mean_file": "mean.nii.gz",
             "tree_file": "ward_tree.npz"}

#: Files delivered per number of parcels K.
PER_K_FILES = {
    "labels_files": "ward{k}_labels.nii.gz",
    "timeseries_files": "ward{k}_timeseries.tsv",
    "compressed_files": "ward{k}_compressed.nii.gz",
    "metrics_files": "ward{k}_metrics.json",
}

#: Figures delivered per K, by the figures workflow's output.
FIGURE_FILES = {"parcellation_figures": "ward{k}_parcellation.png",
                "compression_figures": "ward{k}_compression.png"}


def init_rest_clustering_wf(
    *,
    output_dir,
    n_clusters: Sequence[int] = (1000, 2000),
    neighbourhood: int = 6,
    preparation: SignalPreparation | None = None,
    mask_strategy: str = "epi",
    split_half: bool = True,
    figures: bool = True,
    mem_gb: dict[str, float] | None = None,
    omp_nthreads: int = 1,
    name: str = "rest_clustering_wf",
):
    """Ward parcellations of a rest-fMRI series, their figures, written into ``output_dir``.

    :func:`~nipype_ward.workflows.init_ward_parcellation_wf`, a node per
    figure and K (the parcellation over the mean EPI; a volume beside its
    compression), and a sink node (``ds_results``,
    :class:`~nipype_ward.interfaces.ExportFiles`) that copies every result
    into ``output_dir`` under the names of the seed pipeline:
    ``mask.nii.gz``, ``mean.nii.gz``, ``ward_tree.npz`` and, per K,
    ``ward{K}_labels.nii.gz``, ``ward{K}_timeseries.tsv``,
    ``ward{K}_compressed.nii.gz``, ``ward{K}_metrics.json``,
    ``ward{K}_parcellation.png``, ``ward{K}_compression.png``.

    .. workflow::
        :graph2use: orig
        :simple_form: yes

        from nipype_ward.workflows.seed import init_rest_clustering_wf
        wf = init_rest_clustering_wf(output_dir="/data/ward_out", n_clusters=(1000, 2000))

    Parameters
    ----------
    output_dir : path
        Absolute folder the files are copied into (it must exist when the
        sinks run). The command line passes a staging folder, renamed into
        place once the whole run succeeded.
    n_clusters, neighbourhood, mask_strategy, split_half, mem_gb, omp_nthreads
        As in :func:`~nipype_ward.workflows.init_ward_parcellation_wf`.
    preparation : SignalPreparation, optional
        The signal preparation (none by default, as in the seed example).
    figures : bool, default=True
        Draw and deliver the two figures per K.
    name : str, default="rest_clustering_wf"

    Inputs
    ------
    bold_file, mask_file, confounds_file, true_regions_file
        As in :func:`~nipype_ward.workflows.init_ward_parcellation_wf`.
    """
    n_clusters = check_n_clusters(n_clusters)
    output_dir = Path(output_dir)
    if not output_dir.is_absolute():
        raise ValueError(f"output_dir must be an absolute path, got {output_dir}")
    preparation = preparation or SignalPreparation()
    parcellation = init_ward_parcellation_wf(
        n_clusters=n_clusters,
        neighbourhood=neighbourhood,
        preparation=preparation,
        mask_strategy=mask_strategy,
        split_half=split_half,
        mem_gb=mem_gb,
        omp_nthreads=omp_nthreads,
    )
    workflow = pe.Workflow(name=name)
    fields = ["bold_file", "mask_file", "confounds_file", "true_regions_file"]
    inputnode = pe.Node(niu.IdentityInterface(fields=fields), name="inputnode")
    workflow.connect([
        (inputnode, parcellation, [(field, f"inputnode.{field}") for field in fields]),
    ])

    def per_k(pattern):
        return [str(output_dir / pattern.format(k=k)) for k in n_clusters]

    # What the sink delivers: (node, output field, destination(s)), in order.
    deliveries = [(parcellation, f"outputnode.{field}", str(output_dir / filename))
                  for field, filename in RUN_FILES.items()]
    deliveries += [(parcellation, f"outputnode.{field}", per_k(pattern))
                   for field, pattern in PER_K_FILES.items()]
    if figures:
        figures_wf = init_parcellation_figures_wf()
        connect_fields(workflow, parcellation, figures_wf, FIGURE_INPUTS)
        deliveries += [(figures_wf, f"outputnode.{field}", per_k(pattern))
                       for field, pattern in FIGURE_FILES.items()]

    # One Merge and one sink for every file: two nodes, not one (map) node a
    # file type. The sink runs in the main process under any plugin.
    gather = pe.Node(niu.Merge(len(deliveries)), name="gather_results",
                     run_without_submitting=True)
    # Every file it delivers is a node's output, written by this package: the
    # large ones linked, not copied, where the work and output folders share a
    # file system.
    ds_results = pe.Node(ExportFiles(hardlink=True), name="ds_results",
                         run_without_submitting=True)
    ds_results.inputs.out_files = [
        path for _, _, paths in deliveries for path in ([paths] if isinstance(paths, str) else paths)
    ]
    workflow.connect(
        [(node, gather, [(field, f"in{index}")])
         for index, (node, field, _) in enumerate(deliveries, start=1)]
        + [(gather, ds_results, [("out", "in_files")])]
    )
    return workflow

