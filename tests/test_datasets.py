"""Tests of nipype_ward.datasets: simulation, cache, offline ADHD loader.

Most tests use a 6 or 8 mm grid and 30-60 volumes so the file runs in well
under a minute; one test (marked ``slow``) checks the default 3 mm data set.
"""

import os
import socket

import nibabel as nib
import numpy as np
import pytest
import requests
from nilearn.datasets import (
    load_mni152_brain_mask,
    load_mni152_gm_template,
    load_mni152_wm_template,
)
from nilearn.masking import compute_epi_mask
from scipy import ndimage

from nipype_ward import datasets
from nipype_ward.datasets import _cache, _volume

SMALL = dict(resolution=6, n_volumes=60, t_r=2.5, n_regions=100, random_state=3)
TINY = dict(resolution=8, n_volumes=30, n_regions=40)


# --------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_sim():
    return datasets.simulate_rest_fmri(**SMALL)


@pytest.fixture
def no_network(monkeypatch):
    """Make every network attempt raise (and record it).

    Patches the socket layer (any library) and requests' Session.send (what
    nilearn's downloader calls). The error is a ConnectionError, i.e. what a
    real offline machine raises.
    """
    attempts = []

    class NetworkBlocked(ConnectionError):
        pass

    def refuse(*args, **kwargs):
        attempts.append(args[1:2] or args[:1])
        raise NetworkBlocked("network access attempted during an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(requests.Session, "send", refuse)
    return attempts


def _dice(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def _arrays(sim):
    return (
        np.asarray(sim.bold_img.dataobj),
        np.asarray(sim.brain_mask_img.dataobj),
        np.asarray(sim.regions_img.dataobj),
    )


def _check_regions(regions, mask, n_expected):
    labels = np.unique(regions[mask])
    np.testing.assert_array_equal(labels, np.arange(1, n_expected + 1))
    # Tiling: every brain voxel labelled, nothing outside.
    np.testing.assert_array_equal(regions > 0, mask)
    # One 6-connected piece each (ndimage.label's default 3D structure is
    # the 6-neighbourhood).
    for label, box in enumerate(ndimage.find_objects(regions), start=1):
        _, n_pieces = ndimage.label(regions[box] == label)
        assert n_pieces == 1, f"region {label} has {n_pieces} pieces"


# --------------------------------------------------------------------------
# simulate_rest_fmri: structure
# --------------------------------------------------------------------------
def test_shapes_affine_header(small_sim):
    ref = load_mni152_brain_mask(resolution=6)
    bold, mask, regions = _arrays(small_sim)
    assert small_sim.t_r == 2.5
    assert bold.shape == ref.shape + (60,)
    assert mask.shape == regions.shape == ref.shape
    assert bold.dtype == np.float32
    assert mask.dtype == np.uint8 and regions.dtype == np.int32
    # The true mask is nilearn's MNI152 brain mask (one piece at 6 mm).
    np.testing.assert_array_equal(mask, np.asarray(ref.dataobj) > 0)
    for img in small_sim:
        if not isinstance(img, nib.Nifti1Image):
            continue
        np.testing.assert_allclose(img.affine, ref.affine)
        header = img.header
        assert header.get_xyzt_units() == ("mm", "sec")
        assert int(header["qform_code"]) == 4 and int(header["sform_code"]) == 4
        np.testing.assert_allclose(header.get_qform(), ref.affine)
        np.testing.assert_allclose(header.get_sform(), ref.affine)
    assert small_sim.bold_img.header.get_zooms() == (6.0, 6.0, 6.0, 2.5)
    assert small_sim.bold_img.get_data_dtype() == np.float32


def test_default_grid_matches_nilearn_3mm():
    # Only the grid, not the series: cheap check of the documented figures.
    mask, grey, white, affine = _volume._brain_grid(3)
    assert mask.shape == (67, 79, 64)
    assert int(mask.sum()) == 69765
    assert grey.shape == white.shape == mask.shape
    np.testing.assert_allclose(affine, load_mni152_brain_mask(resolution=3).affine)


def test_deterministic_and_seed_dependent():
    first = _arrays(datasets.simulate_rest_fmri(**TINY, random_state=7))
    again = _arrays(datasets.simulate_rest_fmri(**TINY, random_state=7))
    other = _arrays(datasets.simulate_rest_fmri(**TINY, random_state=8))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[2], other[2])
    np.testing.assert_array_equal(first[1], other[1])  # same brain


def test_global_numpy_random_state_untouched():
    np.random.seed(123)
    state = np.random.get_state()
    datasets.simulate_rest_fmri(**TINY, random_state=0)
    after = np.random.get_state()
    assert state[0] == after[0]
    np.testing.assert_array_equal(state[1], after[1])
    assert state[2:] == after[2:]


def test_regions_tile_mask_connected(small_sim):
    _, mask, regions = _arrays(small_sim)
    _check_regions(regions, mask.astype(bool), SMALL["n_regions"])
    sizes = np.bincount(regions[mask > 0])[1:]
    # Compact, comparable regions: no region is a handful of voxels or huge.
    mean_size = mask.sum() / SMALL["n_regions"]
    assert sizes.min() > 0.2 * mean_size
    assert sizes.max() < 3.0 * mean_size


def test_region_count_clipped_to_brain_voxels():
    sim = datasets.simulate_rest_fmri(resolution=10, n_volumes=3, n_regions=10**6)
    _, mask, regions = _arrays(sim)
    n_brain = int(mask.sum())
    assert regions.max() == n_brain
    _check_regions(regions, mask.astype(bool), n_brain)


def test_compact_regions_nonconvex_mask():
    # A thick "C": k-means cells straddle the gap between the arms, so
    # several cells are split and the stray pieces must be re-attached.
    mask = np.zeros((30, 30, 6), dtype=bool)
    mask[3:27, 3:27, 1:5] = True
    mask[9:21, 9:30, 1:5] = False
    assert ndimage.label(mask)[1] == 1
    for seed in range(5):
        regions = _volume._compact_regions(mask, 25, np.random.default_rng(seed))
        _check_regions(regions, mask, 25)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(resolution=0), ValueError),
        (dict(n_volumes=0), ValueError),
        (dict(n_regions=0), ValueError),
        (dict(t_r=0.0), ValueError),
        (dict(t_r="2"), TypeError),
        (dict(n_volumes=2.5), TypeError),
    ],
)
def test_invalid_arguments(kwargs, error):
    with pytest.raises(error):
        datasets.simulate_rest_fmri(**kwargs)


