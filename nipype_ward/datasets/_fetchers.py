"""Real data through nilearn's fetchers, and the loader of a data set by name.

Only :func:`fetch_adhd_subject` touches the network, and only when its files
are not on disk yet.
"""

from __future__ import annotations

from pathlib import Path

from nipype_ward.core.validation import check_int
from nipype_ward.datasets._bunch import Bunch
from nipype_ward.datasets._cache import load_simulated_rest

# nilearn's ADHD-200 resting-state subset: 40 subjects, TR of 2 s.
_ADHD_N_SUBJECTS = 40
_ADHD_T_R = 2.0


def fetch_adhd_subject(*, data_dir=None, subject_index: int = 0) -> Bunch:
    """One resting-state run of nilearn's ADHD-200 subset (downloads if needed).

    Thin wrapper of ``nilearn.datasets.fetch_adhd``. nilearn looks for, under
    ``<data_dir>/adhd/``:

    - ``ADHD200_40subs_motion_parameters_and_phenotypics.csv`` (always, with
      an integer ``Subject`` column);
    - for each of the *first* ``subject_index + 1`` subjects of its fixed list
      of 40 ids, ``data/<id>/<id>_rest_tshift_RPI_voreg_mni.nii.gz`` and
      ``data/<id>/<id>_regressors.csv``;

    and downloads (from NITRC) only what is missing. So subject ``k`` needs
    the ``k`` earlier subjects too, exactly like ``fetch_adhd(n_subjects=k+1)``.

    Parameters
    ----------
    data_dir : str or os.PathLike or None, default=None
        Passed to nilearn: the dataset is in ``<data_dir>/adhd``. None uses
        nilearn's own locations (``NILEARN_SHARED_DATA``, ``NILEARN_DATA``,
        ``~/nilearn_data``), so an existing nilearn download is reused.
    subject_index : int, default=0
        Index in nilearn's list of subjects, 0 to 39.

    Returns
    -------
    Bunch
        ``func`` (str, path of the 4D image, MNI space), ``confounds`` (str
        path of the CSV of nuisance regressors, or None), ``t_r`` (2.0) and
        ``description`` (str).

    Raises
    ------
    OSError
        If a file is missing and cannot be downloaded (e.g. offline).
    """
    subject_index = check_int(subject_index, "subject_index", low=0,
                              high=_ADHD_N_SUBJECTS - 1)
    import requests
    from nilearn.datasets import fetch_adhd

    try:
        data = fetch_adhd(
            n_subjects=int(subject_index) + 1, data_dir=data_dir, verbose=0
        )
    except (OSError, requests.RequestException) as exc:
        raise OSError(
            f"Could not get ADHD subject {subject_index} from nilearn "
            f"(data_dir={data_dir!r}): {exc}. Offline, put the files where "
            "nilearn expects them (see fetch_adhd_subject's docstring) or use "
            "load_bold_dataset('simulated')."
        ) from exc

    func = str(data.func[subject_index])
    confounds = None
    if data.get("confounds") is not None and len(data.confounds) > subject_index:
        candidate = data.confounds[subject_index]
        if candidate is not None and Path(candidate).is_file():
            confounds = str(candidate)
    description = str(data.get("description") or "") or (
        "ADHD-200 resting-state subset distributed by nilearn."
    )
    return Bunch(
        func=func,
        confounds=confounds,
        t_r=float(data.get("t_r", _ADHD_T_R)),
        description=description,
    )


_LOADERS = {
    "simulated": load_simulated_rest,
    "adhd": fetch_adhd_subject,
}


def load_bold_dataset(name: str = "simulated", *, data_dir=None, **kwargs) -> Bunch:
    """Load a BOLD data set by name.

    Parameters
    ----------
    name : {"simulated", "adhd"}, default="simulated"
        ``"simulated"``: :func:`load_simulated_rest` (offline, default);
        ``"adhd"``: :func:`fetch_adhd_subject` (downloads if needed).
    data_dir : str or os.PathLike or None, default=None
        Passed to the loader.
    **kwargs
        Other keyword arguments of the loader.

    Returns
    -------
    Bunch
        With at least ``func`` (path), ``t_r`` and ``description``.

    Raises
    ------
    ValueError
        If ``name`` is not one of the choices.
    """
    try:
        loader = _LOADERS[name]
    except (KeyError, TypeError):
        choices = ", ".join(repr(k) for k in _LOADERS)
        raise ValueError(
            f"Unknown BOLD data set {name!r}; choose one of {choices}."
        ) from None
    return loader(data_dir=data_dir, **kwargs)
