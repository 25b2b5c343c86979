"""The file formats by name: which extensions each has, and which a step's outputs take.

The one table of extensions (BIDS counts ``.nii.gz``, ``.dtseries.nii`` or
``.func.gii`` as one extension). Volume data are NIfTI; surface data are
CIFTI-2 grayordinates (one file for both hemispheres and the subcortical
structures) or GIFTI (one file a hemisphere). Whatever the input, the
points, labels and series a run writes for surface data are CIFTI-2, and
a GIFTI input gets its results back one hemisphere a file
(:func:`nipype_ward.io.geometry.split_hemispheres`).

This module imports nothing of the package: every other one may ask it.
"""

from __future__ import annotations

from pathlib import Path

#: A volume series (NIfTI).
VOLUME_SERIES = (".nii.gz", ".nii")
#: A surface series: CIFTI-2 dense series, or a GIFTI hemisphere.
SURFACE_SERIES = (".dtseries.nii", ".func.gii")
#: Surface series stored one hemisphere a file, read as left-right pairs.
HEMISPHERE_SERIES = (".func.gii",)
#: CIFTI-2 files: dense series, maps (points, means), labels, parcel series.
CIFTI = (".dtseries.nii", ".dscalar.nii", ".dlabel.nii", ".ptseries.nii")
#: GIFTI files: series, labels, shapes and meshes of one hemisphere.
GIFTI = (".func.gii", ".label.gii", ".shape.gii", ".surf.gii")
#: The files of a BIDS-Atlas atlas: a volume or CIFTI-2 label image, a GIFTI
#: label file per hemisphere, the table and the sidecar.
ATLAS = (".nii.gz", ".dlabel.nii", ".label.gii", ".tsv", ".json")
#: The parcel series of surface data as a CIFTI-2 file (XCP-D's).
PARCEL_SERIES = ".ptseries.nii"

#: The extension of each kind of image a step writes: (volume, surface).
#: ``parcel_series``: volume data have none (their parcel series is a table).
OUTPUTS = {
    "points": (".nii.gz", ".dscalar.nii"),
    "labels": (".nii.gz", ".dlabel.nii"),
    "series": (".nii.gz", ".dtseries.nii"),
    "parcel_series": (None, PARCEL_SERIES),
}

#: A hemisphere's file for each kind of CIFTI-2 file split in two.
HEMISPHERE_OUTPUTS = {".dlabel.nii": ".label.gii", ".dtseries.nii": ".func.gii"}

_LONG = (".nii.gz", *CIFTI, *GIFTI)


def file_extension(name) -> str:
    """A file's BIDS extension: ``.nii.gz``, ``.dlabel.nii``, ``.func.gii``..., else its last suffix."""
    name = Path(name).name
    for extension in _LONG:
        if name.endswith(extension):
            return extension
    return Path(name).suffix


def is_cifti(path) -> bool:
    """Whether a file name is a CIFTI-2 one (by its double extension)."""
    return str(path).endswith(CIFTI)


def is_gifti(path) -> bool:
    """Whether a file name is a GIFTI one."""
    return str(path).endswith(".gii")


def is_surface(path) -> bool:
    """Whether a file holds surface data: CIFTI-2 grayordinates or a GIFTI file."""
    return is_cifti(path) or is_gifti(path)


def output_extension(data_path, kind: str) -> str | None:
    """The extension of a ``kind`` of image (:data:`OUTPUTS`) for the data of ``data_path``.

    ``.nii.gz`` for volume data; for surface data (CIFTI-2, GIFTI) the
    CIFTI-2 one. ``data_path`` is the BOLD series or a file of its points
    (its mask, labels).
    """
    return OUTPUTS[kind][int(is_surface(data_path))]


def hemisphere_extension(path) -> str:
    """The GIFTI extension a CIFTI-2 labels or series file takes once split by hemisphere."""
    extension = file_extension(path)
    if extension not in HEMISPHERE_OUTPUTS:
        raise ValueError(f"only labels and series are split by hemisphere, not {extension}")
    return HEMISPHERE_OUTPUTS[extension]
