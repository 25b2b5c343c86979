"""Ward parcellation of a BOLD series, from EPI mask to compressed data."""

from __future__ import annotations

from collections.abc import Sequence

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from nipype_ward.core.connectivity import NEIGHBOURHOODS
from nipype_ward.core.validation import check_n_clusters
from nipype_ward.interfaces import (
    CheckParcelCounts,
    CutWardTree,
    GridConnectivity,
    MeshConnectivity,
    ParcelCompress,
    PrepareSignals,
    WardTree,
)
from nipype_ward.steps import SignalPreparation

#: Memory (GB) of the heavy nodes when the caller does not estimate it: a
#: 2 mm MNI-grid float32 BOLD series of 300 volumes (see ``series.estimate_mem_gb``).
DEFAULT_MEM_GB = {"prepare": 6.8, "tree": 5.7, "compress": 1.7}

#: What the preparation gives every later node (outputnode fields of both factories).
SERIES_FIELDS = ("series_file", "series_info", "mask_file", "mean_file")


def init_ward_parcellation_wf(
    *,
    n_clusters: Sequence[int] = (1000, 2000),
    neighbourhood: int = 6,
    preparation: SignalPreparation | None = None,
    mask_strategy: str = "epi",
    split_half: bool = True,
    save_compressed: bool = True,
    prepared: bool = False,
    surfaces: tuple | None = None,
    mem_gb: dict[str, float] | None = None,
    carpet: bool = False,
    omp_nthreads: int = 1,
    name: str = "ward_parcellation_wf",
):
    """Learn Ward parcellations of a BOLD series and compress it with each.

    One node (``prepare_signals``) reads the BOLD series, once: it computes
    the brain mask from the temporal mean (unless a mask is given),
    prepares the voxel signals and writes them as a memory-mappable series,
    which every later node reads instead of the BOLD. The grid connectivity
    of the mask's voxels is built, the Ward tree built once in its own node
    and cut at every number of parcels; each parcellation then compresses
    the series (each voxel replaced by its parcel's mean) and is measured.

    Because the tree has its own node, re-running with another list of
    ``n_clusters`` reuses the series and the tree from Nipype's cache.

    .. workflow::
        :graph2use: orig
        :simple_form: yes

        from nipype_ward.workflows import init_ward_parcellation_wf
        wf = init_ward_parcellation_wf(n_clusters=(1000, 2000))

    With ``surfaces`` (the left and right cortices' ``.surf.gii``, either
    may be None for a CIFTI file without it), the series is surface data:
    a CIFTI-2 dense series in ``inputnode.bold_file``, or a GIFTI pair
    (``bold_file`` the two hemispheres' series, the left's first). The grayordinates' graph is then the meshes'
    (:class:`~nipype_ward.interfaces.MeshConnectivity`, node
    ``mesh_connectivity``), and the mask, mean, labels and compressed series
    are CIFTI-2 files (maps, labels, dense series: :mod:`nipype_ward.io.geometry`);
    the tree, cuts and compression are the same nodes.

    Parameters
    ----------
    n_clusters : sequence of int, default=(1000, 2000)
        Numbers of parcels; each must be between 1 and the number of voxels
        of the mask (checked when the cut runs).
    neighbourhood : {6, 18, 26}, default=6
        Grid neighbourhood of a voxel (faces; faces and edges; all corners).
    preparation : SignalPreparation, optional
        How the voxel signals are prepared before the tree and the
        compression (:class:`nipype_ward.steps.SignalPreparation`); by
        default not at all, as in the seed example (and so the labels equal
        scikit-learn's). ``SignalPreparation(standardize="zscore_sample")``
        makes Ward group voxels by how their signals co-vary rather than by
        their intensity; ``confounds_strategy`` selects the confounds of an
        fMRIPrep BOLD file by one of nilearn's strategies (``"scrubbing"``
        also censors the volumes of high motion, out of the tree's input,
        the time series and the compressed series). Its ``confounds_file``
        is not used: the file comes through ``inputnode.confounds_file``,
        whose ``confounds_columns`` are regressed out.
    mask_strategy : {"epi", "background"}, default="epi"
        How the brain mask is computed when ``inputnode.mask_file`` is not
        set, as nilearn's maskers' ``mask_strategy``: nilearn's
        ``compute_epi_mask``, or ``compute_background_mask`` for a series
        whose background is zero already (skull-stripped), on which the EPI
        mask collapses (an error naming the BOLD says so).
    split_half : bool, default=True
        Also build the trees of the two halves of the volumes, so that every
        cut reports its split-half reproducibility (``split_half_ari`` in the
        metrics). Costs about one more tree.
    mem_gb : dict, optional
        Memory of the heavy nodes, keys ``"mask"``, ``"tree"`` and ``"compress"``, e.g.
        from :func:`nipype_ward.io.series.estimate_mem_gb`; defaults suit a 2 mm
        MNI BOLD series of 300 volumes.
    carpet : bool, default=False
        ``prepare_signals`` also writes the run's carpet sample
        (``outputnode.carpet_file``: the rows a carpet plot shows, before and
        after preparation, and their DVARS; a few percent of its time). Not
        with ``prepared``.
    omp_nthreads : int, default=1
        CPUs each heavy node may use (``n_procs``, as fMRIPrep's
        ``omp_nthreads``): ``prepare_signals`` decompresses a large
        ``.nii.gz`` on them, ``ward_tree`` builds the two halves' trees at
        once with 2, ``parcel_compress`` compresses its 4D image on them.
    name : str, default="ward_parcellation_wf"
        Name of the workflow.

    Inputs
    ------
    bold_file
        The BOLD series: a 4D NIfTI; with ``surfaces``, a CIFTI-2 dense series
        or a GIFTI pair (a list, the left hemisphere's series first).
    mask_file
        Optional brain mask on the BOLD grid (e.g. fMRIPrep's
        ``desc-brain_mask``); when set, no EPI mask is computed.
    confounds_file
        Optional confounds TSV (e.g. fMRIPrep's
        ``desc-confounds_timeseries.tsv``), regressed out before clustering.
    true_regions_file
        Optional known regions on the BOLD grid (e.g. a simulation's ground
        truth); when set, the metrics give the agreement with them.

    Outputs
    -------
    mask_file
        Brain mask used (uint8).
    mean_file
        Temporal mean of the BOLD series.
    series_file
        The masked, prepared voxel series (``.npy``).
    series_info
        What ``series_file`` cannot say of itself (TR, source, preparation,
        censored volumes), a dict.
    connectivity_file
        Grid adjacency of the mask's voxels (``.npz``).
    tree_file
        Full Ward tree (``.npz``).
    n_clusters
        The numbers of parcels, in the order of the lists below.
    labels_files
        One label image per number of parcels (1..K in the mask, 0 outside).
    timeseries_files
        Parcel mean signals (TSV), one per number of parcels.
    compressed_files
        Compressed BOLD series (4D NIfTI), one per number of parcels (with
        ``save_compressed``).
    parcel_series_files
        Surface data: the parcel series as CIFTI-2 parcel series, one per
        number of parcels.
    metrics_files
        Metrics (JSON), one per number of parcels: R2, homogeneity, parcel
        sizes, non-contiguous parcels, split-half ARI
        (:func:`nipype_ward.core.metrics.compression_summary`).
    carpet_file
        With ``carpet``: the carpet sample (``.npz``,
        :func:`nipype_ward.io.arrays.save_carpet`).
    """
    n_clusters = check_n_clusters(n_clusters)
    if neighbourhood not in NEIGHBOURHOODS:
        raise ValueError(f"neighbourhood must be one of {NEIGHBOURHOODS}, got {neighbourhood!r}")
    if carpet and prepared:
        raise ValueError("carpet needs the BOLD series (prepared=False): a prepared series "
                         "has no 'before' to show")
    preparation = preparation or SignalPreparation()
    mem_gb = {**DEFAULT_MEM_GB, **(mem_gb or {})}

    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(
            fields=[*SERIES_FIELDS, "true_regions_file"] if prepared
            else ["bold_file", "mask_file", "confounds_file", "true_regions_file"]
        ),
        name="inputnode",
    )
    outputnode = pe.Node(
        niu.IdentityInterface(
            fields=[
                "mask_file",
                "mean_file",
                "series_file",
                "series_info",
                "connectivity_file",
                "tree_file",
                "n_clusters",
                "labels_files",
                "timeseries_files",
                "compressed_files",
                "metrics_files",
            ] + (["parcel_series_files"] if surfaces is not None else [])
            + (["carpet_file"] if carpet else [])
        ),
        name="outputnode",
    )
    outputnode.inputs.n_clusters = n_clusters

    if prepared:
        source = inputnode
    else:
        # The only node that reads the BOLD.
        source = _prepare_signals(workflow, inputnode, preparation, mask_strategy,
                                  mem_gb["prepare"], carpet=carpet, omp_nthreads=omp_nthreads)
        if carpet:
            workflow.connect([(source, outputnode, [("carpet_file", "carpet_file")])])
    if surfaces is None:
        grid_connectivity = pe.Node(
            GridConnectivity(neighbourhood=neighbourhood), name="grid_connectivity"
        )
    else:
        left, right = surfaces
        grid_connectivity = pe.Node(MeshConnectivity(), name="mesh_connectivity")
        if left is not None:
            grid_connectivity.inputs.left_surface = str(left)
        if right is not None:
            grid_connectivity.inputs.right_surface = str(right)
    # Every K against the mask, the moment it is known: before any tree.
    check_counts = pe.Node(CheckParcelCounts(n_clusters=n_clusters), name="check_counts",
                           run_without_submitting=True)
    if not prepared:
        workflow.connect([(inputnode, check_counts, [(("bold_file", _first), "source_file")])])
    ward_tree = pe.Node(
        WardTree(split_half=split_half), name="ward_tree", mem_gb=mem_gb["tree"],
        n_procs=min(omp_nthreads, 2) if split_half else 1,
    )
    # Cheap (a second): run by the scheduler itself, never a cluster job.
    cut_tree = pe.MapNode(CutWardTree(), iterfield=["n_clusters"], name="cut_tree",
                          run_without_submitting=True)
    cut_tree.inputs.n_clusters = n_clusters
    parcel_compress = pe.MapNode(
        ParcelCompress(save_compressed=save_compressed),
        iterfield=["labels_file"],
        name="parcel_compress",
        mem_gb=mem_gb["compress"],
        n_procs=omp_nthreads if save_compressed else 1,
    )

    # fmt: off
    workflow.connect([
        (source, check_counts, [("mask_file", "mask_file")]),
        (check_counts, grid_connectivity, [("mask_file", "mask_file")]),
        (source, ward_tree, [("series_file", "series_file")]),
        (check_counts, ward_tree, [("mask_file", "mask_file")]),
        (grid_connectivity, ward_tree, [("connectivity_file", "connectivity_file")]),
        (ward_tree, cut_tree, [("tree_file", "tree_file")]),
        (source, cut_tree, [("mask_file", "mask_file")]),
        (source, parcel_compress, [("series_file", "series_file"),
                                   ("series_info", "series_info"),
                                   ("mask_file", "mask_file")]),
        (inputnode, parcel_compress, [("true_regions_file", "true_regions_file")]),
        (cut_tree, parcel_compress, [("labels_file", "labels_file")]),
        (grid_connectivity, parcel_compress, [("connectivity_file", "connectivity_file")]),
        (ward_tree, parcel_compress, [("half_tree_files", "half_tree_files")]),
        (source, outputnode, [(field, field) for field in SERIES_FIELDS]),
        (grid_connectivity, outputnode, [("connectivity_file", "connectivity_file")]),
        (ward_tree, outputnode, [("tree_file", "tree_file")]),
        (cut_tree, outputnode, [("labels_file", "labels_files")]),
        (parcel_compress, outputnode, [("timeseries_file", "timeseries_files"),
                                       ("compressed_file", "compressed_files"),
                                       ("metrics_file", "metrics_files")]),
    ])
    # fmt: on
    if surfaces is not None:
        workflow.connect([(parcel_compress, outputnode,
                          [("ptseries_file", "parcel_series_files")])])
    return workflow


