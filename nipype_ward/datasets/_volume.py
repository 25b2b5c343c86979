"""The volume simulation: a rest-fMRI run on nilearn's MNI152 grid, with its ground truth.

Everything it needs ships with nilearn (the MNI152 templates), so it never
touches the network.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from nipype_ward.core.validation import check_int, check_real
from nipype_ward.datasets._model import (
    GLOBAL_PCT,
    REGION_PCT,
    SMOOTH_PCT,
    WHITE_PCT,
    band_limited_noise,
)

#: Bump whenever the simulation changes its output for given parameters, so
#: that files cached by an older version are not silently reused.
SIMULATION_VERSION = 1

#: NIfTI code of the MNI152 space for qform/sform ("mni" in nibabel).
_MNI_XFORM_CODE = 4

# Thermal noise of the magnitude image, in percent of the mean brain baseline
# (brain tSNR ~ 40-50). It is also what makes the background Rician.
_THERMAL_PCT = 2.0

# Width (voxels) of the spatial gaussian of the smooth noise.
_SMOOTH_NOISE_SIGMA = 1.0
# Width (voxels) of the partial-volume blur of the baseline at the brain edge.
_PARTIAL_VOLUME_SIGMA = 0.5
# Lloyd iterations of the k-means that builds the regions; compactness
# barely improves beyond ~10 and each costs a KD-tree query.
_KMEANS_ITERATIONS = 10


class SimulatedRest(NamedTuple):
    """Output of :func:`simulate_rest_fmri`.

    Attributes
    ----------
    bold_img : nibabel.Nifti1Image
        4D float32 EPI-like series; TR in the 4th zoom, units mm/s,
        qform/sform set to the MNI affine with code 4 (MNI).
    brain_mask_img : nibabel.Nifti1Image
        3D uint8 true brain mask (1 inside).
    regions_img : nibabel.Nifti1Image
        3D int32 ground-truth regions, labels ``1..n_regions``, 0 outside
        the brain. Each region is one 6-connected piece and the regions
        tile the brain mask exactly.
    t_r : float
        Repetition time in seconds.
    """

    bold_img: nib.Nifti1Image
    brain_mask_img: nib.Nifti1Image
    regions_img: nib.Nifti1Image
    t_r: float


# --------------------------------------------------------------------------
# Simulation building blocks (arrays only)
# --------------------------------------------------------------------------
def _brain_grid(resolution: int):
    """Brain mask, tissue maps and affine on nilearn's MNI152 grid.

    All of it ships with nilearn, so this never downloads anything.
    """
    from nilearn import datasets as nl_datasets
    from nilearn.image import resample_to_img

    mask_img = nl_datasets.load_mni152_brain_mask(resolution=resolution)
    affine = np.asarray(mask_img.affine, dtype=np.float64)
    mask = np.asarray(mask_img.dataobj) > 0
    # The nilearn masks are one 6-connected piece at every resolution checked
    # (2-10 mm); keep the largest piece anyway so that the regions can tile
    # the mask with connected pieces whatever nilearn ships in the future.
    labels, n_pieces = ndimage.label(mask)
    if n_pieces > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = labels == sizes.argmax()

    tissues = []
    for loader in (
        nl_datasets.load_mni152_gm_template,
        nl_datasets.load_mni152_wm_template,
    ):
        img = loader(resolution=resolution)
        if img.shape != mask.shape or not np.allclose(img.affine, affine):
            # Same grid in nilearn 0.14, but do not rely on it. The keywords
            # exist from nilearn 0.11 on (and silence its FutureWarning).
            try:
                img = resample_to_img(
                    img,
                    mask_img,
                    interpolation="continuous",
                    force_resample=True,
                    copy_header=True,
                )
            except TypeError:
                img = resample_to_img(img, mask_img, interpolation="continuous")
        tissues.append(np.clip(np.asarray(img.get_fdata(), dtype=np.float64), 0, 1))
    return mask, tissues[0], tissues[1], affine


def _compact_regions(mask: np.ndarray, n_regions: int, rng) -> np.ndarray:
    """Tile ``mask`` with ``n_regions`` compact, 6-connected regions.

    Regions are the k-means (Lloyd) cells of random seed voxels on the voxel
    coordinates, which gives blob-like regions of similar volume, like a
    functional atlas. A cell of a non-convex mask can be split in several
    pieces (e.g. both banks of a sulcus-like notch): each region keeps its
    largest 6-connected piece, and the stray pieces are given, voxel by voxel,
    to a labelled 6-neighbour. Growing a region only by voxels touching it
    keeps it connected, and no region is emptied, so the count is exact.

    Returns
    -------
    int32 array of the shape of ``mask``, labels 1..n_regions, 0 outside.
    """
    coords = np.argwhere(mask).astype(np.float64)
    n_voxels = coords.shape[0]
    seeds = rng.choice(n_voxels, size=n_regions, replace=False)
    # Seeds are distinct voxels, so the first assignment leaves no cell empty.
    centroids = coords[np.sort(seeds)]
    assignment = cKDTree(centroids).query(coords, workers=1)[1]
    for _ in range(_KMEANS_ITERATIONS):
        counts = np.bincount(assignment, minlength=n_regions)
        centroids = np.stack(
            [
                np.bincount(assignment, weights=coords[:, d], minlength=n_regions)
                for d in range(3)
            ],
            axis=1,
        ) / counts[:, None]
        new = cKDTree(centroids).query(coords, workers=1)[1]
        if np.bincount(new, minlength=n_regions).min() == 0:
            # A cell emptied: keep the last assignment with all cells filled
            # rather than re-seeding (the count must be exactly n_regions).
            break
        if np.array_equal(new, assignment):
            break
        assignment = new

    labels = np.zeros(mask.shape, dtype=np.int32)
    labels[mask] = assignment.astype(np.int32) + 1

    # Keep each region's largest 6-connected piece, orphan the others.
    orphans = np.zeros(mask.shape, dtype=bool)
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:  # cannot happen (no empty cell), but be safe
            continue
        region = labels[box] == label
        pieces, n_pieces = ndimage.label(region)
        if n_pieces > 1:
            sizes = np.bincount(pieces.ravel())
            sizes[0] = 0
            stray = region & (pieces != sizes.argmax())
            orphans[box] |= stray
    labels[orphans] = 0

    # Give orphans to a labelled 6-neighbour, in a fixed order (deterministic),
    # until none is left; each pass absorbs the orphans touching a region.
    # The mask is one 6-connected piece, so every orphan is eventually reached.
    padded = np.pad(labels, 1)
    offsets = [
        np.array(o)
        for o in ((-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1))
    ]
    todo = np.argwhere(np.pad(orphans, 1))
    while todo.size:
        new_labels = np.zeros(todo.shape[0], dtype=np.int32)
        for offset in offsets:
            neighbour = padded[tuple((todo + offset).T)]
            take = (new_labels == 0) & (neighbour > 0)
            new_labels[take] = neighbour[take]
        done = new_labels > 0
        if not done.any():  # an orphan island without labelled neighbour
            raise RuntimeError("Brain mask is not 6-connected; cannot tile it.")
        padded[tuple(todo[done].T)] = new_labels[done]
        todo = todo[~done]
    return padded[1:-1, 1:-1, 1:-1]


def _bias_field(mask: np.ndarray, rng) -> np.ndarray:
    """Smooth multiplicative field in [0.9, 1.1] (receive-coil sensitivity).

    A random second-order polynomial of the normalised coordinates.
    """
    grids = np.meshgrid(
        *(np.linspace(-1.0, 1.0, n) for n in mask.shape), indexing="ij", sparse=True
    )
    x, y, z = grids
    terms = (x, y, z, x * x, y * y, z * z, x * y, x * z, y * z)
    coefs = rng.uniform(-1.0, 1.0, size=len(terms))
    poly = sum(c * t for c, t in zip(coefs, terms))
    poly = np.broadcast_to(poly, mask.shape)
    poly = poly - poly[mask].mean()
    peak = np.abs(poly[mask]).max()
    if peak > 0:
        poly = poly / peak
    return 1.0 + 0.1 * poly


def _smooth_noise_norm(sigma: float) -> float:
    """Std of gaussian-smoothed unit white noise (to rescale it to unit std).

    It is the L2 norm of the discrete kernel, measured on a delta image so
    that it matches ``ndimage.gaussian_filter`` exactly (truncation included).
    """
    half = int(4.0 * sigma + 0.5) + 1
    delta = np.zeros((2 * half + 1,) * 3)
    delta[half, half, half] = 1.0
    return float(np.sqrt((ndimage.gaussian_filter(delta, sigma) ** 2).sum()))


def _make_image(data: np.ndarray, affine: np.ndarray, t_r: float | None = None):
    """NIfTI-1 image in MNI space (qform and sform code 4), units mm/s."""
    img = nib.Nifti1Image(data, affine)
    header = img.header
    header.set_data_dtype(data.dtype)
    header.set_xyzt_units(xyz="mm", t="sec")
    if t_r is not None:
        zooms = tuple(float(z) for z in header.get_zooms()[:3])
        header.set_zooms(zooms + (t_r,))
    img.set_qform(affine, code=_MNI_XFORM_CODE)
    img.set_sform(affine, code=_MNI_XFORM_CODE)
    return img


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------
def simulate_rest_fmri(
    *,
    resolution: int = 3,
    n_volumes: int = 176,
    t_r: float = 2.0,
    n_regions: int = 300,
    random_state=0,
    regions_random_state=None,
) -> SimulatedRest:
    """Simulate a resting-state fMRI run in MNI space, with its ground truth.

    The series is built in memory, from nilearn's bundled MNI152 templates and
    a seed only (no network, no file), and is identical for identical
    arguments.

    Model, for a brain voxel ``v`` of region ``r`` at volume ``t``::

        S_v(t) = B_v * (1 + 0.01 * (1.2 a_v s_r(t) + 0.6 g(t)
                                    + 0.8 n_v(t) + 0.5 w_v(t)))
        I_v(t) = | S_v(t) + sigma * (e1 + i e2) |

    where ``s_r`` (one per region) and ``g`` (global) are unit-variance
    band-limited noises (0.01-0.1 Hz), ``a_v ~ U(0.5, 1.5)`` a voxel-specific
    loading, ``n_v`` white noise smoothed in space by a gaussian of 1 voxel
    (rescaled to unit variance, new for each volume), ``w_v`` white noise,
    and the magnitude of complex gaussian thermal noise (``sigma`` = 2 % of
    the mean brain baseline) makes the image Rician, hence a dark noisy
    background. The fluctuation is ~2 % of the baseline. The baseline ``B``
    is EPI-like: grey matter (~950) brighter than white matter (~750), CSF in
    between, times a smooth +-10 % coil-sensitivity field and slightly blurred
    at the brain edge (partial volume).

    Parameters
    ----------
    resolution : int, default=3
        Voxel size in mm; the grid is that of
        ``nilearn.datasets.load_mni152_brain_mask(resolution=resolution)``
        (at 3 mm: 67 x 79 x 64, 69,765 brain voxels). Memory grows as
        ``resolution ** -3``: 4 bytes x grid x ``n_volumes`` for the series.
    n_volumes : int, default=176
        Number of volumes.
    t_r : float, default=2.0
        Repetition time in seconds.
    n_regions : int, default=300
        Number of ground-truth regions; clipped to the number of brain voxels.
    random_state : int, numpy.random.Generator or None, default=0
        Seed of ``numpy.random.default_rng``; the global numpy state is never
        used nor changed. ``None`` gives a different run each call.
    regions_random_state : int or None, default=None
        Seed of the ground-truth regions alone: simulated subjects of one
        group share their regions (as people share their anatomy) when they
        share this seed and differ in ``random_state``. None: the regions
        come from ``random_state`` with everything else.

    Returns
    -------
    SimulatedRest
        ``(bold_img, brain_mask_img, regions_img, t_r)``; see
        :class:`SimulatedRest`.

    Notes
    -----
    At the default size this takes ~6 s and ~0.45 GB peak (the 240 MB float32
    series plus a few grid-sized float64 temporaries, one volume at a time).
    """
    run = simulate_rest_volumes(resolution=resolution, n_volumes=n_volumes, t_r=t_r,
                                n_regions=n_regions, random_state=random_state,
                                regions_random_state=regions_random_state)
    bold = np.empty((run.n_volumes,) + run.brain_mask_img.shape, dtype=np.float32)
    for t, volume in enumerate(run.volumes):
        bold[t] = volume
    # Time-major buffer transposed: a Fortran-ordered (x, y, z, t) view, the
    # NIfTI on-disk order, so that saving it needs no 240 MB copy.
    bold_img = _make_image(bold.transpose(1, 2, 3, 0), run.brain_mask_img.affine, t_r=run.t_r)
    return SimulatedRest(bold_img, run.brain_mask_img, run.regions_img, run.t_r)


class SimulatedVolumes(NamedTuple):
    """Output of :func:`simulate_rest_volumes`: a simulated run, its volumes yet to be drawn.

    Attributes
    ----------
    volumes : iterator of ndarray
        The ``n_volumes`` float32 volumes (3D, the grid of the mask), each
        drawn when asked for: a long run is written a volume at a time
        without being held whole.
    brain_mask_img, regions_img, t_r
        As in :class:`SimulatedRest`.
    n_volumes : int
    """

    volumes: Iterator[np.ndarray]
    brain_mask_img: nib.Nifti1Image
    regions_img: nib.Nifti1Image
    t_r: float
    n_volumes: int


def simulate_rest_volumes(*, resolution: int = 3, n_volumes: int = 176, t_r: float = 2.0,
                          n_regions: int = 300, random_state=0,
                          regions_random_state=None) -> SimulatedVolumes:
    """:func:`simulate_rest_fmri`, its volumes drawn one at a time as they are asked for.

    The same parameters, the same values volume for volume; memory stays at
    a few grid-sized arrays whatever ``n_volumes`` (a 2 mm run of 1,200
    volumes is 4.3 GB of float32 held whole).
    """
    resolution = check_int(resolution, "resolution")
    n_volumes = check_int(n_volumes, "n_volumes")
    n_regions = check_int(n_regions, "n_regions")
    t_r = check_real(t_r, "t_r", what="number of seconds")
    rng = np.random.default_rng(random_state)

    mask, grey, white, affine = _brain_grid(resolution)
    n_brain = int(mask.sum())
    n_regions = min(n_regions, n_brain)

    # The order of the random draws below is part of the output: do not
    # reorder them without bumping SIMULATION_VERSION.
    regions = _compact_regions(mask, n_regions, rng)
    if regions_random_state is not None:  # drawn above all the same: the rest is unchanged
        regions = _compact_regions(mask, n_regions, np.random.default_rng(regions_random_state))
    loadings = rng.uniform(0.5, 1.5, size=n_brain)
    field = _bias_field(mask, rng)

    # EPI (T2*-weighted) baseline: grey brighter than white matter; what is
    # neither (CSF) is in between. Values ~450-1000.
    csf = np.clip(1.0 - grey - white, 0.0, 1.0)
    tissue = 450.0 + 500.0 * grey + 300.0 * white + 350.0 * csf
    baseline = np.where(mask, tissue * field, 0.0)
    # Partial volume: voxels at the edge of the brain are a bit darker and the
    # first voxels outside a bit brighter, as in a real acquisition; keeps
    # the brain/background edge from being a trivial step for mask tools.
    baseline = ndimage.gaussian_filter(baseline, _PARTIAL_VOLUME_SIGMA)
    brain_baseline = baseline[mask]
    thermal_sigma = 0.01 * _THERMAL_PCT * float(brain_baseline.mean())

    region_signals = band_limited_noise(rng, n_regions, n_volumes, t_r)
    global_signal = band_limited_noise(rng, 1, n_volumes, t_r)[0]

    region_of_voxel = regions[mask] - 1
    # Per voxel, in percent: the loaded region amplitude.
    region_weight = REGION_PCT * loadings
    smooth_norm = _smooth_noise_norm(_SMOOTH_NOISE_SIGMA)

    def volumes():
        # One volume at a time: the float64 temporaries stay at a few
        # grid-sized arrays.
        for t in range(n_volumes):
            # Spatially smooth noise: white noise over the whole grid (so the
            # smoothing near the brain edge is not biased), blurred in space.
            smooth = ndimage.gaussian_filter(
                rng.standard_normal(mask.shape), _SMOOTH_NOISE_SIGMA, mode="constant"
            )[mask]
            smooth /= smooth_norm
            percent = region_weight * region_signals[region_of_voxel, t]
            percent += GLOBAL_PCT * global_signal[t]
            percent += SMOOTH_PCT * smooth
            percent += WHITE_PCT * rng.standard_normal(n_brain)

            signal = baseline.copy()
            signal[mask] = brain_baseline * (1.0 + 0.01 * percent)
            # Magnitude of a complex signal with gaussian noise on both
            # channels: Rician (Rayleigh where there is no signal).
            real = signal + thermal_sigma * rng.standard_normal(mask.shape)
            imag = thermal_sigma * rng.standard_normal(mask.shape)
            yield np.hypot(real, imag).astype(np.float32)

    mask_img = _make_image(mask.astype(np.uint8), affine)
    regions_img = _make_image(regions.astype(np.int32), affine)
    return SimulatedVolumes(volumes(), mask_img, regions_img, t_r, n_volumes)
