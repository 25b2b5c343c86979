"""Output file names in a node's working directory."""

from pathlib import Path

from nipype_ward.io.formats import file_extension


def output_path(source, suffix: str, cwd, extension: str | None = None) -> str:
    """``<source base><suffix><extension>`` in ``cwd``.

    Without ``extension`` the source's own is kept. Extensions are BIDS'
    (:func:`nipype_ward.io.formats.file_extension`). A prepared series
    ``<bold>_series.npy`` names its outputs after ``<bold>``.
    """

    name = Path(str(source)).name
    if name.endswith("_series.npy"):
        name = name[: -len("_series.npy")] + ".npy"
    own = file_extension(name)
    base = name[: -len(own)] if own else name
    return str(Path(cwd) / f"{base}{suffix}{own if extension is None else extension}")