def init_prepared_series_wf(
    *,
    preparation: SignalPreparation | None = None,
    mask_strategy: str = "epi",
    mem_gb: dict[str, float] | None = None,
    carpet: bool = False,
    omp_nthreads: int = 1,
    name: str = "ward_parcellation_wf",
):
    """A BOLD series read and prepared, nothing more: the group level's share of a run.

    The ``prepare_signals`` node of :func:`init_ward_parcellation_wf`, under
    the same names (a participant run with the same work directory leaves
    it in Nipype's cache, and the other way round), without the run's own
    tree, cuts and compressions.

    Inputs
    ------
    bold_file, mask_file, confounds_file
        As :func:`init_ward_parcellation_wf`'s.

    ``carpet`` as :func:`init_ward_parcellation_wf`'s (the sample is written,
    not output: it is there for a participant run sharing the cache), and
    ``omp_nthreads``.

    Outputs
    -------
    mask_file, mean_file, series_file, series_info
        As :func:`init_ward_parcellation_wf`'s.
    """
    mem_gb = {**DEFAULT_MEM_GB, **(mem_gb or {})}
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["bold_file", "mask_file", "confounds_file"]),
                        name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=list(SERIES_FIELDS)), name="outputnode")
    source = _prepare_signals(workflow, inputnode, preparation or SignalPreparation(),
                              mask_strategy, mem_gb["prepare"], carpet=carpet,
                              omp_nthreads=omp_nthreads)
    workflow.connect([(source, outputnode, [(field, field) for field in SERIES_FIELDS])])
    return workflow


