"""Preparing a run: read its series once, mask it, prepare its signals, write them.

The BOLD series is read once, by :func:`prepare_series`, into a *prepared
series* (:func:`nipype_ward.io.arrays.save_series`) that the tree, its halves
and every compression read, with its mask and mean written by its
:class:`~nipype_ward.io.geometry.Geometry`. The tree and compression steps also
take a BOLD series directly (``bold_path``), for standalone use; both ways go
through :func:`load_voxel_series`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple

import nibabel as nb
import numpy as np

from nipype_ward.core.carpet import CarpetSample, carpet_after, carpet_before
from nipype_ward.core.signals import (
    CONFOUND_STRATEGIES,
    check_preparation,
    filters_requested,
    prepare_signals,
)
from nipype_ward.core.validation import check_real
from nipype_ward.io import arrays, masking, tables
from nipype_ward.io.errors import InputError
from nipype_ward.io.geometry import (
    Geometry,
    VolumeGeometry,
    geometry_of,
    load_geometry,
    values_of,
)
from nipype_ward.io.nifti import read_mean, usable_cpus
from nipype_ward.io.series import read_repetition_time, read_series, sources_of


@dataclass(frozen=True)
class SignalPreparation:
    """How voxel signals are prepared before clustering and compression.

    The defaults prepare nothing (the seed example). See
    :func:`nipype_ward.core.signals.prepare_signals` for the meaning of each
    option; ``t_r`` is read from the BOLD file when not given, and
    ``confounds_file`` is a TSV whose ``confounds_columns`` (all when empty)
    are regressed out. ``confounds_strategy`` instead selects the confounds
    of an fMRIPrep BOLD file by one of nilearn's preset strategies
    (:data:`~nipype_ward.core.signals.CONFOUND_STRATEGIES`; ``scrubbing`` also
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
            check_real(value, name, what=f"number{unit}")

    @property
    def cleaning(self) -> dict:
        """The options of :func:`nipype_ward.core.signals.prepare_signals` this preparation sets."""
        return {"standardize": self.standardize, "detrend": self.detrend,
                "high_pass": self.high_pass, "low_pass": self.low_pass}

    def as_options(self) -> dict:
        """The options set (not None, not empty), by name: the traits an interface takes."""
        return {item.name: list(value) if isinstance(value, tuple) else value
                for item in fields(self)
                if (value := getattr(self, item.name)) is not None and value != ()}

    @classmethod
    def from_options(cls, options: dict) -> SignalPreparation:
        """The preparation of :meth:`as_options`' dict (unknown keys and None left out)."""
        names = {item.name for item in fields(cls)}
        return cls(**{name: tuple(value) if name == "confounds_columns" else value
                      for name, value in options.items() if name in names and value is not None})

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
    confound_names: tuple[str, ...] = ()  #: the columns of ``confounds``


def resolve_preparation(
    preparation: SignalPreparation, series, bold_img, n_volumes: int
) -> ResolvedPreparation:
    """The TR, confounds and kept volumes a preparation needs for one BOLD series, checked.

    ``series`` is one file or a GIFTI pair (left first). Cheap (headers and
    the confounds TSV only), so callers can run it before any heavy work.
    Errors name the file at fault.
    """
    sources = sources_of(series)
    bold_path = sources[0]
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
    names = []
    if preparation.confounds_file:
        confounds = tables.load_confounds(
            preparation.confounds_file, n_volumes, preparation.confounds_columns
        )
        names = list(preparation.confounds_columns) \
            or tables.table_header(preparation.confounds_file)
    elif preparation.confounds_strategy:
        confounds, sample_mask, names = tables.load_fmriprep_confounds(
            bold_path if len(sources) == 1 else list(sources),
            preparation.confounds_strategy, n_volumes,
            fd_threshold=preparation.fd_threshold,
            dvars_threshold=preparation.dvars_threshold,
        )
    return ResolvedPreparation(t_r, confounds, sample_mask, tuple(names))


class VoxelSeries(NamedTuple):
    """A masked, prepared series with what its consumers need to write images."""

    X: np.ndarray  #: (n_points, n_volumes), float32 or float64
    geometry: Geometry  #: where its points are (its mask, in X's order) and their grid
    t_r: float | None
    source: str  #: the BOLD file it was read from
    preparation: dict  #: the :class:`SignalPreparation` applied, as a dict
    n_volumes_acquired: int  #: volumes of the BOLD, before any censoring
    sample_mask: list | None  #: the kept volumes when some were censored
    n_constant: int = 0  #: voxels of the given mask left out for a constant series
    confounds: tuple[str, ...] = ()  #: the confounds regressed out, by name
    carpet: CarpetSample | None = None  #: rows before and after preparation, when asked

    @property
    def mask(self) -> np.ndarray:
        return self.geometry.mask


def _epi_mask(mean_img, options: masking.EPIMaskOptions, bold_path) -> np.ndarray:
    """nilearn's mask of a mean image by ``options.strategy``, refused where it is no brain mask.

    The EPI mask (``"epi"``) is refused on an image without a dark
    background (a slab, a cropped field of view: see
    :func:`nipype_ward.io.masking.background_fraction`), when it collapses on an
    image whose background is zero already (skull-stripped: see
    :data:`nipype_ward.io.masking.ZERO_BACKGROUND_FRACTION`), and when it is
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


def read_prepared(
    bold_path,
    *,
    mask_path=None,
    epi_options: masking.EPIMaskOptions | None = None,
    preparation: SignalPreparation | None = None,
    spill_dir=None,
    carpet: bool = False,
    threads: int | None = None,
):
    """Read a BOLD series once and prepare it: the one heavy read of a run.

    ``bold_path`` is one file, or a GIFTI pair (the left hemisphere first).
    A volume's mask is ``mask_path`` when given (checked against the BOLD
    grid), otherwise nilearn's mask of the temporal mean by ``epi_options``
    (EPI or background strategy; refused where it cannot be a brain mask,
    see :func:`_epi_mask`); surface data's points are its grayordinates.
    Points whose series is constant are left out of a volume's mask, kept
    on surfaces (:meth:`~nipype_ward.io.geometry.VolumeGeometry.drop_constant`).
    The preparation's TR, confounds and cutoffs are checked from the header
    before any data are read. With ``carpet``, the series' ``carpet`` is
    the sample of its rows before and after preparation and their DVARS
    (:func:`nipype_ward.core.carpet.carpet_sample`), its part before
    taken before the series is prepared in place (not copied for it).
    ``threads`` CPUs may decompress a large ``.nii.gz`` (every usable one
    when None; see :func:`nipype_ward.io.nifti.open_image`) and z-score it.

    Returns
    -------
    series : VoxelSeries (its geometry's reference is the BOLD's header)
    mean_img : the temporal mean (nilearn's ``mean_img`` values), on the points' grid
    """
    preparation = preparation or SignalPreparation()
    epi_options = epi_options or masking.EPIMaskOptions()
    threads = usable_cpus() if threads is None else threads
    source = sources_of(bold_path)[0]
    resolved = {}

    def check_header(img, n_volumes):
        resolved["preparation"] = resolve_preparation(preparation, bold_path, img, n_volumes)

    data = read_series(
        bold_path, mask_path=mask_path,
        compute_mask=lambda mean: _epi_mask(mean, epi_options, source),
        before_reading=check_header, spill_dir=spill_dir, threads=threads,
    )
    X, geometry, n_constant = data.geometry.drop_constant(data.X, source)
    n_volumes, found = X.shape[1], resolved["preparation"]
    first = carpet_before(X) if carpet else None
    if preparation.requested:
        try:
            X = prepare_signals(X, **preparation.cleaning, t_r=found.t_r,
                                confounds=found.confounds, sample_mask=found.sample_mask,
                                copy=False, threads=threads)
        except ValueError as exc:  # e.g. scrubbing kept too few volumes
            raise InputError(source, str(exc)) from exc
    kept = None
    if found.sample_mask is not None and len(found.sample_mask) < n_volumes:
        kept = [int(i) for i in found.sample_mask]
    sample = None
    if carpet:
        sample = carpet_after(first, X, kept=kept, same=not preparation.requested)
    return VoxelSeries(
        X, geometry, found.t_r, str(source), asdict(preparation), n_volumes, kept, n_constant,
        found.confound_names, sample,
    ), data.mean_img


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
    out_carpet=None,
    threads: int | None = None,
) -> VoxelSeries:
    """Write the masked, prepared series of a BOLD series, its mask and its mean.

    ``bold_path`` is one file, or a GIFTI pair (the left hemisphere first).
    See :func:`read_prepared`; the series is written as ``.npy``
    (:func:`nipype_ward.io.arrays.save_series`), the mask and the mean by its
    geometry (uint8 and float32 NIfTI for a volume, CIFTI-2 maps of the
    grayordinates for surface data). :func:`series_info` of the result says
    the rest; its series is the file written, memory-mapped. With ``out_carpet``, the carpet sample is written there too
    (:func:`nipype_ward.io.arrays.save_carpet`).
    """
    series, mean_img = read_prepared(
        bold_path, mask_path=brain_mask_path, epi_options=epi_options,
        preparation=preparation, spill_dir=spill_dir, carpet=out_carpet is not None,
        threads=threads,
    )
    if out_carpet is not None:
        arrays.save_carpet(series.carpet, out_carpet)
    points = geometry_of(series.mask, mean_img)
    points.save_mask(out_mask)
    points.save_mean(values_of(mean_img), out_mean)
    # Written as it is freed; the series returned is the file, memory-mapped.
    arrays.save_series(series.X, out_series, consume=True)
    return series._replace(X=arrays.load_series(out_series))


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
        "confounds": list(series.confounds),
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
    geometry = load_geometry(mask_path)
    X = arrays.load_series(series_path, n_voxels=geometry.n_points)
    info = series_info or {}
    return VoxelSeries(X, geometry, info.get("t_r"), info.get("source", str(series_path)),
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
    mean, bold_img = read_mean(bold_path)
    mean_img = nb.Nifti1Image(mean, bold_img.affine, bold_img.header)
    if brain_mask_path is not None:
        mask = load_geometry(brain_mask_path, reference=bold_img, reference_path=bold_path).mask
    else:
        mask = _epi_mask(mean_img, options or masking.EPIMaskOptions(), bold_path)
    points = VolumeGeometry(mask, mean_img)
    return points.save_mask(out_mask), points.save_mean(mean, out_mean)
