"""Output file names in a node's working directory."""

from pathlib import Path

from nipype_ward.fileio import file_extension
from nipype_ward.series import is_surface


def output_path(source, suffix: str, cwd, extension: str | None = None) -> str:
    """``<source base><suffix><extension>`` in ``cwd``.

    Without ``extension`` the source's own is kept. Extensions are BIDS'
    (``.nii.gz``, ``.dlabel.nii``, ``.func.gii``...: see
    :func:`nipype_ward.fileio.file_extension`). A prepared series
    ``<bold>_series.npy`` names its outputs after ``<bold>``.
    """

    name = Path(str(source)).name
    if name.endswith("_series.npy"):
        name = name[: -len("_series.npy")] + ".npy"
    own = file_extension(name)
    base = name[: -len(own)] if own else name
    return str(Path(cwd) / f"{base}{suffix}{own if extension is None else extension}")


#: Extensions of the images a step writes, for volume data and for surface data.
_EXTENSIONS = {
    "points": (".nii.gz", ".dscalar.nii"),
    "labels": (".nii.gz", ".dlabel.nii"),
    "series": (".nii.gz", ".dtseries.nii"),
}


def image_extension(data_path, kind: str) -> str:
    """``.nii.gz`` for volume data; for surface data (CIFTI-2, GIFTI) the CIFTI-2 one of ``kind``.

    ``data_path`` is the BOLD series or a file of its grid (its mask).
    """

    return _EXTENSIONS[kind][int(is_surface(data_path))]