# --------------------------------------------------------------------------
# simulate_rest_fmri: realism, measured
# --------------------------------------------------------------------------
def test_within_region_correlation_exceeds_between(small_sim):
    bold, mask, regions = _arrays(small_sim)
    brain = mask > 0
    series = bold[brain].astype(np.float64)
    series -= series.mean(axis=1, keepdims=True)
    series /= series.std(axis=1, keepdims=True)
    series /= np.sqrt(series.shape[1])  # corr(i, j) = series[i] @ series[j]
    labels = regions[brain]
    # Mean correlation over the pairs of distinct voxels of one region, and over
    # the pairs of voxels of two regions, from sums: the sum of corr over a set
    # of voxels' pairs is the squared norm of their summed series (the
    # voxel-by-voxel matrix, 1.5 GB with its masks, is never made).
    sums = np.stack([series[labels == r].sum(axis=0) for r in np.unique(labels)])
    sizes = np.unique(labels, return_counts=True)[1].astype(np.float64)
    region_pairs = (sums ** 2).sum()
    within = (region_pairs - (series ** 2).sum()) / (sizes * (sizes - 1)).sum()
    between = ((sums.sum(axis=0) ** 2).sum() - region_pairs) / (sizes.sum() ** 2
                                                                 - (sizes ** 2).sum())
    # Measured ~0.30 vs ~0.06: clearly apart, and not absurdly clean either.
    assert within > 0.2
    assert between < 0.12
    assert within - between > 0.15
    assert within < 0.8


