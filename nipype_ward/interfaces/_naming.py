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
