"""File-in, file-out steps of the parcellation.

Each step reads its inputs with :mod:`nipype_ward.image` and
:mod:`nipype_ward.fileio` (which check them and name the file in every
error), calls the array core, and writes its outputs atomically. The Nipype
interfaces delegate to these functions one to one, so scripts, the CLI and
the interfaces share a single code path.

The BOLD series is read once, by :func:`prepare_series`, into a *prepared
series* (:func:`nipype_ward.fileio.save_series`) that the tree, its halves
and every compression read. The tree and compression steps also take a 4D
NIfTI directly (``bold_path``), for standalone use; both ways go through
:func:`load_voxel_series`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import nibabel as nb
import numpy as np

from nipype_ward import cifti, fileio, gifti, image, masking
from nipype_ward.connectivity import connected_components, grid_connectivity
from nipype_ward.fileio import InputError
from nipype_ward.group import REDUCTIONS, migp, reduce_features
from nipype_ward.metrics import (
    compression_summary,
    homogeneity,
    parcel_moments,
    reconstruction_r2,
    truth_agreement,
)
from nipype_ward.parcels import check_n_clusters, parcel_centroids, parcel_sizes
from nipype_ward.series import is_surface, read_repetition_time
from nipype_ward.signals import (
    CONFOUND_STRATEGIES,
    check_preparation,
    filters_requested,
    prepare_signals,
)
from nipype_ward.ward import build_ward_tree, cut_tree


@dataclass(frozen=True)
class SignalPreparation:
    """How voxel signals are prepared before clustering and compression.

    The defaults prepare nothing (the seed example). See
    :func:`nipype_ward.signals.prepare_signals` for the meaning of each
    option; ``t_r`` is read from the BOLD file when not given, and
    ``confounds_file`` is a TSV whose ``confounds_columns`` (all when empty)
    are regressed out. ``confounds_strategy`` instead selects the confounds
    of an fMRIPrep BOLD file by one of nilearn's preset strategies
    (:data:`~nipype_ward.signals.CONFOUND_STRATEGIES`; ``scrubbing`` also
    censors the volumes of high motion: framewise displacement above
    ``fd_threshold`` mm, standardized DVARS above ``dvars_threshold``,
    nilearn's 0.5 and 1.5 when None).
    """

    standardize: str | bool = False
    detrend: bool = False
    high_pass: float | None = None
    low_pass: float | None = None
    t_r: float | None = None
    confounds_file: str | None = None
    confounds_columns: tuple[str, ...] = ()
    confounds_strategy: str | None = None
    fd_threshold: float | None = None
    dvars_threshold: float | None = None

    def __post_init__(self):
        check_preparation(
            standardize=self.standardize, detrend=self.detrend,
            high_pass=self.high_pass, low_pass=self.low_pass, t_r=self.t_r,
        )
        if self.confounds_strategy is not None:
            if self.confounds_strategy not in CONFOUND_STRATEGIES:
                raise ValueError(
                    f"confounds_strategy must be one of {CONFOUND_STRATEGIES}, "
                    f"got {self.confounds_strategy!r}"
                )
            if self.confounds_file:
                raise ValueError("give confounds_file or confounds_strategy, not both")
        for name, unit in (("fd_threshold", " (mm)"), ("dvars_threshold", "")):
            value = getattr(self, name)
            if value is None:
                continue
            if self.confounds_strategy != "scrubbing":
                raise ValueError(f"{name} applies to the 'scrubbing' strategy only")
            if isinstance(value, bool) or not value > 0:
                raise ValueError(f"{name} must be positive{unit}, got {value!r}")

    @property
    def requested(self) -> bool:
        """Whether anything is done to the signals (``t_r`` alone does nothing)."""
        return bool(self.standardize or self.detrend or self.confounds_file
                    or self.confounds_strategy
                    or filters_requested(high_pass=self.high_pass, low_pass=self.low_pass))


class ResolvedPreparation(NamedTuple):
    """What a preparation needs for one BOLD file, read from its header and files."""

    t_r: float | None
    confounds: np.ndarray | None  #: (n_volumes, n_confounds)
    sample_mask: np.ndarray | None  #: kept volumes (scrubbing), None for all


def resolve_preparation(
    preparation: SignalPreparation, bold_path, bold_img, n_volumes: int, *, right_path=None
) -> ResolvedPreparation:
    """The TR, confounds and kept volumes a preparation needs for one BOLD file, checked.

    Cheap (headers and the confounds TSV only), so callers can run it before
    any heavy work. Errors name the file at fault. ``right_path`` is the
    right hemisphere of a GIFTI pair whose left one is ``bold_path``.
    """
    t_r = preparation.t_r
    if t_r is None:
        t_r = read_repetition_time(bold_path, bold_img)
    if t_r is None and filters_requested(
        high_pass=preparation.high_pass, low_pass=preparation.low_pass
    ):
        raise InputError(
            bold_path,
            "filtering (high_pass/low_pass) needs the repetition time, which is neither "
            "in the NIfTI header nor in a JSON sidecar: set t_r",
        )
    try:  # e.g. a cutoff above Nyquist for this file's TR
        check_preparation(
            standardize=preparation.standardize, detrend=preparation.detrend,
            high_pass=preparation.high_pass, low_pass=preparation.low_pass, t_r=t_r,
        )
    except ValueError as exc:
        raise InputError(bold_path, str(exc)) from exc
    confounds = sample_mask = None
    if preparation.confounds_file:
        confounds = fileio.load_confounds(
            preparation.confounds_file, n_volumes, preparation.confounds_columns
        )
    elif preparation.confounds_strategy:
        confounds, sample_mask = fileio.load_fmriprep_confounds(
            bold_path if right_path is None else [bold_path, right_path],
            preparation.confounds_strategy, n_volumes,
            fd_threshold=preparation.fd_threshold,
            dvars_threshold=preparation.dvars_threshold,
        )
    return ResolvedPreparation(t_r, confounds, sample_mask)


class VoxelSeries(NamedTuple):
    """A masked, prepared series with what its consumers need to write images."""

    X: np.ndarray  #: (n_voxels, n_volumes), float32 or float64
    mask: np.ndarray  #: bool (nx, ny, nz); voxels of X in its C order
    reference_img: nb.Nifti1Image  #: grid, affine and codes of outputs
    t_r: float | None
    source: str  #: the BOLD file it was read from
    preparation: dict  #: the :class:`SignalPreparation` applied, as a dict
    n_volumes_acquired: int  #: volumes of the BOLD, before any censoring
    sample_mask: list | None  #: the kept volumes when some were censored
    n_constant: int = 0  #: voxels of the given mask left out for a constant series


def _epi_mask(mean_img, options: masking.EPIMaskOptions, bold_path) -> np.ndarray:
    """nilearn's mask of a mean image by ``options.strategy``, refused where it is no brain mask.

    The EPI mask (``"epi"``) is refused on an image without a dark
    background (a slab, a cropped field of view: see
    :func:`nipype_ward.masking.background_fraction`), when it collapses on an
    image whose background is zero already (skull-stripped: see
    :data:`nipype_ward.masking.ZERO_BACKGROUND_FRACTION`), and when it is
    empty; the background mask (``"background"``) when it is empty. Each is
    an error naming the BOLD and saying what to do.
    """
    mean = np.asanyarray(mean_img.dataobj)
    if options.strategy == "background":
        mask = masking.compute_background_mask(mean_img)
        if not mask.any():
            raise InputError(bold_path, "the background mask computed from it is empty (no "
                             "voxel differs from the image's border): give a brain mask (--mask)")
        return mask
    background = masking.background_fraction(mean)
    mask = masking.compute_epi_mask(mean_img, options)
    kept, total = int(mask.sum()), mask.size
    share = f"{kept:,} of its {total:,} voxels ({kept / total:.1%})"
    if background < masking.MIN_BACKGROUND_FRACTION:
        raise InputError(
            bold_path,
            f"the EPI has no dark background ({background:.1%} of its voxels are darker than "
            f"a fifth of its bright ones), so an EPI mask cannot tell brain from background "
            f"(it keeps {share}): give a brain mask (--mask)",
        )
    zero, non_zero = masking.zero_fraction(mean), int(np.count_nonzero(mean))
    if zero >= masking.ZERO_BACKGROUND_FRACTION \
            and kept < masking.MIN_KEPT_OF_NON_ZERO * non_zero:
        raise InputError(
            bold_path,
            f"the EPI mask keeps {kept:,} of its {non_zero:,} non-zero voxels "
            f"({kept / non_zero:.1%}): its background is zero already ({zero:.1%} of the "
            "voxels, as in skull-stripped data), which the EPI mask is not made for: use "
            "--mask-strategy background, or give a brain mask (--mask)",
        )
    if kept == 0:
        raise InputError(bold_path, "the EPI mask computed from it is empty: give a brain "
                         "mask (--mask)")
    return mask


def _drop_constant(X, mask, bold_path):
    """Leave out the voxels whose series is constant: they carry no signal to cluster.

    Inside a given mask (an EPI mask rarely keeps them), voxels outside the
    field of view or zeroed by resampling would each become a parcel of
    their own. Returns the series and mask without them and their number,
    and warns (:class:`~nipype_ward.fileio.DataWarning`) when there are any.
    """
    import warnings

    constant = X.min(axis=1) == X.max(axis=1)
    n_constant = int(constant.sum())
    if not n_constant:
        return X, mask, 0
    if n_constant == X.shape[0]:
        raise InputError(bold_path, f"all {n_constant} voxels of the mask have a constant "
                         "series: check the mask and the series")
    warnings.warn(fileio.DataWarning(
        bold_path, f"{n_constant} of the mask's {X.shape[0]} voxels have a constant series "
        "(no signal): left out of the parcels (label 0), counted as n_voxels_constant"))
    kept_mask = mask.copy()
    kept_mask[mask] = ~constant
    return np.ascontiguousarray(X[~constant]), kept_mask, n_constant


def _warn_constant_points(X, bold_path) -> None:
    """Warn of surface points with a constant series: kept, as the brain models list them."""
    import warnings

    n_constant = int((X.min(axis=1) == X.max(axis=1)).sum())
    if n_constant:
        warnings.warn(fileio.DataWarning(
            bold_path, f"{n_constant} of its {X.shape[0]} grayordinates have a constant series "
            "(no signal): kept, as its brain models list them, they may make parcels of their "
            "own"))


def _read_surface(bold_path, right_path):
    """A surface series as (grayordinates, volumes), its brain models and its header image.

    A CIFTI-2 ``.dtseries.nii`` holds its brain models; a GIFTI ``.func.gii``
    is one hemisphere, ``right_path`` the other (the left first), and its
    brain models are each cortex's vertices with data
    (:func:`nipype_ward.gifti.data_vertices`).
    """
    if cifti.is_cifti(bold_path):
        if right_path is not None:
            raise InputError(right_path, "a CIFTI series holds both hemispheres: give it alone")
        dense = cifti.load_dtseries(bold_path)
        X, models, header_img = dense.X, dense.brain_models, dense.img
    else:
        if right_path is None:
            raise InputError(bold_path, "a GIFTI series is one hemisphere: give the left "
                             "hemisphere's and the right's, the left first")
        series = gifti.load_hemisphere_series(bold_path, right_path)
        X, models, header_img = series.X, cifti.grayordinates_of_gifti(
            series.vertices, series.n_vertices), None
    if X.shape[1] < 2:
        raise InputError(bold_path, f"a series needs at least 2 volumes, got {X.shape[1]}")
    dtype = image.series_dtype(X.dtype)
    return np.asarray(X, dtype=dtype), models, header_img


def read_prepared(
    bold_path,
    *,
    mask_path=None,
    epi_options: masking.EPIMaskOptions | None = None,
    preparation: SignalPreparation | None = None,
    spill_dir=None,
    right_path=None,
) -> tuple[VoxelSeries, nb.Nifti1Image]:
    """Read a BOLD series once and prepare it: the one heavy read of a run.

    The mask is ``mask_path`` when given (checked against the BOLD grid),
    otherwise nilearn's mask of the temporal mean by ``epi_options`` (EPI or
    background strategy; refused where it cannot be a brain mask, see
    :func:`_epi_mask`).
    Voxels of a volume mask whose series is constant are left out of it
    (:func:`_drop_constant`). The preparation's TR, confounds and cutoffs
    are checked from the header before any data are read.

    Returns
    -------
    series : VoxelSeries (its reference image is the BOLD's header)
    mean_img : the temporal mean (nilearn's ``mean_img`` values)
    """
    preparation = preparation or SignalPreparation()
    epi_options = epi_options or masking.EPIMaskOptions()
    resolved = {}

    def check_header(img):
        resolved["preparation"] = resolve_preparation(preparation, bold_path, img, img.shape[3])

    if is_surface(bold_path):
        if mask_path is not None:
            raise InputError(mask_path, "surface data need no brain mask: its vertices with "
                             "data are the grayordinates")
        X, models, header_img = _read_surface(bold_path, right_path)
        _warn_constant_points(X, bold_path)
        n_constant = 0  # kept: the brain models list the grayordinates
        resolved["preparation"] = resolve_preparation(preparation, bold_path, header_img,
                                                      X.shape[1], right_path=right_path)
        mask = np.ones(X.shape[0], dtype=bool)
        bold_img = cifti.points_image(header_img if header_img is not None else models)
        mean_img = cifti.points_image(bold_img, X.mean(axis=1), name="mean")
    else:
        mask = image.load_mask(mask_path)[0] if mask_path is not None else None
        X, mask, mean_img, bold_img = image.read_series(
            bold_path, mask=mask, mask_path=mask_path,
            compute_mask=lambda mean: _epi_mask(mean, epi_options, bold_path),
            before_reading=check_header, spill_dir=spill_dir,
        )
        X, mask, n_constant = _drop_constant(X, mask, bold_path)
    n_volumes, found = X.shape[1], resolved["preparation"]
    if preparation.requested:
        try:
            X = prepare_signals(
                X,
                standardize=preparation.standardize,
                detrend=preparation.detrend,
                high_pass=preparation.high_pass,
                low_pass=preparation.low_pass,
                t_r=found.t_r,
                confounds=found.confounds,
                sample_mask=found.sample_mask,
            )
        except ValueError as exc:  # e.g. scrubbing kept too few volumes
            raise InputError(bold_path, str(exc)) from exc
    kept = None
    if found.sample_mask is not None and len(found.sample_mask) < n_volumes:
        kept = [int(i) for i in found.sample_mask]
    return VoxelSeries(
        X, mask, bold_img, found.t_r, str(bold_path), asdict(preparation), n_volumes, kept,
        n_constant,
    ), mean_img


def prepare_series(
    bold_path,
    out_series,
    out_mask,
    out_mean,
    *,
    brain_mask_path=None,
    epi_options: masking.EPIMaskOptions | None = None,
    preparation: SignalPreparation | None = None,
    spill_dir=None,
    right_path=None,
) -> VoxelSeries:
    """Write the masked, prepared series of a BOLD file, its mask and its mean.

    For surface data (a CIFTI-2 ``.dtseries.nii``, or a GIFTI ``.func.gii``
    pair: ``bold_path`` the left hemisphere, ``right_path`` the right), the
    "mask" and the mean are ``.dscalar.nii`` files of its grayordinates.

    See :func:`read_prepared`; the series is written as ``.npy``
    (:func:`nipype_ward.fileio.save_series`), the mask as uint8 and the mean
    as float32 NIfTI. :func:`series_info` of the result says the rest.
    """
    series, mean_img = read_prepared(
        bold_path, mask_path=brain_mask_path, epi_options=epi_options,
        preparation=preparation, spill_dir=spill_dir, right_path=right_path,
    )
    if is_surface(bold_path):
        cifti.save_points(series.reference_img, out_mask)
        cifti.save_points(series.reference_img, out_mean, image.data_of(mean_img), name="mean")
    else:
        image.save_image(masking.mask_image(series.mask, mean_img), out_mask)
        image.save_image(masking.mean_image(mean_img.dataobj, mean_img), out_mean)
    fileio.save_series(series.X, out_series)
    return series


def censored_volumes(info: dict) -> list[int]:
    """The volumes a :func:`series_info` says were censored (none when all were kept)."""
    kept = info.get("sample_mask")
    if kept is None:
        return []
    return sorted(set(range(info["n_volumes_acquired"])) - set(kept))


def series_info(series: VoxelSeries) -> dict:
    """What a prepared series file cannot say of itself, as plain JSON-able values."""
    return {
        "source": series.source,
        "t_r": series.t_r,
        "preparation": series.preparation,
        "n_voxels": int(series.X.shape[0]),
        "n_volumes": int(series.X.shape[1]),
        "n_volumes_acquired": series.n_volumes_acquired,
        "sample_mask": series.sample_mask,
        "n_voxels_constant": series.n_constant,
        "dtype": str(series.X.dtype),
    }


def load_voxel_series(
    *, series_path=None, series_info=None, bold_path=None, mask_path=None, preparation=None
) -> VoxelSeries:
    """The voxel series of a step: a prepared series file, or a 4D NIfTI read now.

    With ``series_path`` (from :func:`prepare_series`), ``mask_path`` is the
    mask it was taken in, ``series_info`` (optional) what
    :func:`series_info` said of it, and the series is memory-mapped, not
    read; a ``preparation`` is refused (the series is prepared already).
    With ``bold_path``, the series is read inside ``mask_path`` and prepared.
    """
    if (series_path is None) == (bold_path is None):
        raise ValueError("give exactly one of series_path and bold_path")
    if bold_path is not None:
        return read_prepared(bold_path, mask_path=mask_path, preparation=preparation)[0]
    if preparation is not None and preparation.requested:
        raise ValueError(
            "a prepared series cannot be prepared again: set the preparation where the "
            "series is made (PrepareSignals), or give the 4D BOLD instead"
        )
    if mask_path is None:
        raise ValueError("a prepared series needs the mask it was taken in (mask_path)")
    mask, mask_img = image.load_mask(mask_path)
    X = fileio.load_series(series_path, n_voxels=int(mask.sum()))
    info = series_info or {}
    return VoxelSeries(X, mask, mask_img, info.get("t_r"), info.get("source", str(series_path)),
                       info.get("preparation"), info.get("n_volumes_acquired", X.shape[1]),
                       info.get("sample_mask"), info.get("n_voxels_constant", 0))


def epi_mask(
    bold_path,
    out_mask,
    out_mean,
    *,
    brain_mask_path=None,
    options: masking.EPIMaskOptions | None = None,
) -> tuple[Path, Path]:
    """Write the brain mask (uint8) and the temporal mean of a series, read once.

    The mask is computed by ``options`` (its strategy: EPI or background;
    see :func:`_epi_mask`). With ``brain_mask_path`` (e.g. fMRIPrep's
    ``desc-brain_mask``) no mask is computed: the given one is checked
    against the EPI grid and written as uint8.
    """
    mean, bold_img = image.read_mean(bold_path)
    mean_img = nb.Nifti1Image(mean, bold_img.affine, bold_img.header)
    if brain_mask_path is not None:
        mask, _ = image.load_mask(brain_mask_path, reference=bold_img, reference_path=bold_path)
    else:
        mask = _epi_mask(mean_img, options or masking.EPIMaskOptions(), bold_path)
    return (
        image.save_image(masking.mask_image(mask, mean_img), out_mask),
        image.save_image(masking.mean_image(mean, mean_img), out_mean),
    )


def mesh_connectivity(mask_path, out_file, surfaces: dict) -> int:
    """The graph of the grayordinates of a surface "mask" (``.dscalar.nii``), written.

    ``surfaces`` gives the mesh (``.surf.gii``) of each surface structure
    the file holds, by CIFTI structure name (``CIFTI_STRUCTURE_CORTEX_LEFT``,
    ``CIFTI_STRUCTURE_CORTEX_RIGHT``); see
    :func:`nipype_ward.cifti.grayordinate_connectivity`. Returns the number
    of connected pieces.
    """
    models = cifti.brain_models_of(cifti.load_cifti(mask_path))
    faces = {}
    for structure, path in surfaces.items():
        mesh = gifti.load_mesh(path)
        if structure in models.nvertices and mesh.n_vertices != models.nvertices[structure]:
            raise InputError(path, f"a mesh of {mesh.n_vertices} vertices, but the data have "
                             f"{models.nvertices[structure]} for {structure}: give the "
                             "surfaces of the data's space")
        faces[structure] = mesh.faces
    try:
        adjacency = cifti.grayordinate_connectivity(models, faces)
    except ValueError as exc:
        raise InputError(mask_path, str(exc)) from exc
    fileio.save_connectivity(adjacency, out_file)
    return connected_components(adjacency)[0]


def connectivity(mask_path, out_file, *, neighbourhood: int = 6) -> int:
    """Write the grid adjacency of a mask's voxels; return its connected pieces.

    A mask of several pieces is warned about
    (:class:`~nipype_ward.fileio.DataWarning`): no parcel spans two pieces,
    the tree joins them only at its top, and K below their number merges
    whole pieces (where scikit-learn would bridge them; see
    :func:`nipype_ward.ward.ward_tree`).
    """
    import warnings

    mask, _ = image.load_mask(mask_path)
    adjacency = grid_connectivity(mask, neighbourhood)
    fileio.save_connectivity(adjacency, out_file)
    n_components, component = connected_components(adjacency)
    if n_components > 1:
        sizes = sorted(np.bincount(component).tolist(), reverse=True)
        shown = ", ".join(f"{size:,}" for size in sizes[:3]) + (", ..." if n_components > 3
                                                                 else "")
        warnings.warn(fileio.DataWarning(
            mask_path, f"the mask is {n_components} separate pieces ({shown} voxels, "
            f"{neighbourhood}-neighbourhood): no parcel spans two, and K below "
            f"{n_components} merges whole pieces"))
    return int(n_components)


def check_n_clusters_in_mask(n_clusters, n_voxels: int, mask_path) -> list[int]:
    """Each K must be a positive integer no larger than the mask; errors name the mask."""
    values = check_n_clusters(n_clusters)
    for k in values:
        if k > n_voxels:
            raise InputError(
                mask_path,
                f"cannot make {k} parcels from a mask of {n_voxels} voxels: ask for at "
                f"most {n_voxels} (--n-clusters) or give a larger mask",
            )
    return values


def ward_tree(
    connectivity_path,
    out_tree,
    *,
    series_path=None,
    bold_path=None,
    mask_path=None,
    n_clusters=(),
    preparation=None,
    out_half_trees=None,
):
    """Build the Ward tree of a voxel series and write it.

    The series is a prepared series file (``series_path``) or a 4D NIfTI
    read and prepared now (``bold_path``); see :func:`load_voxel_series`.
    ``n_clusters`` is only checked here (before the heavy work), so that a
    bad K fails fast. With ``out_half_trees`` (two paths), the trees of the
    first and of the second half of the volumes are written too, for the
    split-half reproducibility of every cut; the halves are cut from the
    prepared series, so filtering and confound regression see the whole run.
    """
    if n_clusters and mask_path is not None:
        mask, _ = image.load_mask(mask_path)
        check_n_clusters_in_mask(n_clusters, int(mask.sum()), mask_path)
    series = load_voxel_series(
        series_path=series_path, bold_path=bold_path, mask_path=mask_path,
        preparation=preparation,
    )
    X = series.X
    adjacency = fileio.load_connectivity(connectivity_path, n_voxels=X.shape[0])
    if out_half_trees is not None and X.shape[1] < 4:
        raise InputError(
            series_path or bold_path,
            f"split halves need at least 4 volumes, got {X.shape[1]}",
        )
    # The pieces of the mask (or the surface's structures) are reported by the
    # connectivity step and stored in the tree: no warning from inside a run.
    tree = build_ward_tree(X, adjacency, warn_components=False)
    fileio.save_tree(tree, out_tree)
    if out_half_trees is not None:
        half = X.shape[1] // 2
        for part, path in zip((X[:, :half], X[:, half:]), out_half_trees):
            fileio.save_tree(build_ward_tree(part, adjacency, warn_components=False), path)
    return tree


def cut(tree_path, mask_path, n_clusters: int, out_labels) -> Path:
    """Cut a written tree at ``n_clusters`` parcels and write the label image."""
    mask, mask_img = image.load_mask(mask_path)
    n_voxels = int(mask.sum())
    (k,) = check_n_clusters_in_mask(n_clusters, n_voxels, mask_path)
    tree = fileio.load_tree(tree_path, n_leaves=n_voxels)
    labels = cut_tree(tree.children, k)
    return image.save_labels(labels, mask, mask_img, out_labels)


def split_half_ari(half_tree_paths, n_clusters: int, n_voxels: int) -> float:
    """ARI between the trees of the two halves of a run, both cut at ``n_clusters``."""
    from sklearn.metrics import adjusted_rand_score

    if len(half_tree_paths) != 2:
        raise ValueError(f"split halves need two tree files, got {len(half_tree_paths)}")
    first, second = (
        cut_tree(fileio.load_tree(path, n_leaves=n_voxels).children, n_clusters)
        for path in half_tree_paths
    )
    return float(adjusted_rand_score(first, second))


def compare_labels(labels, mask, reference_path, reference_img, labels_path):
    """ARI and AMI of 0-based ``labels`` in ``mask`` against a label image.

    Over the voxels labelled in both; returns a
    :class:`nipype_ward.metrics.Agreement`.
    """
    truth_img = image.load_image(reference_path, ndim=3)
    image.check_same_grid(truth_img, reference_path, reference_img, labels_path)
    truth = np.asanyarray(truth_img.dataobj)[mask]
    both = truth > 0
    if not both.any():
        raise InputError(reference_path, f"no labelled voxel in common with {labels_path}")
    return truth_agreement(labels[both], truth[both])


def parcel_compress(
    labels_path,
    out_timeseries,
    out_compressed,
    out_metrics,
    *,
    series_path=None,
    series_info=None,
    bold_path=None,
    mask_path=None,
    preparation=None,
    connectivity_path=None,
    half_tree_paths=(),
    true_regions_path=None,
    atlas: bool = False,
    out_ptseries=None,
) -> dict:
    """Replace each voxel's signal by its parcel's mean.

    Writes the parcel time series (TSV: one column per parcel label, one row
    per volume), the compressed 4D image (unless ``out_compressed`` is None)
    and the metrics JSON; returns the metrics. The series is a prepared
    series file (``series_path``, with the ``mask_path`` it was taken in) or
    a 4D NIfTI read and prepared now (``bold_path``, inside the label
    image's non-zero voxels unless ``mask_path`` is given); the outputs are
    those of the prepared signals.

    The metrics are those of :func:`nipype_ward.metrics.compression_summary`;
    with ``connectivity_path`` they count the non-contiguous parcels, with
    ``half_tree_paths`` (the trees of the two halves of the volumes, see
    :func:`ward_tree`) they give ``split_half_ari``, the adjusted Rand index
    between the two halves' trees cut at the same number of parcels, and
    with ``true_regions_path`` (known regions on the same grid, e.g. the
    simulation's) ``true_regions_ari`` and ``true_regions_ami``.

    With ``atlas=True`` the label image is an atlas that need not cover the
    mask (a group atlas, or any dseg on the run's grid): only the mask's
    voxels it labels are used (``n_voxels_outside_atlas`` counts the
    others), the time series has one column per label of the atlas in
    increasing order, and a parcel with no voxel in the mask gets a column
    of n/a (listed in ``parcels_missing``); the metrics are those of the
    parcels present.

    For surface data, ``out_ptseries`` also receives the parcel series as a
    CIFTI-2 ``.ptseries.nii`` (parcels in increasing label order, each with
    its grayordinates), as Connectome Workbench and XCP-D write them.
    """
    series = load_voxel_series(
        series_path=series_path, series_info=series_info, bold_path=bold_path,
        mask_path=mask_path if mask_path is not None else (labels_path if bold_path else None),
        preparation=preparation,
    )
    X, mask = series.X, series.mask
    labels_img = image.load_image(labels_path, ndim=3)
    image.check_same_grid(labels_img, labels_path, series.reference_img,
                          mask_path or series.source)
    outside, all_values = 0, None
    if atlas:
        data = image.data_of(labels_img)
        keep = data[mask] > 0
        if not keep.any():
            raise InputError(labels_path, f"the atlas labels no voxel of the mask "
                             f"{mask_path or series.source}")
        outside = int((~keep).sum())
        all_values = np.unique(data[data > 0]).astype(np.int64)
        if outside:
            X, mask = np.asarray(X[keep]), mask & (data > 0)
    labels, label_values = image.load_labels(labels_path, mask=mask)
    moments = parcel_moments(X, labels, len(label_values))
    means = moments.sums / moments.sizes[:, None]
    connectivity = None
    if connectivity_path:
        connectivity = fileio.load_connectivity(connectivity_path,
                                                n_voxels=X.shape[0] + outside)
        if outside:
            connectivity = connectivity[keep][:, keep]
    metrics = compression_summary(X, labels, connectivity=connectivity, moments=moments)
    columns = label_values
    if atlas:
        metrics["n_voxels_outside_atlas"] = outside
        metrics["parcels_missing"] = [int(v) for v in np.setdiff1d(all_values, label_values)]
        position = {int(v): i for i, v in enumerate(label_values)}
        table = np.full((len(all_values), means.shape[1]), np.nan)
        for row, value in enumerate(all_values):
            if int(value) in position:
                table[row] = means[position[int(value)]]
        table_means, columns = table, all_values
    else:
        table_means = means
    if half_tree_paths:
        metrics["split_half_ari"] = split_half_ari(half_tree_paths, len(means), X.shape[0])
    if true_regions_path:
        truth = compare_labels(labels, mask, true_regions_path, series.reference_img, labels_path)
        metrics["true_regions_ari"], metrics["true_regions_ami"] = truth.ari, truth.ami
    metrics["bold_file"] = series.source
    metrics["labels_file"] = str(labels_path)
    metrics["preparation"] = series.preparation
    if series.n_constant:
        metrics["n_voxels_constant"] = series.n_constant
    fileio.save_timeseries(table_means, out_timeseries, column_names=[str(v) for v in columns])
    if out_compressed is not None and image.is_cifti_image(series.reference_img):
        cifti.save_dtseries(means[labels], series.reference_img, out_compressed,
                            t_r=series.t_r)
    elif out_compressed is not None:
        image.save_series_image(
            lambda start, stop: means[labels, start:stop], mask, series.reference_img,
            out_compressed, n_volumes=X.shape[1], dtype=X.dtype, t_r=series.t_r,
        )
    if out_ptseries is not None and image.is_cifti_image(series.reference_img):
        from nibabel import cifti2

        models = cifti.brain_models_of(series.reference_img)
        values = np.zeros(len(models), dtype=np.int64)
        values[mask] = label_values[labels]
        axis = cifti2.SeriesAxis(start=0.0, step=float(series.t_r or 1.0), size=means.shape[1],
                                 unit="SECOND")
        cifti.save_ptseries(means[np.argsort(label_values)], values, models, axis, out_ptseries)
    fileio.save_json(metrics, out_metrics)
    return metrics


def parcel_table(labels_path, out_tsv, *, prefix: str = "parcel") -> Path:
    """The BIDS table of a label image: ``index``, ``name``, size and centre of each parcel.

    One row per label value, in increasing order: ``index`` (the value in the
    image), ``name`` (``<prefix>_<index>``), ``n_voxels`` and the centroid
    ``x``, ``y``, ``z`` in the image's world coordinates (mm). For surface
    labels (``.dlabel.nii``): ``n_grayordinates`` and ``structure`` (the
    CIFTI structure, e.g. ``CORTEX_LEFT``) instead of size and centre.
    """
    labels_img = image.load_image(labels_path, ndim=3)
    data = image.data_of(labels_img)
    mask = data > 0
    if not mask.any():
        raise InputError(labels_path, "label image has no parcel")
    labels, values = image.load_labels(labels_path, mask=mask)
    order = np.argsort(values)
    width = len(str(int(values.max())))
    names = [f"{prefix}_{int(v):0{width}d}" for v in values[order]]
    if image.is_cifti_image(labels_img):
        return _surface_parcel_table(labels_img, mask, labels, values, order, names, out_tsv)
    voxels = np.column_stack(np.nonzero(mask))
    world = nb.affines.apply_affine(labels_img.affine, voxels)
    centroids = parcel_centroids(labels, world)[order]
    return fileio.save_table({
        "index": values[order],
        "name": names,
        "n_voxels": parcel_sizes(labels)[order],
        "x": centroids[:, 0].round(2), "y": centroids[:, 1].round(2),
        "z": centroids[:, 2].round(2),
    }, out_tsv)


def split_hemispheres(in_path, out_left, out_right) -> tuple[Path, Path]:
    """A cortical CIFTI-2 file as two GIFTI files, as fMRIPrep delivers fsaverage data.

    Labels (``.dlabel.nii``) become ``.label.gii`` files (0 on the vertices
    without data, the same label table in both), a series
    (``.dtseries.nii``) ``.func.gii`` files (0 on the vertices without data).
    """
    img = cifti.load_cifti(in_path)
    models = cifti.brain_models_of(img)
    kinds = {name for name, _, _ in cifti.structures(models)}
    if kinds - set(cifti.CORTEX.values()) or len(kinds) != 2:
        raise InputError(in_path, "GIFTI holds one cortex a file: this file has the "
                         f"structures {sorted(kinds)}")
    data = np.asanyarray(img.dataobj)
    if str(in_path).endswith(".dlabel.nii"):
        values = cifti.hemisphere_values(data[0].astype(np.int32), models)
        n_labels = int(data.max())
        return tuple(gifti.save_labels(values[hemi], n_labels, out, hemisphere=hemi)
                     for hemi, out in zip("LR", (out_left, out_right)))
    step = img.header.get_axis(0).step
    values = cifti.hemisphere_values(data.T.astype(np.float32), models)
    return tuple(gifti.save_series(values[hemi], out, hemisphere=hemi, t_r=step)
                 for hemi, out in zip("LR", (out_left, out_right)))


def _surface_parcel_table(labels_img, mask, labels, values, order, names, out_tsv) -> Path:
    """The table of surface labels: grayordinates and structure of each parcel.

    A parcel never spans two structures (the graph has no edge between
    them), so its structure is that of any of its grayordinates.
    """
    structure = cifti.structure_of_grayordinates(cifti.brain_models_of(labels_img))[mask]
    first = np.zeros(len(values), dtype=np.intp)
    first[labels[::-1]] = np.arange(labels.size)[::-1]  # a grayordinate of each parcel
    return fileio.save_table({
        "index": values[order],
        "name": names,
        "n_grayordinates": parcel_sizes(labels)[order],
        "structure": structure[first][order],
    }, out_tsv)


def combine_series(series_paths, mask_paths, infos, mean_paths, out_series, out_mask, out_mean,
                   out_run_series) -> tuple[dict, list[dict]]:
    """Concatenate the prepared series of several runs in time, in the voxels common to all.

    Each run was prepared on its own (its mask, confounds, censoring,
    standardization); the combined series holds, for the voxels inside every
    run's mask, the runs' series one after the other. Each run's series is
    also written restricted to those voxels (``out_run_series``), so its own
    time series can be taken on the combined parcellation.

    Returns
    -------
    info : dict
        The combined series' :func:`series_info`, with ``runs``, the info of
        each run.
    run_infos : list of dict
        Each run's info, its voxel count that of the common mask.
    """
    if not (len(series_paths) == len(mask_paths) == len(infos) == len(mean_paths)
            == len(out_run_series)) or not series_paths:
        raise ValueError("give one series, mask, info, mean and output per run")
    masks, common, reference_img, mean = _common_points(mask_paths, mean_paths)
    t_rs = {info.get("t_r") for info in infos}
    if len(t_rs) > 1:
        raise InputError(series_paths[0], f"the runs have different repetition times {sorted(t_rs)}: "
                         "combine runs of one acquisition only")
    parts, run_infos = [], []
    for path, mask, info, out in zip(series_paths, masks, infos, out_run_series):
        part = np.array(fileio.load_series(path, n_voxels=int(mask.sum()))[common[mask]])
        fileio.save_series(part, out)
        parts.append(part)
        run_infos.append({**info, "n_voxels": int(common.sum())})
    combined = np.concatenate(parts, axis=1)
    _save_mask_and_mean(common, mean, reference_img, out_mask, out_mean)
    fileio.save_series(combined, out_series)
    kept, offset = [], 0
    for info in infos:
        run_kept = info.get("sample_mask") or range(info["n_volumes_acquired"])
        kept += [offset + int(i) for i in run_kept]
        offset += info["n_volumes_acquired"]
    censored = len(kept) < offset
    return {
        "source": "; ".join(info["source"] for info in infos),
        "t_r": next(iter(t_rs)),
        "preparation": infos[0].get("preparation"),
        "n_voxels": int(combined.shape[0]),
        "n_volumes": int(combined.shape[1]),
        "n_volumes_acquired": offset,
        "sample_mask": kept if censored else None,
        "dtype": str(combined.dtype),
        "runs": run_infos,
    }, run_infos


# --------------------------------------------------------------------------
# Group level
# --------------------------------------------------------------------------
def _common_points(mask_paths, mean_paths):
    """Each run's mask, the voxels inside all, the first mask's image, the mean of the means.

    Every mask must be on the grid of the first (same shape and affine; for
    surface data, the same grayordinates).
    """
    if not mask_paths or len(mask_paths) != len(mean_paths):
        raise ValueError("give one mask and one mean image per run")
    masks, reference, mean = [], None, None
    for mask_path, mean_path in zip(mask_paths, mean_paths):
        mask, mask_img = image.load_mask(mask_path)
        if reference is None:
            reference, mean = (mask_img, mask_path), np.zeros(mask.shape)
        else:
            image.check_same_grid(mask_img, mask_path, *reference)
        masks.append(mask)
        mean += np.asarray(image.data_of(image.load_image(mean_path, ndim=3)), dtype=np.float64)
    common = np.logical_and.reduce(masks)
    if not common.any():
        raise InputError(mask_paths[0], "the runs' brain masks have no voxel in common")
    return masks, common, reference[0], mean / len(mask_paths)


def _save_mask_and_mean(common, mean, reference_img, out_mask, out_mean) -> None:
    """A mask and a mean image on a reference's grid (``.dscalar.nii`` for surface data)."""
    if image.is_cifti_image(reference_img):  # surface data: the runs share their grayordinates
        cifti.save_points(reference_img, out_mask)
        cifti.save_points(reference_img, out_mean, mean, name="mean")
    else:
        image.save_image(masking.mask_image(common, reference_img), out_mask)
        image.save_image(masking.mean_image(mean, reference_img), out_mean)


def group_mask(mask_paths, mean_paths, out_mask, out_mean) -> int:
    """The voxels inside every run's mask, and the average of the runs' means.

    Every mask must be on the grid of the first (same shape and affine);
    for surface data (``.dscalar.nii`` points), the runs must have the same
    grayordinates (brain models), which the group mask then holds.
    Returns the number of voxels of the group mask.
    """
    _, common, reference_img, mean = _common_points(mask_paths, mean_paths)
    _save_mask_and_mean(common, mean, reference_img, out_mask, out_mean)
    return int(common.sum())


def _check_reduction(reduction: str, n_components: int) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if reduction == "migp" and (not isinstance(n_components, (int, np.integer))
                                or isinstance(n_components, bool) or n_components < 1):
        raise ValueError(f"MIGP needs a positive number of components, got {n_components!r}")


def reduce_subject(series_paths, mask_paths, infos, group_mask_path, out_series, *,
                   subject: str, reduction: str = "exact", n_components: int = 500) -> dict:
    """One subject's runs in the group mask, concatenated in time, reduced for the group.

    Each run's prepared series (:func:`prepare_series`, in its own mask) is
    restricted to the group mask's voxels and the runs are put one after the
    other in time. With ``reduction="migp"`` the result is projected on its
    ``n_components`` leading principal axes in time
    (:func:`nipype_ward.group.reduce_features`), which changes nothing when
    the subject has at most that many volumes; with ``"exact"`` it is written
    as is. Returns the subject's record for the group sidecars.
    """

    _check_reduction(reduction, n_components)
    if not (len(series_paths) == len(mask_paths) == len(infos)) or not series_paths:
        raise ValueError("give one series, mask and info per run")
    common, group_img = image.load_mask(group_mask_path)
    parts = []
    for path, mask_path, info in zip(series_paths, mask_paths, infos):
        mask, mask_img = image.load_mask(mask_path)
        image.check_same_grid(mask_img, mask_path, group_img, group_mask_path)
        if (common & ~mask).any():
            raise InputError(mask_path, "the group mask has voxels outside this run's mask")
        parts.append(fileio.load_series(path, n_voxels=int(mask.sum()))[common[mask]])
    dtype = np.result_type(*parts)
    X = np.empty((int(common.sum()), sum(part.shape[1] for part in parts)), dtype=dtype)
    offset = 0
    for part in parts:
        X[:, offset:offset + part.shape[1]] = part
        offset += part.shape[1]
    del parts
    if reduction == "migp" and X.shape[1] > n_components:
        X = reduce_features(X, n_components)
    fileio.save_series(X, out_series)
    return {
        "subject": subject,
        "sources": [info["source"] for info in infos],
        "n_volumes": int(offset),
        "n_features": int(X.shape[1]),
        "t_r": sorted({info.get("t_r") for info in infos}, key=str),
        "preparation": infos[0].get("preparation"),
        "dtype": str(X.dtype),
    }


def group_series(reduced_paths, subject_infos, group_mask_path, out_series, *,
                 reduction: str = "exact", n_components: int = 500) -> dict:
    """The group's voxel-feature matrix, from the subjects' reduced series.

    ``"exact"``: the subjects' series one after the other in time (memory
    grows with the group). ``"migp"``: MIGP over the files in the order
    given (:func:`nipype_ward.group.migp`; memory flat in the number of
    subjects): the subjects' reduced series, or the group series of parts
    of the group (MIGP of MIGPs). ``subject_infos`` are the records of
    every subject the result covers. Returns the series info the tree step
    reads, with the reduction and the subjects recorded.
    """

    _check_reduction(reduction, n_components)
    if not reduced_paths or not subject_infos:
        raise ValueError("give the reduced series and the subjects' records")
    if reduction == "exact" and len(reduced_paths) != len(subject_infos):
        raise ValueError("the exact reduction takes one reduced series per subject")
    common, _ = image.load_mask(group_mask_path)
    n_voxels = int(common.sum())

    def blocks():
        # One file mapped at a time: the pages of those done are let go.
        for path in reduced_paths:
            yield fileio.load_series(path, n_voxels=n_voxels)

    if reduction == "migp":
        X = migp(blocks(), n_components)
    else:
        headers = [(block.shape[1], block.dtype) for block in blocks()]
        X = np.empty((n_voxels, sum(n for n, _ in headers)),
                     dtype=np.result_type(*(dtype for _, dtype in headers)))
        offset = 0
        for block in blocks():
            X[:, offset:offset + block.shape[1]] = block
            offset += block.shape[1]
            del block
    fileio.save_series(X, out_series)
    t_rs = sorted({t_r for info in subject_infos for t_r in info["t_r"]}, key=str)
    return {
        "source": "; ".join(source for info in subject_infos for source in info["sources"]),
        "t_r": t_rs[0] if len(t_rs) == 1 else None,
        "preparation": subject_infos[0].get("preparation"),
        "n_voxels": n_voxels,
        "n_volumes": int(X.shape[1]),
        "n_volumes_acquired": int(X.shape[1]),
        "sample_mask": None,
        "dtype": str(X.dtype),
        "reduction": reduction,
        "n_components": int(n_components) if reduction == "migp" else None,
        "n_volumes_total": int(sum(info["n_volumes"] for info in subject_infos)),
        "subjects": [info["subject"] for info in subject_infos],
    }


def _restricted_labels(data, mask, keep):
    """0-based labels of the voxels ``keep`` of ``mask`` (renumbered 0..K-1), and their values.

    ``data`` is the label image's values (:func:`nipype_ward.image.data_of`).
    """
    values = data[mask][keep].astype(np.int64)
    unique, inverse = np.unique(values, return_inverse=True)
    return inverse.astype(np.intp), unique


def compare_parcellations(series_path, mask_path, atlas_path, own_paths, *, series_info=None,
                          n_clusters=()) -> list[dict]:
    """A run's R2 and homogeneity on a group atlas and on its own parcellations.

    Over the voxels of the run that the atlas labels, so both are measured on
    the same voxels: each own parcellation is restricted to them (its parcels
    cut by the atlas' mask keep their voxels inside it). One record per own
    parcellation (``own_paths``, one per K in ``n_clusters``).
    """

    series = load_voxel_series(series_path=series_path, series_info=series_info,
                               mask_path=mask_path)
    atlas_img = image.load_image(atlas_path, ndim=3)
    image.check_same_grid(atlas_img, atlas_path, series.reference_img, mask_path)
    atlas_data = image.data_of(atlas_img)
    keep = atlas_data[series.mask] > 0
    if not keep.any():
        raise InputError(atlas_path, f"no voxel of {mask_path} is labelled in the atlas")
    X = np.asarray(series.X[keep])
    atlas_labels, atlas_values = _restricted_labels(atlas_data, series.mask, keep)
    atlas = {"r2": reconstruction_r2(X, atlas_labels), "homogeneity": homogeneity(X, atlas_labels)}
    records = []
    for k, own_path in zip(n_clusters, own_paths):
        own_img = image.load_image(own_path, ndim=3)
        image.check_same_grid(own_img, own_path, atlas_img, atlas_path)
        own_labels, own_values = _restricted_labels(image.data_of(own_img), series.mask, keep)
        records.append({
            "source": series.source, "n_clusters": int(k), "n_voxels": int(keep.sum()),
            "group_n_parcels": int(len(atlas_values)), "group_r2": atlas["r2"],
            "group_homogeneity": atlas["homogeneity"], "own_n_parcels": int(len(own_values)),
            "own_r2": reconstruction_r2(X, own_labels),
            "own_homogeneity": homogeneity(X, own_labels),
        })
    return records
