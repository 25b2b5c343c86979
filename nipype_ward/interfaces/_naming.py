"""Output file names in a node's working directory."""

from nipype.utils.filemanip import fname_presuffix


def output_path(source, suffix: str, cwd, extension: str | None = None) -> str:
    """``<source base><suffix><extension>`` in ``cwd``.

    Without ``extension`` the source's own (``.nii.gz`` included) is kept. A
    prepared series ``<bold>_series.npy`` names its outputs after ``<bold>``.
    """
    source = str(source)
    if source.endswith("_series.npy"):
        source = source[: -len("_series.npy")] + ".npy"
    if extension is None:
        return fname_presuffix(source, suffix=suffix, newpath=cwd)
    return fname_presuffix(source, suffix=suffix + extension, newpath=cwd, use_ext=False)


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
    from nipype_ward.steps import is_surface

    return _EXTENSIONS[kind][int(is_surface(data_path))]
