"""Which runs :func:`nipype_ward.bids.collect_runs` finds, on fMRIPrep datasets of empty files.

The datasets are the test skeleton (``tests/data/fmriprep_derivatives.yml``)
with each run's surface series beside it (a GIFTI pair, a CIFTI-2 series):
the query reads names and JSON sidecars only, never the images, so no file
needs content. Each test pins a behaviour of the selection (fMRIPrep's
filter file included) or of the files found with each run, error messages
included.
"""

import json
from pathlib import Path

import pytest
from conftest import FMRIPREP_SKELETON, RUNS, SPACE

from nipype_ward import bids
from nipype_ward.io.errors import InputError

#: The surface series fMRIPrep writes beside a run's volume BOLD.
SURFACE_SUFFIXES = ("hemi-L_space-fsaverage5_bold.func.gii",
                    "hemi-R_space-fsaverage5_bold.func.gii",
                    "space-fsLR_den-91k_bold.dtseries.nii")


def _skeleton(root) -> Path:
    from niworkflows.utils.testing import generate_bids_skeleton

    generate_bids_skeleton(str(root), str(FMRIPREP_SKELETON))
    for run in RUNS:
        for suffix in SURFACE_SUFFIXES:
            path = Path(root) / f"{run}_{suffix}"
            path.touch()
            path.with_name(path.name.split(".")[0] + ".json").write_text(
                json.dumps({"RepetitionTime": 2.0, "TaskName": "rest"}))
    return Path(root)


@pytest.fixture
def dataset(tmp_path):
    return _skeleton(tmp_path / "fmriprep")


def _names(runs):
    return [run.name for run in runs]


def test_volume_runs_come_with_their_mask_confounds_entities_and_metadata(dataset):
    runs = bids.collect_runs(dataset, bids.Selection())
    assert _names(runs) == [Path(run).name for run in RUNS]
    for run, prefix in zip(runs, RUNS):
        assert run.bold == dataset / f"{prefix}_{SPACE}_desc-preproc_bold.nii.gz"
        assert run.mask == dataset / f"{prefix}_{SPACE}_desc-brain_mask.nii.gz"
        assert run.confounds == dataset / f"{prefix}_desc-confounds_timeseries.tsv"
        assert run.right is None and not run.is_surface and run.sources == [run.bold]
        assert run.metadata == {"RepetitionTime": 2.0, "TaskName": "rest", "SkullStripped": False}
    assert runs[0].entities == {
        "subject": "01", "session": "1", "task": "rest", "run": 1,
        "space": "MNI152NLin2009cAsym", "suffix": "bold", "extension": ".nii.gz",
        "desc": "preproc", "datatype": "func"}
    assert "session" not in runs[2].entities and "run" not in runs[2].entities
    assert bids.confounds_tables(runs) == [str(run.confounds) for run in runs]


def test_a_gifti_pair_is_one_run_found_by_its_left_half(dataset):
    runs = bids.collect_runs(dataset, bids.Selection(space="fsaverage5"))
    assert _names(runs) == [Path(run).name for run in RUNS]
    for run, prefix in zip(runs, RUNS):
        assert run.bold == dataset / f"{prefix}_{SURFACE_SUFFIXES[0]}"
        assert run.right == dataset / f"{prefix}_{SURFACE_SUFFIXES[1]}"
        assert run.mask is None and run.is_surface and run.sources == [run.bold, run.right]
        assert run.confounds == dataset / f"{prefix}_desc-confounds_timeseries.tsv"
        assert "hemi" not in run.entities and run.entities["extension"] == ".func.gii"
        assert run.metadata["RepetitionTime"] == 2.0


def test_a_cifti_series_is_selected_by_space_and_density(dataset):
    for density in (None, "91k"):
        runs = bids.collect_runs(dataset, bids.Selection(space="fsLR", density=density))
        assert [run.bold.name for run in runs] == [
            f"{Path(run).name}_{SURFACE_SUFFIXES[2]}" for run in RUNS]
        assert all(run.is_surface and run.right is None and run.confounds for run in runs)
        assert runs[2].entities["den"] == "91k"
    with pytest.raises(InputError, match="at den-32k for sub-01, sub-02 matches"):
        bids.collect_runs(dataset, bids.Selection(space="fsLR", density="32k"))


