"""Brain masks of EPI series (images in, arrays or images out)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import nibabel as nb
import numpy as np

from nipype_ward.core.validation import check_int
from nipype_ward.io.nifti_write import unmask

#: How a brain mask is computed from an EPI series, as nilearn's maskers'
#: ``mask_strategy``: "epi" (:func:`nilearn.masking.compute_epi_mask`) or
#: "background" (:func:`nilearn.masking.compute_background_mask`).
MASK_STRATEGIES = ("epi", "background")


@dataclass(frozen=True)
class EPIMaskOptions:
    """How the brain mask of an EPI series is computed, checked once.

    ``strategy`` is nilearn's maskers' ``mask_strategy``. ``"epi"``:
    :func:`nilearn.masking.compute_epi_mask` with the other options: the
    histogram of the mean EPI between the ``lower_cutoff`` and
    ``upper_cutoff`` fractions is searched for its largest gap, the mask
    thresholded there, opened ``opening`` times, and (``connected``) reduced
    to its largest connected component. ``"background"``:
    :func:`nilearn.masking.compute_background_mask` with nilearn's defaults
    (the voxels whose mean differs from the value of the image's border),
    for a series whose background is zero already, such as a skull-stripped
    one, on which the EPI mask can collapse (:data:`ZERO_BACKGROUND_FRACTION`).
    """

    lower_cutoff: float = 0.2
    upper_cutoff: float = 0.85
    connected: bool = True
    opening: int = 2
    exclude_zeros: bool = False
    strategy: str = "epi"

    def __post_init__(self):
        if self.strategy not in MASK_STRATEGIES:
            raise ValueError(f"strategy must be one of {MASK_STRATEGIES}, got {self.strategy!r}")
        if not 0.0 <= self.lower_cutoff < self.upper_cutoff <= 1.0:
            raise ValueError(
                "cutoffs must satisfy 0 <= lower_cutoff < upper_cutoff <= 1, "
                f"got {self.lower_cutoff} and {self.upper_cutoff}"
            )
        check_int(self.opening, "opening", low=0)


#: The least share of an EPI's voxels that must be background (darker than a
#: fifth of its bright voxels) for an EPI mask to make sense. A whole-brain
#: EPI's field of view is half background or more; a slab or a tightly
#: cropped acquisition has next to none, and nilearn's histogram threshold
#: then cuts through the brain (13 of 1,800 voxels kept on a real slab).
MIN_BACKGROUND_FRACTION = 0.05


#: An EPI mean whose background is zero already (skull-stripped): at least
#: this share of its voxels exactly 0. On a real skull-stripped resting-state
#: run (neuropycon-data's 64 x 32 x 32 ``sub-test_task-rs_bold.nii``), 81.4%;
#: on the embedded simulation masked by its brain, 80%; an unstripped EPI has
#: a noisy background and next to no exact zero (the simulation: none).
ZERO_BACKGROUND_FRACTION = 0.5

#: On such an image, an EPI mask that keeps less than this share of the
#: non-zero voxels has collapsed: nilearn's opening erodes the brain away.
#: On the real run above, 10,152 voxels pass its threshold, 272 survive the
#: opening and its largest piece keeps 53 of the 12,197 non-zero ones (0.4%),
#: where on skull-stripped data it should keep nearly all of them (98% on
#: the masked simulation); a tenth leaves a wide margin on both sides.
MIN_KEPT_OF_NON_ZERO = 0.1


def background_fraction(mean) -> float:
    """The share of an EPI mean image's voxels darker than a fifth of its bright ones.

    "Bright" is the 98th percentile of the finite values; non-finite voxels
    count as background. Returns 1.0 for an image with no bright voxel.
    """
    mean = np.asarray(mean, dtype=np.float64)
    finite = np.isfinite(mean)
    if not finite.any():
        return 1.0
    bright = np.percentile(mean[finite], 98)
    if bright <= 0:
        return 1.0
    dark = ~finite
    dark[finite] = mean[finite] < 0.2 * bright
    return float(dark.mean())


def zero_fraction(mean) -> float:
    """The share of an EPI mean image's voxels that are exactly 0 (a zeroed background)."""
    return float(np.mean(np.asarray(mean) == 0))


def compute_epi_mask(img, options: EPIMaskOptions = EPIMaskOptions()) -> np.ndarray:
    """Brain mask of an EPI series or of its temporal mean, as a bool array.

    :func:`nilearn.masking.compute_epi_mask` itself (same options, same
    mask; ``options.strategy`` is not looked at). Given the mean image (as
    :func:`nipype_ward.io.nifti.read_series` computes it, with nilearn's
    values), nilearn does not read the series again: its mean of a 3D image
    is that image.
    """
    import warnings

    from nilearn import masking as nmasking

    epi_options = {key: value for key, value in asdict(options).items() if key != "strategy"}
    with warnings.catch_warnings():
        # "Computed an empty mask": our callers say so in their own words.
        warnings.filterwarnings("ignore", message="Computed an empty mask")
        mask_img = nmasking.compute_epi_mask(img, **epi_options)
    return np.asanyarray(mask_img.dataobj) != 0


def compute_background_mask(img) -> np.ndarray:
    """Brain mask of an EPI series or of its temporal mean whose background is uniform.

    :func:`nilearn.masking.compute_background_mask` itself, with nilearn's
    defaults (the ``"background"`` strategy of its maskers): the voxels
    whose mean differs from the median of the image's border (2 voxels).
    """
    import warnings

    from nilearn import masking as nmasking

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Computed an empty mask")
        mask_img = nmasking.compute_background_mask(img)
    return np.asanyarray(mask_img.dataobj) != 0


def mask_image(mask, reference_img) -> nb.Nifti1Image:
    """A boolean mask as a uint8 image on the grid (affine, zooms) of ``reference_img``."""
    mask = np.asarray(mask, dtype=bool)
    return unmask(np.ones(int(mask.sum()), dtype=np.uint8), mask, reference_img, dtype=np.uint8)


def mean_image(mean, reference_img) -> nb.Nifti1Image:
    """A temporal mean (nx, ny, nz) as a float32 image on the grid of ``reference_img``."""
    mask = np.ones(np.shape(mean), dtype=bool)
    return unmask(np.asarray(mean).ravel(), mask, reference_img, dtype=np.float32)