def test_intensities_epi_like(small_sim):
    bold, mask, _ = _arrays(small_sim)
    brain = mask > 0
    mean = bold.mean(axis=-1)
    brain_mean = mean[brain]
    # Bright brain (~450-1000), dark Rician background (a few % of it).
    assert 400 < np.percentile(brain_mean, 1) and np.percentile(brain_mean, 99) < 1100
    background = mean[~ndimage.binary_dilation(brain, iterations=2)]
    assert background.mean() < 0.05 * brain_mean.mean()
    assert background.min() > 0  # magnitude noise, not zeros
    assert bold.min() >= 0
    # Grey matter brighter than white matter (measured ratio ~1.10 at 6 mm,
    # partial volume and the coil field shrink the nominal 950/750).
    grey = np.asarray(load_mni152_gm_template(resolution=6).get_fdata()) > 0.7
    white = np.asarray(load_mni152_wm_template(resolution=6).get_fdata()) > 0.7
    assert mean[grey & brain].mean() > 1.05 * mean[white & brain].mean()


def test_bold_like_fluctuations(small_sim):
    bold, mask, _ = _arrays(small_sim)
    brain_series = bold[mask > 0].astype(np.float64)
    percent = brain_series.std(axis=1) / brain_series.mean(axis=1)
    assert 0.01 < np.median(percent) < 0.03
    # The brain-average signal (global + regions, noise averaged out) has
    # most of its power in the slow band.
    average = brain_series.mean(axis=0)
    power = np.abs(np.fft.rfft(average - average.mean())) ** 2
    freqs = np.fft.rfftfreq(average.size, d=small_sim.t_r)
    assert power[freqs < 0.1].sum() > 0.7 * power.sum()


def test_epi_mask_dice_small(small_sim):
    epi = compute_epi_mask(small_sim.bold_img).get_fdata() > 0
    assert _dice(epi, np.asarray(small_sim.brain_mask_img.dataobj)) >= 0.9


@pytest.mark.slow
def test_default_size_cached_files_and_epi_mask(embedded_data):
    """Default 3 mm / 176 volumes: files, header, and nilearn EPI-mask Dice."""
    bunch = datasets.load_simulated_rest(data_dir=embedded_data["data_dir"])
    bold_img = nib.load(bunch.func)
    assert bold_img.shape == (67, 79, 64, 176)
    assert bold_img.get_data_dtype() == np.float32
    assert bold_img.header.get_zooms() == (3.0, 3.0, 3.0, 2.0)
    assert bold_img.header.get_xyzt_units() == ("mm", "sec")
    assert int(bold_img.header["sform_code"]) == 4
    assert bunch.t_r == 2.0
    mask = np.asarray(nib.load(bunch.mask).dataobj) > 0
    regions = np.asarray(nib.load(bunch.regions).dataobj)
    assert mask.sum() == 69765
    assert regions.max() == 300
    np.testing.assert_array_equal(regions > 0, mask)
    epi = compute_epi_mask(bold_img).get_fdata() > 0
    assert _dice(epi, mask) >= 0.9


