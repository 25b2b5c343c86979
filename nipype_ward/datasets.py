"""Default data: an offline, deterministic rest-fMRI simulation and real loaders.

The demo and the test-suite must run without network, so the default data set
is *generated*: :func:`simulate_rest_fmri` builds, in memory and from a seed
only, a 4D series that looks like a preprocessed resting-state EPI run in MNI
space, together with the ground truth it was built from (the brain mask and
the regions whose voxels share a fluctuation). :func:`load_simulated_rest`
caches it on disk as NIfTI files, which is what the command-line tools and
Nipype interfaces consume. :func:`fetch_adhd_subject` is the real-data
counterpart for online users (nilearn's ADHD-200 subset), and
:func:`load_bold_dataset` dispatches between them by name.

Everything the simulation needs ships with nilearn (the MNI152 templates), so
no call in this module touches the network except :func:`fetch_adhd_subject`
when its files are not on disk yet.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import NamedTuple

import nibabel as nib
import numpy as np
from scipy import ndimage, sparse
from scipy.spatial import cKDTree

from nipype_ward.connectivity import mesh_connectivity
from nipype_ward.image import save_image

__all__ = [
    "Bunch",
    "SimulatedRest",
    "fetch_adhd_subject",
    "get_data_dir",
    "load_bold_dataset",
    "load_simulated_rest",
    "simulate_rest_fmri",
]

#: Environment variable that overrides the default data directory.
DATA_DIR_ENV = "NIPYPE_WARD_DATA"

#: Bump whenever the simulation changes its output for given parameters, so
#: that files cached by an older version are not silently reused.
SIMULATION_VERSION = 1

#: NIfTI code of the MNI152 space for qform/sform ("mni" in nibabel).
_MNI_XFORM_CODE = 4

# Amplitudes of the temporal fluctuations, in percent of the voxel baseline.
# Chosen so that the total brain fluctuation is ~2 % (BOLD-like), and the
# correlation of two voxels of one region is ~0.3-0.5 while two voxels of
# different regions correlate only through the global signal (~0.1), which is
# the order of magnitude seen in real preprocessed rest data.
_REGION_PCT = 1.2  # the region's own slow fluctuation (times the loading)
_GLOBAL_PCT = 0.6  # shared by every brain voxel (global signal)
_SMOOTH_PCT = 0.8  # spatially smooth noise (physiological, motion residue)
_WHITE_PCT = 0.5  # voxel-specific white physiological noise
# Thermal noise of the magnitude image, in percent of the mean brain baseline
# (brain tSNR ~ 40-50). It is also what makes the background Rician.
_THERMAL_PCT = 2.0

# Band of the slow fluctuations (Hz): the classic resting-state band.
_BAND_LOW_HZ = 0.01
_BAND_HIGH_HZ = 0.1

# Width (voxels) of the spatial gaussian of the smooth noise.
_SMOOTH_NOISE_SIGMA = 1.0
# Width (voxels) of the partial-volume blur of the baseline at the brain edge.
_PARTIAL_VOLUME_SIGMA = 0.5
# Lloyd iterations of the k-means that builds the regions; compactness
# barely improves beyond ~10 and each costs a KD-tree query.
_KMEANS_ITERATIONS = 10

# nilearn's ADHD-200 resting-state subset: 40 subjects, TR of 2 s.
_ADHD_N_SUBJECTS = 40
_ADHD_T_R = 2.0


class Bunch(dict):
    """A dict whose keys are also attributes, as nilearn's fetchers return.

    ``bunch["func"]`` and ``bunch.func`` are the same value, and it is a
    :class:`dict` in every other way (``get``, ``==``, ``isinstance``). It
    behaves as ``sklearn.utils.Bunch``, which it replaces here because
    importing scikit-learn costs ~0.5 s for this one class.
    """

    def __init__(self, **kwargs):
        super().__init__(kwargs)

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def __dir__(self):
        return self.keys()


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
# Argument checks
# --------------------------------------------------------------------------
def _check_positive_int(value, name: str) -> int:
    # bool is an Integral: refuse it, True volumes is always a bug.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}.")
    return int(value)


def _check_t_r(t_r) -> float:
    if isinstance(t_r, bool) or not isinstance(t_r, numbers.Real):
        raise TypeError(f"t_r must be a number of seconds, got {t_r!r}.")
    t_r = float(t_r)
    if not np.isfinite(t_r) or t_r <= 0:
        raise ValueError(f"t_r must be a positive number of seconds, got {t_r}.")
    return t_r


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


def _band_limited_noise(rng, n_series: int, n_volumes: int, t_r: float) -> np.ndarray:
    """Unit-variance slow fluctuations, shape ``(n_series, n_volumes)``.

    White noise filtered in the Fourier domain by 4th-order Butterworth-like
    high-pass (0.01 Hz, removes drifts) and low-pass (0.1 Hz) gains: most of
    the power lies in the resting-state band whatever the TR (above 0.1 Hz the
    gain falls as f^-4). Circular filtering is fine: the series is synthetic.
    """
    white = rng.standard_normal((n_series, n_volumes))
    freqs = np.fft.rfftfreq(n_volumes, d=t_r)
    ratio_low = freqs / _BAND_LOW_HZ
    gain = 1.0 / np.sqrt(1.0 + (freqs / _BAND_HIGH_HZ) ** 8)
    gain *= ratio_low**4 / np.sqrt(1.0 + ratio_low**8)
    signals = np.fft.irfft(np.fft.rfft(white, axis=1) * gain, n=n_volumes, axis=1)
    signals -= signals.mean(axis=1, keepdims=True)
    std = signals.std(axis=1, keepdims=True)
    # A 1-volume series has no fluctuation at all: leave it at zero.
    np.divide(signals, std, out=signals, where=std > 0)
    return signals


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
    resolution = _check_positive_int(resolution, "resolution")
    n_volumes = _check_positive_int(n_volumes, "n_volumes")
    n_regions = _check_positive_int(n_regions, "n_regions")
    t_r = _check_t_r(t_r)
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

    region_signals = _band_limited_noise(rng, n_regions, n_volumes, t_r)
    global_signal = _band_limited_noise(rng, 1, n_volumes, t_r)[0]

    region_of_voxel = regions[mask] - 1
    # Per voxel, in percent: the loaded region amplitude.
    region_weight = _REGION_PCT * loadings
    smooth_norm = _smooth_noise_norm(_SMOOTH_NOISE_SIGMA)

    bold = np.empty((n_volumes,) + mask.shape, dtype=np.float32)
    # Volume by volume: the float64 temporaries stay at a few grid-sized
    # arrays, only the float32 series grows with n_volumes.
    for t in range(n_volumes):
        # Spatially smooth noise: white noise over the whole grid (so the
        # smoothing near the brain edge is not biased), blurred in space.
        smooth = ndimage.gaussian_filter(
            rng.standard_normal(mask.shape), _SMOOTH_NOISE_SIGMA, mode="constant"
        )[mask]
        smooth /= smooth_norm
        percent = region_weight * region_signals[region_of_voxel, t]
        percent += _GLOBAL_PCT * global_signal[t]
        percent += _SMOOTH_PCT * smooth
        percent += _WHITE_PCT * rng.standard_normal(n_brain)

        signal = baseline.copy()
        signal[mask] = brain_baseline * (1.0 + 0.01 * percent)
        # Magnitude of a complex signal with gaussian noise on both
        # channels: Rician (Rayleigh where there is no signal).
        real = signal + thermal_sigma * rng.standard_normal(mask.shape)
        imag = thermal_sigma * rng.standard_normal(mask.shape)
        bold[t] = np.hypot(real, imag)

    # Time-major buffer transposed: a Fortran-ordered (x, y, z, t) view, the
    # NIfTI on-disk order, so that saving it needs no 240 MB copy.
    bold_img = _make_image(bold.transpose(1, 2, 3, 0), affine, t_r=t_r)
    mask_img = _make_image(mask.astype(np.uint8), affine)
    regions_img = _make_image(regions.astype(np.int32), affine)
    return SimulatedRest(bold_img, mask_img, regions_img, t_r)


class SimulatedSurface(NamedTuple):
    """Output of :func:`simulate_surface_fmri`: one entry per hemisphere.

    Attributes
    ----------
    series : tuple of ndarray
        Per hemisphere, (n_vertices, n_volumes) float32; vertices without
        data (outside ``cortex``) hold zeros, as fMRIPrep's medial wall.
    regions : tuple of ndarray
        Per hemisphere, int32 ground-truth regions of each vertex, 0 outside
        the cortex; labels run on across hemispheres (no region spans both).
    t_r : float
    """

    series: tuple
    regions: tuple
    t_r: float


def _mesh_smoothing(faces, n_vertices: int):
    """The row-normalised vertex adjacency (with self-loops): one smoothing step."""
    graph = mesh_connectivity(np.asarray(faces), n_vertices) + sparse.identity(
        n_vertices, format="csr")
    degree = np.asarray(graph.sum(axis=1)).ravel()
    return sparse.diags(1.0 / degree) @ graph


def simulate_surface_fmri(
    meshes,
    *,
    cortex=None,
    n_volumes: int = 120,
    t_r: float = 2.0,
    n_regions: int = 100,
    random_state=0,
) -> SimulatedSurface:
    """Simulate a resting-state series on cortical meshes, with its ground truth.

    The surface counterpart of :func:`simulate_rest_fmri`, same model:
    ``S_v(t) = B_v (1 + 0.01 (1.2 a_v s_r(t) + 0.6 g(t) + 0.8 n_v(t) +
    0.5 w_v(t)))``, the regions ``r`` compact patches of each hemisphere
    (each vertex joins the nearest of ``n_regions / 2`` random seed
    vertices of its hemisphere, in 3D), ``n_v`` white noise smoothed by
    four steps of averaging over mesh neighbours, a baseline ``B`` of about
    1000 varying smoothly over the mesh. No thermal (Rician) noise: surface
    series are sampled from volumes.

    Parameters
    ----------
    meshes : sequence of :class:`nipype_ward.gifti.Mesh`
        The hemispheres' meshes (left, right).
    cortex : sequence of bool arrays, optional
        Per hemisphere, the vertices with data (e.g. without the medial
        wall); all by default.
    n_volumes, t_r, n_regions, random_state
        As :func:`simulate_rest_fmri`; ``n_regions`` counts both hemispheres.
    """
    n_volumes = _check_positive_int(n_volumes, "n_volumes")
    n_regions = _check_positive_int(n_regions, "n_regions")
    t_r = _check_t_r(t_r)
    rng = np.random.default_rng(random_state)
    global_signal = _band_limited_noise(rng, 1, n_volumes, t_r)[0]
    series, regions, offset = [], [], 0
    for index, mesh in enumerate(meshes):
        n_vertices = mesh.n_vertices
        kept = np.ones(n_vertices, bool) if cortex is None else np.asarray(cortex[index], bool)
        if kept.shape != (n_vertices,):
            raise ValueError(f"cortex[{index}] has {kept.shape} values for {n_vertices} vertices")
        vertices = np.flatnonzero(kept)
        n_here = max(1, min(n_regions // len(meshes), vertices.size))
        seeds = rng.choice(vertices, size=n_here, replace=False)
        _, nearest = cKDTree(mesh.coordinates[seeds]).query(mesh.coordinates[vertices])
        region = np.zeros(n_vertices, np.int32)
        region[vertices] = offset + 1 + nearest
        smoothing = _mesh_smoothing(mesh.faces, n_vertices)
        field = rng.standard_normal(n_vertices)
        for _ in range(20):
            field = smoothing @ field
        baseline = 1000.0 * (1.0 + 0.1 * field / (np.abs(field).max() or 1.0))
        loadings = rng.uniform(0.5, 1.5, size=n_vertices)
        signals = _band_limited_noise(rng, n_here, n_volumes, t_r)
        smooth = rng.standard_normal((n_vertices, n_volumes))
        for _ in range(4):
            smooth = smoothing @ smooth
        smooth /= smooth.std(axis=1, keepdims=True)
        percent = _REGION_PCT * loadings[:, None] * signals[np.maximum(region - offset - 1, 0)]
        percent += _GLOBAL_PCT * global_signal
        percent += _SMOOTH_PCT * smooth
        percent += _WHITE_PCT * rng.standard_normal((n_vertices, n_volumes))
        data = (baseline[:, None] * (1.0 + 0.01 * percent)).astype(np.float32)
        data[~kept] = 0.0
        series.append(data)
        regions.append(region)
        offset += n_here
    return SimulatedSurface(tuple(series), tuple(regions), t_r)


def get_data_dir(data_dir=None) -> Path:
    """Directory where nipype-ward stores its data, created if missing.

    Parameters
    ----------
    data_dir : str or os.PathLike or None, default=None
        Explicit directory. If None, the environment variable
        ``NIPYPE_WARD_DATA`` is used, else ``~/nipype_ward_data``.

    Returns
    -------
    pathlib.Path
        The (existing) directory, with ``~`` expanded.
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or "~/nipype_ward_data"
    path = Path(data_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _simulation_dir_name(resolution, n_volumes, t_r, n_regions, random_state) -> str:
    # Every parameter is in the name, so two parameter sets never share files;
    # ``g`` formatting keeps 2.0 -> "2" and 0.72 -> "0.72" readable and exact
    # enough (repr would put "2.0" and "2" in different folders).
    return (
        f"v{SIMULATION_VERSION}_res-{resolution}mm_vols-{n_volumes}"
        f"_tr-{t_r:.10g}s_regions-{n_regions}_seed-{random_state}"
    )


def load_simulated_rest(
    *,
    resolution: int = 3,
    n_volumes: int = 176,
    t_r: float = 2.0,
    n_regions: int = 300,
    random_state: int = 0,
    data_dir=None,
) -> Bunch:
    """Simulated rest-fMRI run as NIfTI files, generated once then cached.

    See :func:`simulate_rest_fmri` for the model and the parameters. Files are
    stored under ``get_data_dir(data_dir)/simulated_rest/<parameters>/``; a
    later call with the same parameters returns them without regenerating.

    Parameters
    ----------
    resolution, n_volumes, t_r, n_regions
        As in :func:`simulate_rest_fmri`.
    random_state : int, default=0
        Seed; must be a non-negative integer, since it names the cache.
    data_dir : str or os.PathLike or None, default=None
        Root data directory, see :func:`get_data_dir`.

    Returns
    -------
    Bunch
        ``func`` (str, path of the 4D ``.nii.gz``), ``mask`` (str, path of the
        true brain mask), ``regions`` (str, path of the ground-truth regions),
        ``t_r`` (float, seconds) and ``description`` (str).
    """
    resolution = _check_positive_int(resolution, "resolution")
    n_volumes = _check_positive_int(n_volumes, "n_volumes")
    n_regions = _check_positive_int(n_regions, "n_regions")
    t_r = _check_t_r(t_r)
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise TypeError(
            "random_state must be an integer seed to cache the data set "
            f"(got {random_state!r}); use simulate_rest_fmri for other seeds."
        )
    if random_state < 0:
        raise ValueError(f"random_state must be >= 0, got {random_state}.")
    random_state = int(random_state)

    folder = (
        get_data_dir(data_dir)
        / "simulated_rest"
        / _simulation_dir_name(resolution, n_volumes, t_r, n_regions, random_state)
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "func": folder / "bold.nii.gz",
        "mask": folder / "brain_mask.nii.gz",
        "regions": folder / "regions.nii.gz",
    }

    # Each file is written atomically, so existing means complete; if only
    # some exist (run interrupted between two files) regenerate them all, the
    # simulation being deterministic.
    if not all(p.is_file() for p in paths.values()):
        sim = simulate_rest_fmri(
            resolution=resolution,
            n_volumes=n_volumes,
            t_r=t_r,
            n_regions=n_regions,
            random_state=random_state,
        )
        # The 240 MB series last: it is the slowest write, and the small
        # files being present alone does not count as a complete cache.
        save_image(sim.brain_mask_img, paths["mask"])
        save_image(sim.regions_img, paths["regions"])
        save_image(sim.bold_img, paths["func"])

    description = (
        "Simulated resting-state fMRI (nipype-ward, simulation version "
        f"{SIMULATION_VERSION}): {n_volumes} volumes, TR {t_r:g} s, "
        f"{resolution} mm MNI152 grid (nilearn), up to {n_regions} compact "
        f"ground-truth regions, seed {random_state}. Each region shares a "
        "slow (0.01-0.1 Hz) fluctuation with voxel-specific loadings, on top "
        "of a global signal, spatially smooth noise and white noise (~2 % of "
        "an EPI-like baseline), in a Rician magnitude image. 'mask' is the "
        "true brain mask, 'regions' the ground-truth labels (0 outside)."
    )
    return Bunch(
        func=str(paths["func"]),
        mask=str(paths["mask"]),
        regions=str(paths["regions"]),
        t_r=t_r,
        description=description,
    )


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
    if isinstance(subject_index, bool) or not isinstance(
        subject_index, numbers.Integral
    ):
        raise TypeError(
            f"subject_index must be an integer, got {subject_index!r}."
        )
    if not 0 <= subject_index < _ADHD_N_SUBJECTS:
        raise ValueError(
            f"subject_index must be in [0, {_ADHD_N_SUBJECTS - 1}], "
            f"got {subject_index}."
        )
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
