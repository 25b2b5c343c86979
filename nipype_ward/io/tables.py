"""Tables: the parcel time series and BIDS tables written, confounds read.

TSV files as BIDS writes them (``n/a`` for missing values), and the confounds
of a run: a user's table, or fMRIPrep's by one of nilearn's strategies
(:func:`load_fmriprep_confounds`).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from nipype_ward.io.errors import InputError
from nipype_ward.io.files import save_atomically
from nipype_ward.io.formats import file_extension


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------
def save_timeseries(means, path, *, column_names=None) -> Path:
    """Write parcel signals (n_parcels, n_volumes) as a TSV, one column per parcel.

    A NaN (a parcel without data) is written ``n/a``, as BIDS tables want.
    """
    means = np.asarray(means)
    names = column_names if column_names is not None else [str(i + 1) for i in range(len(means))]

    def write(tmp):
        if np.isnan(means).any():
            with open(tmp, "w") as fobj:
                fobj.write("\t".join(names) + "\n")
                for row in means.T:
                    fobj.write("\t".join("n/a" if np.isnan(v) else f"{v:.8g}" for v in row)
                               + "\n")
            return
        np.savetxt(tmp, means.T, delimiter="\t", header="\t".join(names), comments="", fmt="%.8g")

    return save_atomically(write, path)


def save_table(columns: dict, path) -> Path:
    """Write named columns of equal length as a TSV (BIDS tables: ``n/a`` for missing).

    The bytes of pandas' ``DataFrame(columns).to_csv(sep="\\t", index=False,
    na_rep="n/a", float_format="%.6g")``, written with the csv module:
    pandas takes half a second to import, and the tables are written by the
    scheduler itself (cheap nodes are never cluster jobs).
    """
    import csv
    import io

    cells = {name: _cells(values) for name, values in columns.items()}
    lengths = {len(column) for column in cells.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths: {sorted(lengths)}")
    text = io.StringIO()
    writer = csv.writer(text, delimiter="\t", lineterminator="\n")
    writer.writerow(list(cells))
    writer.writerows(zip(*cells.values()))
    return save_atomically(lambda tmp: Path(tmp).write_text(text.getvalue()), path)


def _cells(values) -> list[str]:
    """A column's cells as pandas writes them: floats ``%.6g``, missing ``n/a``."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"a column is one-dimensional, got shape {values.shape}")
    if values.dtype.kind == "f":
        return ["n/a" if v != v else "%.6g" % v for v in values.tolist()]
    if values.dtype.kind in "iub":
        return [str(v) for v in values.tolist()]
    return ["n/a" if v is None or (isinstance(v, float) and v != v) else str(v)
            for v in values.tolist()]


def load_table_column(path, name: str) -> np.ndarray:
    """One column of a TSV this package wrote (:func:`save_table`), as floats (``n/a``: NaN)."""
    import csv

    with open(path, newline="") as stream:
        rows = list(csv.reader(stream, delimiter="\t"))
    if not rows or name not in rows[0]:
        raise InputError(path, f"the table has no column {name!r}")
    column = rows[0].index(name)
    return np.array([np.nan if row[column] == "n/a" else float(row[column]) for row in rows[1:]])