# --------------------------------------------------------------------------
# get_data_dir / load_simulated_rest: cache
# --------------------------------------------------------------------------
def test_get_data_dir_precedence(tmp_path, monkeypatch):
    explicit = tmp_path / "explicit" / "nested"
    assert datasets.get_data_dir(explicit) == explicit and explicit.is_dir()

    monkeypatch.setenv("NIPYPE_WARD_DATA", str(tmp_path / "from_env"))
    assert datasets.get_data_dir() == tmp_path / "from_env"
    assert (tmp_path / "from_env").is_dir()
    assert datasets.get_data_dir(explicit) == explicit  # argument wins

    monkeypatch.delenv("NIPYPE_WARD_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.get_data_dir() == tmp_path / "home" / "nipype_ward_data"
    assert (tmp_path / "home" / "nipype_ward_data").is_dir()


@pytest.fixture
def count_simulations(monkeypatch):
    calls = []
    real = datasets.simulate_rest_volumes

    def counting(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    # Where load_simulated_rest looks the simulation up.
    monkeypatch.setattr(_cache, "simulate_rest_volumes", counting)
    return calls


def test_load_simulated_rest_caches(tmp_path, count_simulations):
    first = datasets.load_simulated_rest(**TINY, data_dir=tmp_path)
    assert len(count_simulations) == 1
    folder = tmp_path / "simulated_rest"
    assert os.path.dirname(first.func).startswith(str(folder))
    for key in ("func", "mask", "regions"):
        assert os.path.isfile(first[key]) and first[key].endswith(".nii.gz")
    mtimes = {k: os.stat(first[k]).st_mtime_ns for k in ("func", "mask", "regions")}

    second = datasets.load_simulated_rest(**TINY, data_dir=tmp_path)
    assert len(count_simulations) == 1  # not regenerated
    assert {k: second[k] for k in mtimes} == {k: first[k] for k in mtimes}
    assert {k: os.stat(second[k]).st_mtime_ns for k in mtimes} == mtimes
    assert second.t_r == 2.0 and "Simulated" in second.description

    # Files hold exactly what the simulation returns.
    # The series, written a volume at a time, is the image nibabel writes of
    # the simulation held whole: same values, grid, codes and timing.
    sim = datasets.simulate_rest_fmri(**TINY, random_state=0)
    written = nib.load(first.func)
    np.testing.assert_array_equal(np.asarray(written.dataobj), np.asarray(sim.bold_img.dataobj))
    assert written.get_data_dtype() == np.float32
    np.testing.assert_array_equal(written.affine, sim.bold_img.affine)
    assert written.header.get_zooms() == sim.bold_img.header.get_zooms()
    assert written.header.get_xyzt_units() == ("mm", "sec")
    for form in ("qform", "sform"):
        assert int(written.header[f"{form}_code"]) == int(sim.bold_img.header[f"{form}_code"]) == 4
    np.testing.assert_array_equal(
        np.asarray(nib.load(first.regions).dataobj), np.asarray(sim.regions_img.dataobj)
    )
    # No temporary files left behind.
    leftovers = [p for p in folder.rglob("*") if p.is_file() and ".tmp" in p.name]
    assert leftovers == []


def test_cache_name_encodes_every_parameter(tmp_path, count_simulations):
    base = datasets.load_simulated_rest(**TINY, data_dir=tmp_path)
    variants = [
        dict(TINY, resolution=10),
        dict(TINY, n_volumes=31),
        dict(TINY, n_regions=41),
        dict(TINY, t_r=2.5),
        dict(TINY, random_state=1),
    ]
    folders = {os.path.dirname(base.func)}
    for kwargs in variants:
        bunch = datasets.load_simulated_rest(**kwargs, data_dir=tmp_path)
        folders.add(os.path.dirname(bunch.func))
    assert len(folders) == 1 + len(variants)
    assert len(count_simulations) == 1 + len(variants)


def test_env_var_honoured(tmp_path, monkeypatch, count_simulations):
    monkeypatch.setenv("NIPYPE_WARD_DATA", str(tmp_path / "env_root"))
    bunch = datasets.load_simulated_rest(**TINY)
    assert bunch.func.startswith(str(tmp_path / "env_root" / "simulated_rest"))
    datasets.load_simulated_rest(**TINY)
    assert len(count_simulations) == 1


def test_incomplete_cache_regenerated(tmp_path, count_simulations):
    bunch = datasets.load_simulated_rest(**TINY, data_dir=tmp_path)
    os.remove(bunch.func)
    again = datasets.load_simulated_rest(**TINY, data_dir=tmp_path)
    assert len(count_simulations) == 2
    assert again.func == bunch.func and os.path.isfile(again.func)


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    real = datasets.simulate_rest_volumes

    def interrupted(**kwargs):
        # The series is being written a volume at a time: stop it after three.
        run = real(**kwargs)

        def volumes():
            for t, volume in enumerate(run.volumes):
                if t == 3:
                    raise KeyboardInterrupt
                yield volume

        return run._replace(volumes=volumes())

    monkeypatch.setattr(_cache, "simulate_rest_volumes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        datasets.load_simulated_rest(**TINY, data_dir=tmp_path)
    files = [p for p in (tmp_path / "simulated_rest").rglob("*") if p.is_file()]
    assert all(not p.name.startswith("bold") for p in files)
    assert all(".tmp" not in p.name for p in files)

    monkeypatch.setattr(_cache, "simulate_rest_volumes", real)
    bunch = datasets.load_simulated_rest(**TINY, data_dir=tmp_path)
    assert nib.load(bunch.func).shape[-1] == TINY["n_volumes"]


def test_load_rejects_uncacheable_seed(tmp_path):
    with pytest.raises(TypeError):
        datasets.load_simulated_rest(**TINY, random_state=None, data_dir=tmp_path)
    with pytest.raises(ValueError):
        datasets.load_simulated_rest(**TINY, random_state=-1, data_dir=tmp_path)


# --------------------------------------------------------------------------
# ADHD loader, offline
# --------------------------------------------------------------------------
from conftest import ADHD_IDS  # noqa: E402
from conftest import write_fake_adhd as _fake_adhd  # noqa: E402


def test_nilearn_adhd_ids_match_fixture():
    from nilearn.datasets.func import adhd_ids

    assert tuple(adhd_ids()[:2]) == ADHD_IDS


def test_fetch_adhd_subject_offline(tmp_path, no_network):
    paths = _fake_adhd(tmp_path, ADHD_IDS)
    for index, subject in enumerate(ADHD_IDS):
        bunch = datasets.fetch_adhd_subject(data_dir=tmp_path, subject_index=index)
        assert bunch.func == paths[subject][0]
        assert bunch.confounds == paths[subject][1]
        assert bunch.t_r == 2.0
        assert isinstance(bunch.description, str)
        assert nib.load(bunch.func).shape == (4, 4, 4, 5)
    assert no_network == []


def test_fetch_adhd_subject_missing_files_raise_oserror(tmp_path, no_network):
    _fake_adhd(tmp_path)  # subject 0 only
    with pytest.raises(OSError, match="ADHD subject 1"):
        datasets.fetch_adhd_subject(data_dir=tmp_path, subject_index=1)
    assert no_network, "nilearn should have tried (and failed) to download"


def test_fetch_adhd_subject_bad_index(tmp_path):
    with pytest.raises(ValueError):
        datasets.fetch_adhd_subject(data_dir=tmp_path, subject_index=40)
    with pytest.raises(ValueError):
        datasets.fetch_adhd_subject(data_dir=tmp_path, subject_index=-1)


# --------------------------------------------------------------------------
# load_bold_dataset
# --------------------------------------------------------------------------
def test_load_bold_dataset_dispatch(tmp_path, no_network, count_simulations):
    simulated = datasets.load_bold_dataset(data_dir=tmp_path / "sim", **TINY)
    direct = datasets.load_simulated_rest(data_dir=tmp_path / "sim", **TINY)
    assert simulated == direct
    assert len(count_simulations) == 1

    paths = _fake_adhd(tmp_path / "nl")
    adhd = datasets.load_bold_dataset("adhd", data_dir=tmp_path / "nl", subject_index=0)
    assert adhd.func == paths[ADHD_IDS[0]][0]
    assert no_network == []


def test_load_bold_dataset_unknown_name():
    with pytest.raises(ValueError, match="'simulated'.*'adhd'"):
        datasets.load_bold_dataset("abide")


def test_the_example_fmriprep_dataset_is_read_as_fmriprep_outputs(tmp_path):
    """``write_fmriprep_example``: pybids' query finds its runs with their mask and confounds,
    nilearn's fMRIPrep loader reads the confounds by their fMRIPrep names, and the App runs
    on it (the dataset the docs draw the App's graphs from)."""
    from conftest import run_app
    from nilearn.interfaces.fmriprep import load_confounds_strategy

    from nipype_ward.bids import Selection, collect_runs
    from nipype_ward.datasets import write_fmriprep_example

    bids_dir = write_fmriprep_example(tmp_path / "fmriprep", subjects=("01", "02"),
                                      n_volumes=40)
    runs = collect_runs(bids_dir, Selection())
    assert [run.entities["subject"] for run in runs] == ["01", "02"]
    assert all(run.mask.is_file() and run.confounds.is_file() for run in runs)
    confounds, sample_mask = load_confounds_strategy(str(runs[0].bold), denoise_strategy="simple")
    assert {"trans_x", "rot_z_derivative1", "csf", "white_matter", "cosine00"} \
        <= set(confounds.columns) and sample_mask is None and len(confounds) == 40
    proc = run_app(bids_dir, tmp_path / "out", "participant", "--n-clusters", 15,
                   "--no-split-half", "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (labels,) = (tmp_path / "out" / "sub-02" / "func").glob("*_scale-15_dseg.nii.gz")
    assert np.unique(np.asanyarray(nib.load(labels).dataobj)).tolist() == list(range(16))