@pytest.mark.parametrize(("selection", "expected"), [
    ({"participant_labels": ("02",)}, [2]),
    ({"session_labels": ("1",)}, [0, 1]),
    ({"tasks": ("rest",)}, [0, 1, 2]),
    ({"bold_filters": {"session": None}}, [2]),  # null: the entity is absent
    ({"bold_filters": {"session": "*"}}, [0, 1]),  # "*": present, any value
    ({"bold_filters": {"run": 2}}, [1]),
    ({"bold_filters": {"run": "2"}}, [1]),
    ({"bold_filters": {"run": [1, 2]}}, [0, 1]),  # a list: any of
    ({"bold_filters": {"run": [1, None]}}, [0, 2]),  # any of, absence included
    ({"bold_filters": {"subject": "01", "run": 1}}, [0]),
    ({"bold_filters": {"acquisition": None, "echo": None}}, [0, 1, 2]),
    ({"bold_filters": {"space": "T1w"}}, [0, 1, 2]),  # the filter file has the last word
])
def test_the_selection_and_fmripreps_filter_semantics(dataset, selection, expected):
    runs = bids.collect_runs(dataset, bids.Selection(**selection))
    assert _names(runs) == [Path(RUNS[i]).name for i in expected]
    if selection.get("bold_filters", {}).get("space") == "T1w":
        assert all("_space-T1w_" in run.bold.name for run in runs)


def test_a_filter_file_written_for_fmriprep_selects_as_there(dataset):
    # fMRIPrep's filter files set datatype and suffix too: pybids' datatype is
    # the file's folder (func), not an entity of the name.
    filters = {"datatype": "func", "suffix": "bold", "session": ["1", None], "run": [2, None]}
    runs = bids.collect_runs(dataset, bids.Selection(bold_filters=filters))
    assert _names(runs) == [Path(RUNS[i]).name for i in (1, 2)]
    with pytest.raises(InputError, match="no preprocessed BOLD"):
        bids.collect_runs(dataset, bids.Selection(bold_filters={"datatype": "anat"}))


def test_a_filter_that_selects_nothing_says_what_the_dataset_has(dataset):
    with pytest.raises(InputError) as error:
        bids.collect_runs(dataset, bids.Selection(bold_filters={"run": 3}))
    assert str(error.value) == (
        f"{dataset}: no preprocessed BOLD in space MNI152NLin2009cAsym for sub-01, sub-02 "
        "matches the selection (spaces found: MNI152NLin2009cAsym, T1w, fsLR, fsaverage5)")
    with pytest.raises(InputError, match="in space MNI152NLin6Asym at res-2 for sub-02 matches"):
        bids.collect_runs(dataset, bids.Selection(participant_labels=("02",),
                                                  space="MNI152NLin6Asym", resolution="2"))


def test_subjects_asked_for_must_be_in_the_dataset(dataset, tmp_path):
    with pytest.raises(InputError) as error:
        bids.collect_runs(dataset, bids.Selection(participant_labels=("02", "03", "04")))
    assert str(error.value) == (f"{dataset}: no participant sub-03, sub-04 in this dataset "
                                "(it has sub-01, sub-02)")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "dataset_description.json").write_text(
        json.dumps({"Name": "x", "BIDSVersion": "1.9.0", "DatasetType": "derivative"}))
    with pytest.raises(InputError, match=r"empty: no subject \(sub-\*\) in this dataset$"):
        bids.collect_runs(empty, bids.Selection())
    (empty / "dataset_description.json").unlink()
    with pytest.raises(InputError, match="not a BIDS dataset: no dataset_description.json"):
        bids.collect_runs(empty, bids.Selection())
    with pytest.raises(InputError, match="nope: no such directory"):
        bids.collect_runs(tmp_path / "nope", bids.Selection())


