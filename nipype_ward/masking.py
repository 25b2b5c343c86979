"""Brain masks of EPI series (images in, images out)."""

from __future__ import annotations

import nibabel as nb
import numpy as np
from nilearn import image as nimage
from nilearn import masking as nmasking

from nipype_ward.image import unmask


def compute_epi_mask(
    bold_img,
    *,
    lower_cutoff: float = 0.2,
    upper_cutoff: float = 0.85,
    connected: bool = True,
    opening: int = 2,
    exclude_zeros: bool = False,
) -> nb.Nifti1Image:
    """Brain mask of an EPI series, as a uint8 image on the EPI grid.

    A thin wrapper of :func:`nilearn.masking.compute_epi_mask` (same options,
    same mask); only the data type of the result is fixed to uint8.
    """
    if not 0.0 <= lower_cutoff < upper_cutoff <= 1.0:
        raise ValueError(
            "cutoffs must satisfy 0 <= lower_cutoff < upper_cutoff <= 1, "
            f"got {lower_cutoff} and {upper_cutoff}"
        )
    mask_img = nmasking.compute_epi_mask(
        bold_img,
        lower_cutoff=lower_cutoff,
        upper_cutoff=upper_cutoff,
        connected=connected,
        opening=opening,
        exclude_zeros=exclude_zeros,
    )
    return mask_image(np.asanyarray(mask_img.dataobj) != 0, bold_img)


def mask_image(mask, reference_img) -> nb.Nifti1Image:
    """A boolean mask as a uint8 image on the grid (affine, zooms) of ``reference_img``."""
    mask = np.asarray(mask, dtype=bool)
    return unmask(np.ones(int(mask.sum()), dtype=np.uint8), mask, reference_img, dtype=np.uint8)


def mean_image(bold_img) -> nb.Nifti1Image:
    """Temporal mean of a 3D or 4D series, float32, keeping the affine."""
    mean = nimage.mean_img(bold_img, copy_header=True)
    return nb.Nifti1Image(mean.get_fdata(dtype=np.float32), mean.affine, mean.header)
