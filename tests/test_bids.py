"""The BIDS layer and the App's parser, on names and arguments (no data)."""

import json

import pytest

from nipype_ward import bids
from nipype_ward.cli.parser import parse_plugin_args, parse_settings

SOURCE = ("/data/fmriprep/sub-01/ses-1/func/"
          "sub-01_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym_res-2_desc-preproc_bold.nii.gz")


def test_derivative_names_keep_the_source_entities_in_bids_order():
    assert bids.derivative_path(SOURCE, {"segmentation": "ward", "scale": 100,
                                         "suffix": "dseg"}, ".nii.gz") == (
        "sub-01/ses-1/func/sub-01_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym"
        "_seg-ward_scale-100_res-2_dseg.nii.gz")
    assert bids.derivative_path(SOURCE, {"desc": "ward100", "suffix": "bold"}, ".json") == (
        "sub-01/ses-1/func/sub-01_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym"
        "_res-2_desc-ward100_bold.json")


def test_several_sources_share_their_common_entities():
    other = SOURCE.replace("run-1", "run-2")
    assert bids.derivative_path([SOURCE, other], {"segmentation": "ward", "suffix": "tree"},
                                ".npz") == (
        "sub-01/ses-1/func/sub-01_ses-1_task-rest_space-MNI152NLin2009cAsym_seg-ward_res-2"
        "_tree.npz")


def test_an_entity_our_patterns_cannot_place_is_an_error():
    with pytest.raises(ValueError, match=r"unknown BIDS entities \['custom'\]"):
        bids.derivative_path(SOURCE, {"custom": "x", "suffix": "dseg"}, ".nii.gz")
    with pytest.raises(ValueError, match="no path pattern|loses the entities"):
        bids.derivative_path(SOURCE, {"segmentation": "ward", "suffix": "dseg"}, ".gii")


@pytest.mark.parametrize(("value", "label"), [("sub-01", "01"), ("01", "01"), ("A1b", "A1b")])
def test_labels_with_or_without_prefix(value, label):
    assert bids.check_label(value, "subject") == label


@pytest.mark.parametrize("value", ["../01", "sub-0/1", "01 02", "", "sub-"])
def test_labels_that_are_not_bids_labels_are_refused(value):
    with pytest.raises(ValueError, match="not a BIDS label"):
        bids.check_label(value, "subject")


def test_spaces_and_resolutions():
    assert bids.parse_space("MNI152NLin2009cAsym") == ("MNI152NLin2009cAsym", None, None)
    assert bids.parse_space("MNI152NLin6Asym:res-2") == ("MNI152NLin6Asym", "2", None)
    assert bids.parse_space("fsLR:den-91k") == ("fsLR", None, "91k")
    for bad in ("MNI152NLin6Asym:cohort-2", "fsLR:den-91k:den-32k", "fsLR:den-9_1"):
        with pytest.raises(ValueError, match="res-<label> and den-<label>"):
            bids.parse_space(bad)


def test_plugin_args_as_json_or_pairs():
    assert parse_plugin_args('{"sbatch_args": "--mem=4G", "max_jobs": 8}') == {
        "sbatch_args": "--mem=4G", "max_jobs": 8}
    assert parse_plugin_args("n_procs=4,memory_gb=12.5,mp_context=fork") == {
        "n_procs": 4, "memory_gb": 12.5, "mp_context": "fork"}
    with pytest.raises(ValueError, match="not key=value"):
        parse_plugin_args("n_procs")


def test_settings_from_arguments(tmp_path, capsys):
    filters = tmp_path / "f.json"
    filters.write_text(json.dumps({"bold": {"echo": None, "acquisition": "mb4"}}))
    settings = parse_settings([
        str(tmp_path / "in"), str(tmp_path / "out"), "participant",
        "--participant-label", "sub-01", "02", "--session-label", "ses-1", "--task", "rest",
        "--space", "MNI152NLin2009cAsym:res-2", "--bids-filter-file", str(filters),
        "--confounds-strategy", "scrubbing", "--fd-thresh", "0.3", "--standardize", "none",
        "--nprocs", "3", "--mem-gb", "8", "--plugin-args", "maxtasksperchild=1",
    ])
    selection = settings.selection
    assert selection.participant_labels == ("01", "02")
    assert (selection.session_labels, selection.tasks) == (("1",), ("rest",))
    assert (selection.space, selection.resolution) == ("MNI152NLin2009cAsym", "2")
    assert selection.bold_filters == {"echo": None, "acquisition": "mb4"}
    preparation = settings.parcellation.preparation
    assert (preparation.confounds_strategy, preparation.fd_threshold) == ("scrubbing", 0.3)
    assert preparation.standardize is False
    assert settings.plugin == "MultiProc"
    assert settings.plugin_args == {"n_procs": 3, "memory_gb": 8.0, "maxtasksperchild": 1}
    assert settings.memory_limit_gb == 8.0  # no node's memory is estimated above it
    assert settings.node_threads() == 2  # fMRIPrep's omp_nthreads: nprocs - 1
    given = parse_settings([str(tmp_path / "in"), str(tmp_path / "out"), "participant",
                            "--omp-nthreads", "4", "--nprocs", "3"])
    assert given.node_threads() == 4
    with pytest.raises(SystemExit):
        parse_settings([str(tmp_path / "in"), str(tmp_path / "out"), "participant",
                        "--omp-nthreads", "0"])
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        "error: --omp-nthreads must be at least 1, got 0")
    assert settings.parcellation.n_clusters == (1000, 2000)
    assert settings.work_dir.is_absolute()