def test_each_missing_file_of_a_run_is_an_error_naming_its_bold(dataset):
    run = dataset / RUNS[2]
    bold = Path(f"{run}_{SPACE}_desc-preproc_bold.nii.gz")
    Path(f"{run}_{SPACE}_desc-brain_mask.nii.gz").unlink()
    with pytest.raises(InputError) as error:
        bids.collect_runs(dataset, bids.Selection())
    assert str(error.value) == (
        f"{bold}: no desc-brain_mask beside it (fMRIPrep writes one per run)")
    right = Path(f"{run}_{SURFACE_SUFFIXES[1]}")
    right.unlink()
    with pytest.raises(InputError) as error:
        bids.collect_runs(dataset, bids.Selection(space="fsaverage5"))
    assert str(error.value) == (
        f"{run}_{SURFACE_SUFFIXES[0]}: no right hemisphere beside it ({right.name})")
    Path(f"{run}_desc-confounds_timeseries.tsv").unlink()
    cifti = Path(f"{run}_{SURFACE_SUFFIXES[2]}")
    with pytest.raises(InputError) as error:
        bids.collect_runs(dataset, bids.Selection(space="fsLR"))
    assert str(error.value) == (
        f"{cifti}: no desc-confounds_timeseries.tsv for this run, which the confounds strategy "
        "reads: give fMRIPrep's confounds, or use --confounds-strategy none for a series "
        "denoised already")
    runs = bids.collect_runs(dataset, bids.Selection(space="fsLR"), require_confounds=False)
    assert [run.confounds is None for run in runs] == [False, False, True]


def test_a_gifti_series_without_hemisphere_is_refused(dataset):
    run = dataset / RUNS[2]
    left = Path(f"{run}_{SURFACE_SUFFIXES[0]}")
    left.rename(left.with_name(left.name.replace("hemi-L_", "")))
    with pytest.raises(InputError) as error:
        bids.collect_runs(dataset, bids.Selection(space="fsaverage5",
                                                  participant_labels=("02",)))
    assert str(error.value) == (
        f"{run}_space-fsaverage5_bold.func.gii: a GIFTI series needs its hemi-L or hemi-R "
        "entity, as fMRIPrep names them")


def test_a_mask_is_found_whatever_its_compression(dataset):
    run = dataset / RUNS[2]
    for bold_ext, mask_ext in ((".nii", ".nii.gz"), (".nii", ".nii"), (".nii.gz", ".nii")):
        for ext in (".nii", ".nii.gz"):
            for kind in ("desc-preproc_bold", "desc-brain_mask"):
                Path(f"{run}_{SPACE}_{kind}{ext}").unlink(missing_ok=True)
        Path(f"{run}_{SPACE}_desc-preproc_bold{bold_ext}").touch()
        Path(f"{run}_{SPACE}_desc-brain_mask{mask_ext}").touch()
        (run_,) = bids.collect_runs(dataset, bids.Selection(participant_labels=("02",)))
        assert (run_.bold.name.endswith(bold_ext), run_.mask.name) == (
            True, f"{Path(run).name}_{SPACE}_desc-brain_mask{mask_ext}")
    Path(f"{run}_{SPACE}_desc-brain_mask.nii.gz").touch()  # both: the BOLD's own first
    (run_,) = bids.collect_runs(dataset, bids.Selection(participant_labels=("02",)))
    assert run_.mask.name.endswith("_desc-brain_mask.nii.gz")


def test_the_same_run_in_two_formats_is_refused(dataset):
    run = dataset / RUNS[2]
    Path(f"{run}_{SPACE}_desc-preproc_bold.nii").touch()
    with pytest.raises(InputError, match="the same run as .*_bold.nii in another format: "
                                         "select one with --bids-filter-file"):
        bids.collect_runs(dataset, bids.Selection())
    runs = bids.collect_runs(dataset, bids.Selection(bold_filters={"extension": ".nii.gz"}))
    assert all(run.bold.name.endswith(".nii.gz") for run in runs)


def test_folders_above_the_dataset_give_no_entities(tmp_path):
    # pybids parses whole paths: under /study_res-3mm_task-x_run-9/ every file
    # would have res-3mm, task-x and run-9. Entities come from the names.
    dataset = _skeleton(tmp_path / "study_res-3mm_task-x_run-9" / "func" / "fmriprep")
    runs = bids.collect_runs(dataset, bids.Selection(tasks=("rest",)))
    assert _names(runs) == [Path(run).name for run in RUNS]
    assert [run.entities.get("run") for run in runs] == [1, 2, None]
    assert not [run for run in runs if "res" in run.entities or run.entities["task"] != "rest"]
    runs = bids.collect_runs(dataset, bids.Selection(bold_filters={"run": 1, "res": None}))
    assert _names(runs) == [Path(RUNS[0]).name]
    runs = bids.collect_runs(dataset, bids.Selection(space="fsaverage5", tasks=("rest",)))
    assert [run.confounds.name for run in runs] == [
        f"{Path(run).name}_desc-confounds_timeseries.tsv" for run in RUNS]