def _prepare_signals(workflow, inputnode, preparation: SignalPreparation, mask_strategy: str,
                     mem_gb: float, *, carpet: bool = False, omp_nthreads: int = 1):
    """The node that reads the BOLD, fed by ``inputnode`` inside ``workflow``.

    ``carpet``: it also writes the report's carpet sample (set only when
    asked, so that the node's cache key is unchanged otherwise).
    """
    # The preparation options are set here and nowhere else (they are part of
    # its cache key, K is not).
    node = pe.Node(PrepareSignals(mask_strategy=mask_strategy), name="prepare_signals",
                   mem_gb=mem_gb, n_procs=omp_nthreads)
    set_preparation(node, preparation)
    if carpet:
        node.inputs.carpet = True
    workflow.connect([
        (inputnode, node, [("bold_file", "in_file"),
                           ("mask_file", "brain_mask_file"),
                           ("confounds_file", "confounds_file")]),
    ])
    return node


def set_preparation(node, preparation: SignalPreparation) -> None:
    """Set the preparation options on a node (or map node), leaving unset ones undefined."""
    for name, value in preparation.as_options().items():
        setattr(node.inputs, name, value)


def _first(files):
    """The first file of a series given as one path or several (a GIFTI pair): it names it."""
    return files if isinstance(files, str) else files[0]