def table_header(path) -> list[str]:
    """The column names of a TSV (its first line), read without the rest."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.readline().rstrip("\r\n").split("\t")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot be read ({exc})") from exc


def load_confounds(path, n_volumes: int, columns=None) -> np.ndarray:
    """Read confound regressors from a TSV (e.g. fMRIPrep's ``desc-confounds_timeseries``).

    Parameters
    ----------
    path : str or Path
        The TSV file, one row per volume, a header of column names.
    n_volumes : int
        The number of volumes of the BOLD series.
    columns : sequence of str, optional
        Names of the columns to use; all columns when None or empty.

    Returns
    -------
    confounds : ndarray of shape (n_volumes, n_columns), float64
        ``n/a`` cells (fMRIPrep's first row of derivatives and of
        framewise displacement) are replaced by the column's mean, which is
        neutral once nilearn standardizes the confounds.
    """
    import csv
    import io

    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    try:
        text = path.read_text(encoding="utf-8")
        # pandas takes a row of one field more than the header as an index
        # column (shifting every column) and fills a short row with NaN:
        # both are truncated or malformed tables.
        reader = csv.reader(io.StringIO(text), delimiter="\t")
        width = None
        for row in reader:
            if not row:
                continue  # a blank line, skipped by pandas too
            if width is None:
                width = len(row)
            elif len(row) != width:
                raise InputError(path, f"line {reader.line_num} has {len(row)} fields but the "
                                 f"header has {width}: a truncated or malformed table")
        table = pd.read_csv(io.StringIO(text), sep="\t", na_values=["n/a"])
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"not a readable TSV file ({exc})") from exc
    if columns:
        missing = [name for name in columns if name not in table.columns]
        if missing:
            raise InputError(
                path, f"no column named {', '.join(map(repr, missing))} in the confounds"
            )
        table = table[list(columns)]
    if table.shape[1] == 0:
        raise InputError(path, "no confound column")
    if len(table) != n_volumes:
        raise InputError(
            path, f"has {len(table)} rows but the BOLD series has {n_volumes} volumes"
        )
    try:
        values = table.to_numpy(dtype=np.float64)
    except ValueError as exc:
        raise InputError(path, f"confound columns must be numbers ({exc})") from exc
    empty = np.isnan(values).all(axis=0)
    if empty.any():
        names = [str(c) for c, e in zip(table.columns, empty) if e]
        raise InputError(path, f"column {', '.join(names)} has no value")
    infinite = np.isinf(values).any(axis=0)
    if infinite.any():
        names = [str(c) for c, e in zip(table.columns, infinite) if e]
        raise InputError(path, f"column {', '.join(names)} has infinite values: "
                         "write n/a for a missing value")
    fill = np.nanmean(values, axis=0)
    return np.where(np.isnan(values), fill, values)


def fmriprep_confounds_file(bold_path) -> Path:
    """fMRIPrep's confounds table of a BOLD file, named as fMRIPrep names it (it may not exist).

    Beside the BOLD: its name up to the space entity (without the
    hemisphere of a GIFTI series), then ``_desc-confounds_timeseries.tsv``.
    """
    bold_path = Path(bold_path)
    stem = bold_path.name[: -len(file_extension(bold_path.name))]
    run = re.sub(r"_hemi-[LR](?=_)", "", stem).split("_space-")[0]
    return bold_path.with_name(f"{run}_desc-confounds_timeseries.tsv")


def _nilearn_image_name(path: Path) -> str:
    """The name nilearn's confounds loader accepts for a BOLD file.

    nilearn 0.14 checks an image's name by its last two dot-separated parts
    (``nii.gz``, ``dtseries.nii``, ``func.gii``: ``_check_images`` in
    ``nilearn/interfaces/fmriprep/load_confounds_utils.py``) and refuses an
    uncompressed ``.nii`` ("Unsupported input."). It then only parses the
    BIDS entities of the name to find the confounds table beside it
    (``_get_file_name``), and never opens the image: the same name with
    ``.gz`` finds the same table, whether or not that file exists.
    """
    name = str(path)
    return name + ".gz" if file_extension(name) == ".nii" else name


def load_fmriprep_confounds(bold_path, strategy: str, n_volumes: int, *, fd_threshold=None,
                            dvars_threshold=None):
    """Confounds of an fMRIPrep BOLD file by one of nilearn's preset strategies.

    :func:`nilearn.interfaces.fmriprep.load_confounds_strategy` finds the
    run's ``desc-confounds_timeseries.tsv`` (and its JSON, for CompCor) beside
    the BOLD file and selects the columns of ``strategy``; ``scrubbing`` also
    returns the volumes kept once those of high motion (framewise
    displacement above ``fd_threshold`` mm, standardized DVARS above
    ``dvars_threshold``; nilearn's 0.5 and 1.5 when None) are censored.
    ``bold_path`` may be a GIFTI pair (left, right), as nilearn takes it.
    nilearn's warnings are silenced: what they warn of is an error here (a
    selected column without any value) or for the callers (no volume kept).

    Returns
    -------
    confounds : ndarray of shape (n_volumes, n_confounds), float64
    sample_mask : ndarray of int or None
        Indices of the kept volumes; None when all are kept.
    names : list of str
        The confounds' column names, in the order of ``confounds``.
    """
    from nilearn.interfaces.fmriprep import load_confounds_strategy

    options = {key: value for key, value in (("fd_threshold", fd_threshold),
                                             ("std_dvars_threshold", dvars_threshold))
               if value is not None}
    paths = [Path(path) for path in bold_path] if isinstance(bold_path, (list, tuple)) \
        else [Path(bold_path)]
    names = [_nilearn_image_name(path) for path in paths]
    try:
        with warnings.catch_warnings():
            # "All volumes were marked as motion outliers", and scikit-learn's
            # "Mean of empty slice" for a column of n/a: said below in one line.
            warnings.simplefilter("ignore")
            table, sample_mask = load_confounds_strategy(
                names if len(names) > 1 else names[0], denoise_strategy=strategy, **options
            )
    except Exception as exc:  # nilearn raises ValueError, FileNotFoundError, ...
        raise InputError(
            paths[0], f"its fMRIPrep confounds cannot give the '{strategy}' strategy ({exc})",
        ) from exc
    if table is None or table.shape[1] == 0:
        raise InputError(paths[0], f"the '{strategy}' strategy selected no confound")
    values = table.to_numpy(dtype=np.float64)
    if values.shape[0] != n_volumes:
        raise InputError(
            paths[0],
            f"its confounds have {values.shape[0]} rows but the series has {n_volumes} volumes",
        )
    # nilearn demeans over the kept volumes: with none kept, every column is NaN.
    if sample_mask is None or len(sample_mask):
        empty = np.isnan(values).all(axis=0)
        if empty.any():
            table_path = fmriprep_confounds_file(paths[0])
            names = sorted(str(column) for column, none in zip(table.columns, empty) if none)
            it = "them" if len(names) > 1 else "it"
            raise InputError(
                table_path if table_path.is_file() else paths[0],
                f"column{'s' * (len(names) > 1)} {', '.join(names)} "
                f"{'have' if len(names) > 1 else 'has'} no value, but the '{strategy}' strategy "
                f"regresses {it} out: re-run fMRIPrep, or choose a strategy without {it}",
            )
    return (values, None if sample_mask is None else np.asarray(sample_mask),
            [str(column) for column in table.columns])


#: The columns of fMRIPrep's confounds table a carpet plot draws above its carpet.
MOTION_TRACES = ("framewise_displacement", "std_dvars")


def load_motion_traces(path, n_volumes: int) -> dict[str, np.ndarray]:
    """fMRIPrep's framewise displacement and standardized DVARS of a run, those it has.

    Returns ``{column: values}`` for the columns of :data:`MOTION_TRACES`
    that the table holds, one float per volume, ``n/a`` (the first row of
    both) as NaN. A table of another length than the series is an error
    naming it.
    """
    import pandas as pd

    path = Path(path)
    header = table_header(path)
    present = [name for name in MOTION_TRACES if name in header]
    try:
        table = pd.read_csv(path, sep="\t", usecols=present, na_values=["n/a"])
    except Exception as exc:
        raise InputError(path, f"not a readable TSV file ({exc})") from exc
    if len(table) != n_volumes:
        raise InputError(path, f"has {len(table)} rows but the BOLD series has {n_volumes} "
                         "volumes")
    try:
        return {name: table[name].to_numpy(dtype=np.float64) for name in present}
    except ValueError as exc:
        raise InputError(path, f"a motion column is not numeric ({exc})") from exc


def load_parcel_series(path, values) -> np.ndarray:
    """The parcel series of a time-series TSV (:func:`save_timeseries`), in the order of ``values``.

    ``values`` are the parcels' labels, which name the columns. Returns
    (n_parcels, n_volumes) floats (``n/a``: NaN); a label without its column
    is an error naming the table.
    """
    import pandas as pd

    path = Path(path)
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a"], dtype=np.float64)
    except Exception as exc:
        raise InputError(path, f"not a readable table of parcel series ({exc})") from exc
    names = [str(int(value)) for value in values]
    missing = [name for name in names if name not in table.columns]
    if missing:
        raise InputError(path, f"no column for the parcel(s) {', '.join(missing[:5])} of the "
                         "labels: was it written from another parcellation?")
    return table[names].to_numpy().T
