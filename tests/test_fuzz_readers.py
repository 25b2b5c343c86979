"""Fuzzing the file readers (issue #17): a clear error or a correct result.

Every reader of an input file, given a random valid file, a truncated one or
one with random bytes overwritten, must either raise
:class:`nipype_ward.io.errors.InputError` (its message naming the file) or return
the values an independent reference gives: nibabel's own ``dataobj`` for
NIfTI and CIFTI, nibabel's data arrays for GIFTI, the drawn cells for the
confounds tables (and NumPy on nibabel's data for ``read_series``).
Any other exception, a hang (turned into :class:`Hang` by an alarm) or an
allocation beyond a cap (turned into ``MemoryError`` by an address-space
limit) fails the test.

Files are written byte by byte (header, then data), not through nibabel's
writer, so that the scale factors, codes and affines are exactly the ones
drawn (nibabel would recompute the scaling). Hypothesis is derandomized and
keeps no database: CI sees the same examples every run.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gzip
import io
import json
import os
import resource
import signal
import tempfile
import warnings
import zlib
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest
from conftest import assert_same_grayordinates
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from nibabel import cifti2

from nipype_ward.io import cifti, files, geometry, gifti, nifti, series, tables
from nipype_ward.io.errors import InputError


@pytest.fixture(scope="module", autouse=True)
def quiet_nibabel():
    """nibabel logs every header it repairs: thousands of lines for corrupt files."""
    level = nb.imageglobals.logger.level
    nb.imageglobals.logger.setLevel("CRITICAL")
    yield
    nb.imageglobals.logger.setLevel(level)


#: ``NIPYPE_WARD_FUZZ_SCALE=20 pytest tests/test_fuzz_readers.py``: twenty times the
#: examples, and new random ones each run (a longer hunt, by hand, not in CI).
FUZZ_SCALE = int(os.environ.get("NIPYPE_WARD_FUZZ_SCALE", "1"))


def fuzz_settings(max_examples):
    return settings(
        max_examples=max_examples * FUZZ_SCALE,
        deadline=5000,
        derandomize=FUZZ_SCALE == 1,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
    )


# --------------------------------------------------------------------------
# Guards: no hang, no huge allocation
# --------------------------------------------------------------------------
class Hang(BaseException):
    """A reader ran past its time (BaseException: no reader's ``except Exception`` hides it)."""


#: Seconds a reader may take on a file of a few kB.
TIME_LIMIT = 10
#: Bytes of address space a reader may add on a file of a few kB.
MEMORY_LIMIT = 1 << 30


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def guarded(what):
    """Raise :class:`Hang` after :data:`TIME_LIMIT` s, ``MemoryError`` past the cap.

    A hang inside C code, where the alarm's exception cannot be raised, ends
    the process after three times the limit, its stack dumped (faulthandler):
    a failed run rather than a CI job that never ends.
    """

    def alarm(signum, frame):
        raise Hang(f"{what} still running after {TIME_LIMIT} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _vm_size() + MEMORY_LIMIT if _vm_size() else resource.RLIM_INFINITY
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
    faulthandler.dump_traceback_later(3 * TIME_LIMIT, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def outcome(path, reader, *args, **kwargs):
    """``("ok", result)`` or ``("error", InputError)``; anything else fails, naming the reader.

    ``path``: the file (or list of files) the error may name.
    """
    paths = [Path(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
    with guarded(getattr(reader, "__name__", reader)), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return "ok", reader(*args, **kwargs)
        except InputError as exc:
            cause = exc
            while cause is not None:  # readers turn any Exception into an InputError
                assert not isinstance(cause, MemoryError), \
                    f"{exc}: the reader tried to allocate more than {MEMORY_LIMIT} bytes"
                cause = cause.__cause__ or cause.__context__
            assert str(exc).startswith(f"{exc.path}: "), exc
            assert exc.problem.strip(), f"InputError without a problem: {exc}"
            assert Path(exc.path) in paths, f"the error names {exc.path}, not {paths}"
            return "error", exc


def reference(what, *args):
    """``(True, value)`` of an independent reference, ``(False, exc)`` when it fails."""
    with guarded(f"reference {what}"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return True, what(*args)
        except Exception as exc:  # the reference may fail any way it likes
            return False, exc


# --------------------------------------------------------------------------
# Corruption
# --------------------------------------------------------------------------
class Corruption:
    """Bytes truncated at a fraction of their length, and/or some overwritten."""

    def __init__(self, kind, cut, positions, values):
        self.kind, self.cut, self.positions, self.values = kind, cut, positions, values

    def __call__(self, data: bytes) -> bytes:
        data = bytearray(data)
        if self.kind != "truncate":
            for position, value in zip(self.positions, self.values):
                if isinstance(position, float):  # anywhere: a fraction of the length
                    position = int(position * len(data))
                if position < len(data):
                    data[position] = value
        if self.kind.startswith("truncate"):
            data = data[: int(self.cut * len(data))]
        return bytes(data)

    def __repr__(self):
        return (f"Corruption({self.kind!r}, cut={self.cut}, positions={self.positions}, "
                f"values={self.values})")


#: Header bytes worth breaking. NIfTI-1: dim 40-55, datatype 70, bitpix 72,
#: pixdim 76-107, vox_offset 108, scl_slope 112, scl_inter 116, xyzt_units
#: 123, descrip 148 (harmless), qform/sform codes 252/254, srow 280-327,
#: magic 344; NIfTI-2: datatype 12, dim 16-79, pixdim 104-167, vox_offset 168,
#: scl_slope 176, scl_inter 184, descrip 240, qform/sform codes 344/348, srow
#: 400-495, xyzt_units 500.
HEADER_OFFSETS = [40, 42, 44, 46, 48, 70, 72, 76, 80, 84, 88, 92, 108, 109, 112, 115, 116, 119,
                  123, 148, 252, 254, 280, 300, 344, 346, 4, 12, 16, 17, 24, 32, 104, 128, 168,
                  169, 176, 183, 184, 240, 348, 400, 450, 500]
BYTE_VALUES = [0xFF, 0x7F, 0x00, 0x80, 0x01, 0x40]


@st.composite
def truncations(draw):
    # The first choices come first: a little of the data missing behind an
    # intact header, then anywhere, the header too.
    cut = draw(st.sampled_from([0.95, 0.8, 0.5]) | st.floats(0, 1, exclude_max=True))
    return Corruption("truncate", cut, [], [])


@st.composite
def overwrites(draw, header_size=540):
    kind = draw(st.sampled_from(["header", "anywhere", "truncate+header"]))
    if kind == "anywhere":
        position = st.floats(0, 1, exclude_max=True)
    else:
        position = st.sampled_from(HEADER_OFFSETS) | st.integers(0, header_size - 1)
    positions = draw(st.lists(position, min_size=1, max_size=4))
    values = draw(st.lists(st.sampled_from(BYTE_VALUES) | st.integers(0, 255),
                           min_size=4, max_size=4))
    cut = draw(st.floats(0.5, 1, exclude_max=True))
    return Corruption(kind, cut, positions, values)


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


def _gunzip_prefix(data: bytes) -> bytes:
    """The bytes a gzip stream gives before it ends or breaks (truncated, corrupt)."""
    out = bytearray()
    decoder = zlib.decompressobj(wbits=31)
    try:
        for start in range(0, len(data), 256):
            out += decoder.decompress(data[start: start + 256])
    except zlib.error:
        pass
    return bytes(out)


# --------------------------------------------------------------------------
# NIfTI files, byte by byte
# --------------------------------------------------------------------------
DTYPES = [np.uint8, np.int16, np.int32, np.float32, np.float64]
#: Other NIfTI types, drawn less often: wider integers, complex and RGB voxels.
RARE_DTYPES = [np.int8, np.uint16, np.int64, np.uint64, np.complex64,
               [("R", "u1"), ("G", "u1"), ("B", "u1")]]
SLOPES = [1.0, 0.0, np.nan, 2.5, -0.5, 1e-3, np.inf]
INTERS = [0.0, 1.5, -100.0, np.nan]


@st.composite
def affines(draw):
    kind = draw(st.sampled_from(["diagonal", "random", "zero", "zero row", "rank 2"]))
    values = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=32)
    affine = np.eye(4)
    if kind == "random":
        affine[:3] = np.array(draw(st.lists(values, min_size=12, max_size=12))).reshape(3, 4)
    elif kind == "diagonal":
        affine[:3, :3] = np.diag(draw(st.lists(values, min_size=3, max_size=3)))
    elif kind == "zero":
        affine[:3, :3] = 0
    elif kind == "zero row":
        affine[draw(st.integers(0, 2)), :3] = 0
    else:
        affine[:3, 2] = affine[:3, 0]
    return affine


@st.composite
def nifti_specs(draw, ndims=(4, 3, 4, 2, 5)):
    # Hypothesis draws the first choices of a list more often: 4D series
    # of more than one volume first, then 3D images, then the odd ones.
    ndim = draw(st.sampled_from(ndims))
    shape = tuple(draw(st.sampled_from([3, 2, 4, 1])) for _ in range(min(ndim, 3)))
    shape = (shape + tuple(draw(st.sampled_from([3, 2, 5, 1])) for _ in range(ndim - 3)))[:ndim]
    return {
        "version": draw(st.sampled_from([1, 2])),
        "shape": shape,
        "dtype": np.dtype(draw(st.sampled_from(DTYPES * 4 + RARE_DTYPES))),
        "values": draw(st.sampled_from(["random", "random", "labels", "huge labels"])),
        "order": draw(st.sampled_from(["<", ">"])),
        "slope": draw(st.sampled_from(SLOPES)),
        "inter": draw(st.sampled_from(INTERS)),
        "affine": draw(affines()),
        "codes": draw(st.sampled_from([(0, 1), (0, 0), (1, 1), (2, 4)])),  # qform, sform
        "zooms": draw(st.sampled_from([(2.0, 2.0, 2.0, 0.8), (1.0, 1.0, 1.0, 0.0),
                                       (0.0, 1.0, np.nan, np.nan), (3.0, 3.0, 3.0, -2.0)])),
        "units": draw(st.sampled_from([("mm", "sec"), ("mm", "msec"), ("mm", "unknown")])),
        "nonfinite": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**32 - 1)),
        "gzip": draw(st.booleans()),
        "misnamed": draw(st.sampled_from([False] * 9 + [True])),  # .nii.gz not gzipped...
    }


def _values(spec) -> np.ndarray:
    rng = np.random.default_rng(spec["seed"])
    dtype, shape = spec["dtype"], spec["shape"]
    if dtype.fields:  # RGB
        return np.frombuffer(rng.bytes(int(np.prod(shape)) * dtype.itemsize),
                             dtype=dtype).reshape(shape)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    if dtype.kind == "f" and spec["values"] != "random":  # integer values, as labels
        choices = [0, 1, 2, 3] if spec["values"] == "labels" else [0, 1, 2, 1e20]
        return rng.choice(choices, size=shape).astype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = (info.min, info.max) if rng.random() < 0.3 else (0, 4)
        data = rng.integers(low, high, size=shape, endpoint=True, dtype=dtype)
    else:
        data = (rng.standard_normal(shape) * 100).astype(dtype)
        if spec["nonfinite"] and data.size:
            data.flat[rng.integers(0, data.size)] = rng.choice([np.nan, np.inf, -np.inf])
    return data


def nifti_bytes(spec) -> bytes:
    """A NIfTI-1 or NIfTI-2 single file (``.nii``) with exactly the drawn header fields."""
    klass = nb.Nifti1Header if spec["version"] == 1 else nb.Nifti2Header
    header = klass(endianness=spec["order"])
    header.set_data_shape(spec["shape"])
    header.set_data_dtype(spec["dtype"])
    qcode, scode = spec["codes"]
    header.set_sform(spec["affine"], code=scode)
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a singular affine has no quaternion
        header.set_qform(spec["affine"], code=qcode)
    header["qform_code"] = qcode
    n = len(spec["shape"])
    header["pixdim"][1: 1 + n] = (tuple(spec["zooms"]) + (1.0,) * n)[:n]
    header.set_xyzt_units(*spec["units"])
    header["scl_slope"] = spec["slope"]
    header["scl_inter"] = spec["inter"]
    offset = header.sizeof_hdr + 4
    header["vox_offset"] = offset
    data = _values(spec).astype(spec["dtype"].newbyteorder(spec["order"]))
    return header.binaryblock + b"\x00" * 4 + data.tobytes(order="F")


def nifti_name(spec, stem="img") -> str:
    gz = spec["gzip"] != spec.get("misnamed", False)
    return f"{stem}.nii.gz" if gz else f"{stem}.nii"


def write_nifti(folder, spec, corrupt=None, *, stem="img", corrupt_compressed=False) -> Path:
    raw = nifti_bytes(spec)
    if corrupt is not None and not corrupt_compressed:
        raw = corrupt(raw)
    data = _gzip(raw) if spec["gzip"] else raw
    if corrupt is not None and corrupt_compressed:
        data = corrupt(data)
    path = Path(folder) / nifti_name(spec, stem)
    path.write_bytes(data)
    return path


def _declared_bytes(path) -> int | None:
    """Bytes of data a file's header declares, None when nibabel cannot parse the header."""
    data = Path(path).read_bytes()
    raw = _gunzip_prefix(data) if str(path).endswith(".gz") else data
    for klass in (nb.Nifti1Header, nb.Nifti2Header):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                header = klass.from_fileobj(io.BytesIO(raw), check=False)
            if int(header["sizeof_hdr"]) != header.sizeof_hdr:
                continue
            shape = header.get_data_shape()
            itemsize = header.get_data_dtype().itemsize
        except Exception:
            continue
        return int(np.prod(shape, dtype=object)) * itemsize
    return None


def nibabel_data(path) -> np.ndarray:
    """The independent reference: ``np.asanyarray(nibabel.load(path).dataobj)``.

    Not called when the header declares far more data than the file could
    hold (a corrupt dimension): nibabel would try to allocate it.
    """
    declared = _declared_bytes(path)
    if declared is not None and declared > 1100 * Path(path).stat().st_size + (1 << 16):
        raise ValueError("header declares more data than the file can hold")
    img = nb.load(path)
    return np.asanyarray(img.dataobj)


# --------------------------------------------------------------------------
# NIfTI properties
# --------------------------------------------------------------------------
def check_load_image(path, ok, ref, ndim, header_shape):
    """load_image reads the header only: its data, through data_of, are checked too."""
    status, img = outcome(path, nifti.load_image, path, ndim=ndim)
    if status == "error":
        return
    assert header_shape is not None, f"load_image read {path} whose header nibabel cannot read"
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    expected_shape = header_shape
    if len(header_shape) == 4 and header_shape[3] == 1 and 4 not in allowed:
        expected_shape = header_shape[:3]
    assert img.shape == expected_shape and img.ndim in allowed
    status, data = outcome(path, nifti.data_of, img)
    if status == "ok":
        assert ok, f"data_of read the data of {path} that nibabel cannot read ({ref!r})"
        np.testing.assert_array_equal(data, ref.reshape(expected_shape))


def check_load_mask(path, ok, ref):
    status, result = outcome(path, geometry.load_mask, path)
    if status == "error":
        return
    assert ok, f"load_mask read {path} that nibabel cannot read ({ref!r})"
    volume = ref[..., 0] if ref.ndim == 4 and ref.shape[3] == 1 else ref
    assert volume.ndim == 3 and np.isfinite(volume).all() and (volume != 0).any()
    mask, _ = result
    np.testing.assert_array_equal(mask, volume != 0)


def check_load_labels(path, ok, ref):
    status, result = outcome(path, geometry.load_labels, path)
    if status == "error":
        return
    assert ok, f"load_labels read {path} that nibabel cannot read ({ref!r})"
    volume = ref[..., 0] if ref.ndim == 4 and ref.shape[3] == 1 else ref
    assert volume.ndim == 3 and np.isfinite(volume).all()
    assert np.array_equal(volume, np.round(volume))
    labels, values = result
    written = volume[volume > 0]
    expected_values = list(dict.fromkeys(written.tolist()))  # in order of first appearance
    assert values.tolist() == expected_values
    np.testing.assert_array_equal(values[labels], written)


def check_read_mean(path, ok, ref):
    status, result = outcome(path, nifti.read_mean, path)
    if status == "error":
        return
    assert ok, f"read_mean read {path} that nibabel cannot read ({ref!r})"
    mean, img = result
    assert ref.ndim in (3, 4) and img.shape == ref.shape
    expected = ref if ref.ndim == 3 else np.mean(ref, axis=-1)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(mean, expected, rtol=1e-6, equal_nan=True)


def check_bold_headers(path, header_shape):
    """Header readers: they may pass a file whose data are truncated (a .nii.gz)."""
    readable = header_shape is not None
    status, img = outcome(path, nifti.load_bold, path)
    if status == "ok":
        assert readable and len(header_shape) == 4 and header_shape[3] >= 2
        assert img.shape == header_shape
    status, count = outcome(path, series.count_volumes, path)
    if status == "ok":
        assert readable and count == header_shape[3] and count >= 2
    status, t_r = outcome(path, series.read_repetition_time, path)
    if status == "ok":
        assert readable, f"read_repetition_time read {path} whose header nibabel cannot read"
        if t_r is not None:
            assert np.isfinite(t_r) and t_r > 0, f"repetition time {t_r}"
            header = nb.load(path).header
            # The time bits of xyzt_units (the space bits may be corrupt).
            unit = nb.nifti1.unit_codes.label[int(header["xyzt_units"]) & 0x38]
            scale = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}[unit]
            zooms = header.get_zooms()
            assert t_r == pytest.approx(float(zooms[3]) * scale)


def check_open_image(path, header_shape):
    def header_of(path):
        with nifti.open_image(path) as img:
            return img.shape, img.affine

    status, result = outcome(path, header_of, path)
    if status == "ok":
        assert header_shape is not None, f"open_image opened {path} whose header nibabel refuses"
        shape, affine = result
        assert shape == header_shape
        np.testing.assert_array_equal(affine, nb.load(path).affine)


def check_read_series(path, ok, ref, mask_seed, with_mask, grid):
    rng = np.random.default_rng(mask_seed)

    def random_mask(shape):
        if min(shape) < 0 or np.prod(shape, dtype=object) > 10**6:
            shape = (2, 2, 2)  # a corrupt header: open_image must refuse it
        mask = rng.random(shape) < 0.6
        if mask.size:
            mask.flat[rng.integers(0, mask.size)] = True
        return mask

    drawn = {}

    def compute_mask(mean_img):
        drawn["mask"] = random_mask(mean_img.shape)
        return drawn["mask"]

    if with_mask:
        drawn["mask"] = random_mask(grid)  # on the grid of the header
        status, result = outcome(path, nifti.read_series, path, mask=drawn["mask"])
    else:
        status, result = outcome(path, nifti.read_series, path, compute_mask=compute_mask)
    if status == "error":
        return
    assert ok, f"read_series read {path} that nibabel cannot read ({ref!r})"
    assert ref.ndim == 4 and ref.shape[3] >= 2
    X, mask, mean_img, img = result
    np.testing.assert_array_equal(mask, drawn["mask"])
    expected = ref[mask]  # (n_voxels, n_volumes), voxels in C order
    assert np.isfinite(expected).all()
    assert X.dtype == nifti.series_dtype(ref.dtype)
    np.testing.assert_array_equal(X, expected.astype(X.dtype))
    np.testing.assert_allclose(np.asanyarray(mean_img.dataobj), np.mean(ref, axis=-1),
                               rtol=1e-6, equal_nan=True)


def check_every_nifti_reader(path, mask_seed=0):
    ok, ref = reference(nibabel_data, path)
    loaded, header_shape = reference(lambda p: nb.load(p).shape, path)
    grid = tuple(header_shape[:3]) if loaded and len(header_shape) >= 3 else (2, 2, 2)
    shape = tuple(header_shape) if loaded else None
    check_load_image(path, ok, ref, (3, 4), shape)
    check_load_image(path, ok, ref, 3, shape)
    check_load_mask(path, ok, ref)
    check_load_labels(path, ok, ref)
    check_read_mean(path, ok, ref)
    check_bold_headers(path, shape)
    check_open_image(path, shape)
    check_read_series(path, ok, ref, mask_seed, with_mask=True, grid=grid)
    check_read_series(path, ok, ref, mask_seed, with_mask=False, grid=grid)


@fuzz_settings(180)
@given(spec=nifti_specs(), mask_seed=st.integers(0, 2**16))
def test_valid_nifti_gives_nibabels_data_or_a_clear_error(spec, mask_seed):
    with tempfile.TemporaryDirectory() as folder:
        path = write_nifti(folder, spec)
        ok, ref = reference(nibabel_data, path)
        # nibabel reads a valid file unless it is misnamed (.nii.gz not
        # gzipped...), the intercept is NaN (with a valid slope) or RGB
        # voxels are scaled.
        scaled = np.isfinite(spec["slope"]) and spec["slope"] != 0
        assert ok or spec["misnamed"] or (scaled and not np.isfinite(spec["inter"])) \
            or (scaled and spec["dtype"].fields is not None), ref
        if ok:
            np.testing.assert_array_equal(ref.shape, spec["shape"])
        check_every_nifti_reader(path, mask_seed)


@fuzz_settings(150)
@given(spec=nifti_specs(), corrupt=truncations(), compressed=st.booleans(),
       mask_seed=st.integers(0, 2**16))
def test_truncated_nifti_gives_a_clear_error(spec, corrupt, compressed, mask_seed):
    """Cut before or after gzip: an InputError, or nibabel's data if enough is left."""
    with tempfile.TemporaryDirectory() as folder:
        path = write_nifti(folder, spec, corrupt,
                           corrupt_compressed=compressed and spec["gzip"])
        check_every_nifti_reader(path, mask_seed)


@fuzz_settings(200)
@given(spec=nifti_specs(), corrupt=overwrites(), compressed=st.booleans(),
       mask_seed=st.integers(0, 2**16))
def test_overwritten_nifti_gives_a_clear_error_or_nibabels_data(spec, corrupt, compressed,
                                                                 mask_seed):
    """Bytes overwritten (before or after gzip): InputError, or nibabel's data when harmless."""
    with tempfile.TemporaryDirectory() as folder:
        path = write_nifti(folder, spec, corrupt,
                           corrupt_compressed=compressed and spec["gzip"])
        check_every_nifti_reader(path, mask_seed)


@fuzz_settings(60)
@given(size=st.integers(0, 600), gz=st.booleans(), seed=st.integers(0, 2**32 - 1),
       magic=st.sampled_from([b"", b"\x5c\x01\x00\x00", b"\x00\x00\x01\x5c",
                              b"\x1c\x02\x00\x00"]))
def test_random_bytes_are_a_clear_error(size, gz, seed, magic):
    """Noise, possibly behind a valid ``sizeof_hdr`` (348 or 540) to get past the magic."""
    payload = magic + np.random.default_rng(seed).bytes(size)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("noise.nii.gz" if gz else "noise.nii")
        path.write_bytes(_gzip(payload) if gz else payload)
        check_every_nifti_reader(path)


# --------------------------------------------------------------------------
# Repetition time: the JSON sidecar
# --------------------------------------------------------------------------
SIDECARS = [
    b'{"RepetitionTime": 2.0}', b'{"RepetitionTime": 0.8}', b'{"RepetitionTime": 0}',
    b'{"RepetitionTime": -1}', b'{"RepetitionTime": NaN}', b'{"RepetitionTime": Infinity}',
    b'{"RepetitionTime": "2"}', b'{"RepetitionTime": true}', b'{"RepetitionTime": [2]}',
    b'{"RepetitionTime": null}', b'{"RepetitionTime": 1e400}', b'{}', b'[2.0]', b'2.0',
    b'"text"', b'null', b'{"RepetitionTime": 2.0', b'', b'\xff\xfe{"Repetition', b'{"a": 1}',
    b"[" * 100000 + b"]" * 100000, b'{"RepetitionTime": 2.0, "RepetitionTime": -1}',
]


@fuzz_settings(60)
@given(sidecar=st.sampled_from(SIDECARS), spec=nifti_specs(ndims=(4,)))
def test_repetition_time_is_positive_finite_or_a_clear_error(sidecar, spec):
    with tempfile.TemporaryDirectory() as folder:
        path = write_nifti(folder, spec, stem="sub-01_bold")
        (Path(folder) / "sub-01_bold.json").write_bytes(sidecar)

        sidecar_path = Path(folder) / "sub-01_bold.json"
        status, payload = outcome(sidecar_path, files.load_json, sidecar_path)
        if status == "ok":
            assert isinstance(payload, dict) and payload == json.loads(sidecar)
        status, t_r = outcome([path, sidecar_path], series.read_repetition_time, path)
        if status == "ok" and t_r is not None:
            assert isinstance(t_r, float) and np.isfinite(t_r) and t_r > 0, t_r
            try:
                stated = json.loads(sidecar).get("RepetitionTime")
            except Exception:
                stated = None
            if stated is not None:
                assert t_r == stated


# --------------------------------------------------------------------------
# GIFTI
# --------------------------------------------------------------------------
GIFTI_TYPES = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8}
ENCODINGS = ["GIFTI_ENCODING_B64GZ", "GIFTI_ENCODING_ASCII", "GIFTI_ENCODING_B64BIN"]
INTENTS = ["NIFTI_INTENT_TIME_SERIES", "NIFTI_INTENT_NONE", "NIFTI_INTENT_POINTSET",
           "NIFTI_INTENT_TRIANGLE", "NIFTI_INTENT_LABEL", "NIFTI_INTENT_SHAPE"]


@st.composite
def gifti_arrays(draw, n_vertices, intent=None, dtype=None, width="draw"):
    """One data array: 1D (``width`` None) or 2D, random unless given."""
    intent = intent or draw(st.sampled_from(INTENTS))
    dtype = dtype or draw(st.sampled_from(list(GIFTI_TYPES)))
    width = draw(st.sampled_from([None, 3, 2])) if width == "draw" else width
    shape = (n_vertices,) if width is None else (n_vertices, width)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["normal", "constant", "nonfinite"]))
    if GIFTI_TYPES[dtype] == np.float32:
        data = rng.standard_normal(shape).astype(np.float32)
        if kind == "nonfinite" and data.size:
            data.flat[rng.integers(0, data.size)] = np.nan
    else:
        data = rng.integers(0, 6, size=shape).astype(GIFTI_TYPES[dtype])
    if kind == "constant":
        data[...] = data.flat[0] if data.size else 0
    return {"data": data, "intent": intent, "dtype": dtype,
            "encoding": draw(st.sampled_from(ENCODINGS))}


@st.composite
def gifti_specs(draw, kind=None):
    kind = kind or draw(st.sampled_from(["func", "surf", "mixed"]))
    n_vertices = draw(st.sampled_from([6, 4, 1, 0, 9]))
    if kind == "func":
        n_arrays = draw(st.sampled_from([3, 1, 2, 5, 0]))
        one_2d = draw(st.booleans())
        if one_2d:
            arrays = [draw(gifti_arrays(n_vertices, "NIFTI_INTENT_TIME_SERIES", "float32",
                                        width=n_arrays or 1))]
        else:
            arrays = [draw(gifti_arrays(n_vertices, "NIFTI_INTENT_TIME_SERIES", "float32",
                                        width=None)) for _ in range(n_arrays)]
    elif kind == "surf":
        n_faces = draw(st.sampled_from([4, 1, 0]))
        points = draw(gifti_arrays(n_vertices, "NIFTI_INTENT_POINTSET", "float32", width=3))
        faces = draw(gifti_arrays(n_faces, "NIFTI_INTENT_TRIANGLE",
                                  draw(st.sampled_from(["int32", "float32", "uint8"])), width=3))
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        high = n_vertices + draw(st.sampled_from([0, 0, 1]))  # sometimes out of range
        faces["data"] = rng.integers(-draw(st.sampled_from([0, 0, 1])), max(high, 1),
                                     size=(n_faces, 3)).astype(faces["data"].dtype)
        arrays = [points, faces]
        if draw(st.booleans()):
            arrays.reverse()
        if draw(st.sampled_from([False, False, True])):
            arrays.append(draw(gifti_arrays(n_vertices)))
    else:
        arrays = [draw(gifti_arrays(draw(st.sampled_from([n_vertices, n_vertices, 2]))))
                  for _ in range(draw(st.integers(0, 4)))]
    return {"kind": kind, "arrays": arrays, "gzip": draw(st.sampled_from([False, False, True]))}


def gifti_bytes(spec) -> bytes:
    darrays = [nb.gifti.GiftiDataArray(array["data"], intent=array["intent"],
                                       datatype=array["dtype"], encoding=array["encoding"])
               for array in spec["arrays"]]
    return nb.gifti.GiftiImage(darrays=darrays).to_bytes()


class XmlMutation:
    """An edit of a GIFTI file's XML: valid variants of its syntax or broken ones."""

    def __init__(self, kind, fraction, value):
        self.kind, self.fraction, self.value = kind, fraction, value

    def __call__(self, xml: bytes) -> bytes:
        import re

        if self.kind == "truncate":
            return xml[: int(self.fraction * len(xml))]
        if self.kind == "overwrite":
            xml = bytearray(xml)
            if xml:
                xml[int(self.fraction * len(xml))] = self.value % 256
            return bytes(xml)
        if self.kind == "single quotes":  # valid XML
            return re.sub(rb'(\w+)="([^"]*)"', rb"\1='\2'", xml)
        if self.kind == "spaces around =":  # valid XML
            return re.sub(rb'(\w+)="([^"]*)"', rb'\1 = "\2"', xml)
        if self.kind == "dim":
            return re.sub(rb'Dim0="\d+"', f'Dim0="{self.value}"'.encode(), xml, count=1)
        if self.kind == "dimensionality":
            return re.sub(rb'Dimensionality="\d+"', f'Dimensionality="{self.value % 4}"'.encode(),
                          xml, count=1)
        if self.kind == "intent":
            return xml.replace(b"NIFTI_INTENT_TIME_SERIES", b"NIFTI_INTENT_BOGUS", 1)
        if self.kind == "datatype":
            new = [b"NIFTI_TYPE_BOGUS", b"NIFTI_TYPE_FLOAT64", b"NIFTI_TYPE_INT8",
                   b"NIFTI_TYPE_COMPLEX64"][self.value % 4]
            return re.sub(rb'DataType="\w+"', b'DataType="' + new + b'"', xml, count=1)
        if self.kind == "encoding":
            return re.sub(rb'Encoding="\w+"', b'Encoding="ASCII"', xml, count=1)
        if self.kind == "external":
            xml = re.sub(rb'Encoding="\w+"', b'Encoding="ExternalFileBinary"', xml, count=1)
            return xml.replace(b'ExternalFileName=""', b'ExternalFileName="missing.bin"', 1)
        if self.kind == "unclosed":
            return xml.replace(b"</DataArray>", b"", 1)
        if self.kind == "count":
            return re.sub(rb'NumberOfDataArrays="\d+"',
                          f'NumberOfDataArrays="{self.value}"'.encode(), xml)
        raise AssertionError(self.kind)

    def __repr__(self):
        return f"XmlMutation({self.kind!r}, {self.fraction}, {self.value})"


@st.composite
def xml_mutations(draw):
    kind = draw(st.sampled_from(["truncate", "single quotes", "spaces around =", "dim", "overwrite",
                                 "dimensionality", "intent", "datatype", "encoding", "external",
                                 "unclosed", "count"]))
    return XmlMutation(kind, draw(st.floats(0, 1, exclude_max=True)),
                       draw(st.sampled_from([0, 1, 7, 10**12, 2**31]) | st.integers(0, 300)))


def write_gifti(folder, spec, mutation=None, *, name="data") -> Path:
    xml = gifti_bytes(spec)
    if mutation is not None:
        xml = mutation(xml)
    suffix = {"func": ".func.gii", "surf": ".surf.gii"}.get(spec["kind"], ".shape.gii")
    path = Path(folder) / (name + suffix + (".gz" if spec["gzip"] else ""))
    path.write_bytes(_gzip(xml) if spec["gzip"] else xml)
    return path


def nibabel_gifti(path):
    if str(path).endswith(".gz"):
        return nb.gifti.GiftiImage.from_bytes(gzip.decompress(Path(path).read_bytes()))
    return nb.load(path)


def reference_series(path) -> np.ndarray:
    """load_series' documented result, from nibabel's data arrays."""
    arrays = [np.asarray(darray.data) for darray in nibabel_gifti(path).darrays]
    if len(arrays) == 1 and arrays[0].ndim == 2:
        X = arrays[0]
    else:
        assert arrays and all(a.ndim == 1 and a.shape == arrays[0].shape for a in arrays)
        X = np.stack(arrays, axis=1)
    assert np.issubdtype(X.dtype, np.number)
    return X


def reference_mesh(path):
    img = nibabel_gifti(path)
    points = img.get_arrays_from_intent("NIFTI_INTENT_POINTSET")
    triangles = img.get_arrays_from_intent("NIFTI_INTENT_TRIANGLE")
    assert len(points) == 1 and len(triangles) == 1
    coordinates, faces = np.asarray(points[0].data), np.asarray(triangles[0].data)
    assert coordinates.ndim == 2 and coordinates.shape[1] == 3
    assert faces.ndim == 2 and faces.shape[1] == 3
    assert faces.shape[0] > 0  # a surface without triangles: no mesh
    assert np.issubdtype(faces.dtype, np.integer) or np.array_equal(faces, np.round(faces))
    assert faces.min() >= 0 and faces.max() < coordinates.shape[0]
    return coordinates, faces


def check_gifti_readers(path):
    ok, X = reference(reference_series, path)
    status, count = outcome(path, series.count_volumes, path)
    if status == "ok" and ok:
        assert count == X.shape[1]
    status, shape = outcome(path, gifti.series_shape, path)
    if status == "ok":
        assert isinstance(shape, tuple) and len(shape) == 2
        assert all(isinstance(n, int) and n >= 0 for n in shape), shape
        if ok:  # a peek at the XML: right whenever the file is readable
            assert shape == X.shape, f"series_shape {shape}, the series is {X.shape}"
    status, values = outcome(path, gifti.load_series, path)
    if status == "ok":
        assert ok, f"load_series read {path} that nibabel cannot read ({X!r})"
        np.testing.assert_array_equal(values, X)
    mesh_ok, mesh_ref = reference(reference_mesh, path)
    status, mesh = outcome(path, gifti.load_mesh, path)
    if status == "ok":
        assert mesh_ok, f"load_mesh read {path}, not a valid mesh ({mesh_ref!r})"
        np.testing.assert_array_equal(mesh.coordinates, mesh_ref[0])
        np.testing.assert_array_equal(mesh.faces, mesh_ref[1])
    status, shape = outcome(path, gifti.mesh_shape, path)
    if status == "ok" and mesh_ok:  # a peek at the XML: right whenever the mesh is readable
        assert shape == (len(mesh_ref[0]), len(mesh_ref[1])), shape
    if mesh_ok:  # what load_mesh reads, mesh_shape peeks at
        assert status == "ok", f"mesh_shape refused {path}, a valid mesh: {shape!r}"
    return ok, X


def check_hemisphere_series(left, right, meshes=None):
    def expected():
        parts, vertices = [], []
        for index, path in enumerate((left, right)):
            X = reference_series(path)
            assert meshes is None or X.shape[0] == meshes[index].n_vertices
            assert index == 0 or X.shape[1] == parts[0].shape[1]
            # The vertices with data: finite and not constant over time.
            kept = np.array([v for v, row in enumerate(X)
                             if np.isfinite(row).all() and row.max() > row.min()], dtype=int)
            assert kept.size
            parts.append(X[kept])
            vertices.append(kept)
        return np.concatenate(parts), vertices

    ok, ref = reference(expected)
    status, result = outcome([left, right], gifti.load_hemisphere_series, left, right,
                             meshes=meshes)
    if status == "ok":
        assert ok, f"load_hemisphere_series read {left}, {right} ({ref!r})"
        X, vertices = ref
        np.testing.assert_array_equal(result.X, X)
        for got, want in zip(result.vertices, vertices):
            np.testing.assert_array_equal(got, want)


@fuzz_settings(150)
@given(spec=gifti_specs())
def test_valid_gifti_gives_nibabels_arrays_or_a_clear_error(spec):
    with tempfile.TemporaryDirectory() as folder:
        path = write_gifti(folder, spec)
        check_gifti_readers(path)


@fuzz_settings(200)
@given(spec=gifti_specs(), mutation=xml_mutations())
def test_corrupt_gifti_gives_a_clear_error(spec, mutation):
    with tempfile.TemporaryDirectory() as folder:
        path = write_gifti(folder, spec, mutation)
        check_gifti_readers(path)


@fuzz_settings(100)
@given(left=gifti_specs("func"), right=gifti_specs("func"), mutation=xml_mutations(),
       with_meshes=st.booleans(), n_mesh=st.sampled_from([None, 6, 4]))
def test_hemisphere_series_are_both_files_or_a_clear_error(left, right, mutation, with_meshes,
                                                            n_mesh):
    with tempfile.TemporaryDirectory() as folder:
        left_path = write_gifti(folder, left, name="lh")
        right_path = write_gifti(folder, right, mutation if with_meshes else None, name="rh")
        meshes = None
        if n_mesh is not None:
            meshes = [gifti.Mesh(np.zeros((n_mesh, 3)), np.zeros((0, 3), int))] * 2
        check_hemisphere_series(left_path, right_path, meshes)


# --------------------------------------------------------------------------
# CIFTI-2
# --------------------------------------------------------------------------
CIFTI_SUFFIX = {"series": ".dtseries.nii", "scalar": ".dscalar.nii", "label": ".dlabel.nii"}


@st.composite
def cifti_specs(draw):
    return {
        "structures": draw(st.sampled_from([("CortexLeft",), ("CortexLeft", "CortexRight"),
                                            ("CortexLeft", "ThalamusLeft"), ("ThalamusLeft",),
                                            ("CortexLeft", "CortexRight", "ThalamusLeft")])),
        "first_axis": draw(st.sampled_from(["series", "series", "scalar", "label"])),
        "n_rows": draw(st.sampled_from([3, 2, 1, 5])),
        "step": draw(st.sampled_from([2.0, 0.8, 0.0, -1.0, np.nan, np.inf])),
        "extra_columns": draw(st.sampled_from([0, 0, 0, 1, -1, 3])),
        "nonfinite": draw(st.sampled_from([False, False, True])),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def cifti_image(spec):
    rng = np.random.default_rng(spec["seed"])
    models = None
    for name in spec["structures"]:
        if name.startswith("Cortex"):
            mask = rng.random(6) < 0.7
            mask[rng.integers(0, 6)] = True
            model = cifti2.BrainModelAxis.from_mask(mask, name=name)
        else:
            mask = rng.random((2, 2, 2)) < 0.6
            mask[0, 0, 0] = True
            model = cifti2.BrainModelAxis.from_mask(mask, name=name, affine=np.diag([2, 2, 2, 1]))
        models = model if models is None else models + model
    n_rows = spec["n_rows"]
    if spec["first_axis"] == "series":
        first = cifti2.SeriesAxis(start=0.0, step=spec["step"], size=n_rows, unit="SECOND")
    elif spec["first_axis"] == "scalar":
        first = cifti2.ScalarAxis([f"map{i}" for i in range(n_rows)])
    else:
        labels = {0: ("???", (1.0, 1.0, 1.0, 0.0)), 1: ("a", (1.0, 0.0, 0.0, 1.0)),
                  2: ("b", (0.0, 1.0, 0.0, 1.0))}
        first = cifti2.LabelAxis([f"map{i}" for i in range(n_rows)], [labels] * n_rows)
    if spec["first_axis"] == "label":
        data = rng.integers(0, 3, size=(n_rows, len(models))).astype(np.float32)
    else:
        data = rng.standard_normal((n_rows, len(models))).astype(np.float32)
    if spec["nonfinite"]:
        data.flat[rng.integers(0, data.size)] = np.nan
    return cifti2.Cifti2Image(data, header=cifti2.Cifti2Header.from_axes((first, models)))


def cifti_bytes(spec) -> bytes:
    """A CIFTI-2 file; with ``extra_columns``, its data have that many more (or fewer)
    columns than its brain models have grayordinates (dim[6] and the data patched)."""
    import struct

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tmp.nii"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb.save(cifti_image(spec), path)
        raw = bytearray(path.read_bytes())
    extra = spec["extra_columns"]
    dims = list(struct.unpack("<8q", raw[16:80]))
    if extra and dims[6] + extra >= 1:
        dims[6] += extra
        raw[16:80] = struct.pack("<8q", *dims)
        n_data = dims[5] * dims[6] * 4
        offset = struct.unpack("<q", raw[168:176])[0]
        raw = raw[:offset] + (bytes(raw[offset:]) + b"\x00" * n_data)[:n_data]
    return bytes(raw)


class DigitMutation:
    """One digit of the CIFTI XML changed: counts, offsets, indices disagree."""

    def __init__(self, fraction, digit):
        self.fraction, self.digit = fraction, digit

    def __call__(self, raw: bytes) -> bytes:
        start = raw.find(b"<CIFTI")
        stop = raw.find(b"</CIFTI>")
        if start < 0 or stop < 0:
            return raw
        digits = [start + i for i, c in enumerate(raw[start:stop]) if chr(c).isdigit()]
        raw = bytearray(raw)
        raw[digits[int(self.fraction * len(digits))]] = ord(str(self.digit))
        return bytes(raw)

    def __repr__(self):
        return f"DigitMutation({self.fraction}, {self.digit})"


@st.composite
def cifti_corruptions(draw):
    kind = draw(st.sampled_from(["digit", "truncate", "overwrite"]))
    if kind == "digit":
        return DigitMutation(draw(st.floats(0, 1, exclude_max=True)), draw(st.integers(0, 9)))
    if kind == "truncate":
        return draw(truncations())
    return draw(overwrites())


def reference_cifti(path):
    img = nb.load(path)
    assert isinstance(img, cifti2.Cifti2Image) and len(img.shape) == 2
    axes = [img.header.get_axis(i) for i in range(2)]
    assert isinstance(axes[1], cifti2.BrainModelAxis)
    data = np.asanyarray(img.dataobj)
    assert data.shape == (len(axes[0]), len(axes[1])), "data and brain models disagree"
    return img, axes, data


def check_cifti_readers(path):
    ok, ref = reference(reference_cifti, path)
    status, img = outcome(path, cifti.load_cifti, path)
    if status == "ok":
        assert ok, f"load_cifti read {path} that nibabel cannot read ({ref!r})"
        assert img.shape == ref[2].shape
    status, dense = outcome(path, cifti.load_dtseries, path)
    if status == "ok":
        assert ok, f"load_dtseries read {path} that nibabel cannot read ({ref!r})"
        _, axes, data = ref
        assert isinstance(axes[0], cifti2.SeriesAxis) and np.isfinite(data).all()
        np.testing.assert_array_equal(dense.X, data.T)
        assert_same_grayordinates(dense.brain_models, axes[1])
        got, want = dense.series, axes[0]  # a NaN step is not equal to itself
        assert (got.start, got.size, got.unit) == (want.start, want.size, want.unit)
        np.testing.assert_array_equal(got.step, want.step)
    status, count = outcome(path, series.count_volumes, path)
    if status == "ok":
        assert ok and count == ref[2].shape[0]
    status, t_r = outcome(path, series.read_repetition_time, path)
    if status == "ok" and t_r is not None:
        assert ok and isinstance(ref[1][0], cifti2.SeriesAxis)
        assert np.isfinite(t_r) and t_r > 0 and t_r == ref[1][0].step
    status, result = outcome(path, geometry.load_mask, path)
    if status == "ok":
        assert ok, f"load_mask read {path} that nibabel cannot read ({ref!r})"
        values = ref[2][0]
        assert np.isfinite(values).all() and (values != 0).any()
        np.testing.assert_array_equal(result[0], values != 0)
    status, result = outcome(path, geometry.load_labels, path)
    if status == "ok":
        assert ok, f"load_labels read {path} that nibabel cannot read ({ref!r})"
        values = ref[2][0]
        assert np.isfinite(values).all() and np.array_equal(values, np.round(values))
        np.testing.assert_array_equal(result[1][result[0]], values[values > 0])


def write_cifti(folder, spec, corrupt=None) -> Path:
    raw = cifti_bytes(spec)
    if corrupt is not None:
        raw = corrupt(raw)
    path = Path(folder) / ("data" + CIFTI_SUFFIX[spec["first_axis"]])
    path.write_bytes(raw)
    return path


@fuzz_settings(100)
@given(spec=cifti_specs())
def test_cifti_gives_nibabels_data_or_a_clear_error(spec):
    """Valid files, and files whose data have the wrong number of columns."""
    with tempfile.TemporaryDirectory() as folder:
        path = write_cifti(folder, spec)
        if not spec["extra_columns"] and not spec["nonfinite"]:
            assert reference(reference_cifti, path)[0]
        check_cifti_readers(path)


@fuzz_settings(120)
@given(spec=cifti_specs(), corrupt=cifti_corruptions())
# Found by this test: a broken sizeof_hdr, which nibabel.load refuses to sniff.
@example(spec={"structures": ("CortexLeft",), "first_axis": "series", "n_rows": 3, "step": 2.0,
               "extra_columns": 0, "nonfinite": False, "seed": 0},
         corrupt=Corruption("anywhere", cut=0.5, positions=[0.0], values=[255]))
def test_corrupt_cifti_gives_a_clear_error(spec, corrupt):
    with tempfile.TemporaryDirectory() as folder:
        path = write_cifti(folder, spec, corrupt)
        check_cifti_readers(path)


# --------------------------------------------------------------------------
# Confounds (TSV)
# --------------------------------------------------------------------------
#: Cells and the value they mean (None: not a number, the table is unusable).
CELLS = {"0.5": 0.5, "-2": -2.0, "3e-3": 3e-3, "17": 17.0, "n/a": np.nan, "": np.nan,
         "abc": None, "inf": np.inf, "-inf": -np.inf, "1e400": np.inf}


@st.composite
def confound_tables(draw):
    n_columns = draw(st.sampled_from([3, 1, 2, 0]))
    names = draw(st.lists(st.sampled_from(["trans_x", "rot_y", "csf", "fd", "a b", "1"]),
                          min_size=n_columns, max_size=n_columns, unique=True))
    n_rows = draw(st.sampled_from([4, 1, 2, 0, 7]))
    cell = st.sampled_from(["0.5", "-2", "3e-3", "17"]) | st.sampled_from(list(CELLS))
    rows = [draw(st.lists(cell, min_size=n_columns, max_size=n_columns)) for _ in range(n_rows)]
    if n_columns == 1:  # an empty cell alone is a blank line, which TSV readers skip
        rows = [["n/a" if c == "" else c for c in row] for row in rows]
    ragged = draw(st.sampled_from([None, None, None, "long", "short"]))
    if ragged and rows and n_columns > 1:  # (a short row of one field is a blank line)
        index = draw(st.integers(0, n_rows - 1))
        rows[index] = rows[index] + ["1"] if ragged == "long" else rows[index][:-1]
    return {
        "names": names, "rows": rows, "ragged": bool(ragged and rows and n_columns > 1),
        "n_volumes": max(1, n_rows + draw(st.sampled_from([0, 0, 0, 1, -1]))),
        "columns": draw(st.sampled_from([None, "first", "missing", "all"])),
        "newline": draw(st.sampled_from(["\n", "\r\n"])),
    }


def confounds_text(table) -> bytes:
    lines = ["\t".join(table["names"])] + ["\t".join(row) for row in table["rows"]]
    return (table["newline"].join(lines) + table["newline"]).encode()


def confound_columns(table):
    names = table["names"]
    return {None: None, "first": names[:1], "missing": ["not_a_column"], "all": names}[
        table["columns"]]


def expected_confounds(table):
    """The confounds a table means, or None when it must be refused."""
    names, rows, columns = table["names"], table["rows"], confound_columns(table)
    if not names or table["ragged"] or len(rows) != table["n_volumes"]:
        return None
    if columns and any(name not in names for name in columns):
        return None
    selected = [names.index(name) for name in (columns or names)]
    values = np.array([[CELLS[row[i]] if CELLS[row[i]] is not None else np.inf * 0 + 1j
                        for i in selected] for row in rows], dtype=complex)
    if np.iscomplex(values).any():
        return None  # a cell that is not a number
    values = values.real.reshape(len(rows), len(selected))
    if np.isinf(values).any() or np.isnan(values).all(axis=0).any():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.where(np.isnan(values), np.nanmean(values, axis=0), values)


def check_load_confounds(path, table, corrupted):
    expected = None if corrupted else expected_confounds(table)
    status, confounds = outcome(path, tables.load_confounds, path, table["n_volumes"],
                                columns=confound_columns(table))
    if status == "ok":
        assert confounds.dtype == np.float64 and confounds.ndim == 2
        assert confounds.shape[0] == table["n_volumes"] and np.isfinite(confounds).all()
        if not corrupted:
            assert expected is not None, f"load_confounds took a table it must refuse: {table}"
            np.testing.assert_allclose(confounds, expected, rtol=1e-12)
    elif not corrupted:
        assert expected is None, f"load_confounds refused a valid table: {confounds}"


@fuzz_settings(200)
@given(table=confound_tables())
def test_confounds_are_the_tables_numbers_or_a_clear_error(table):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sub-01_desc-confounds_timeseries.tsv"
        path.write_bytes(confounds_text(table))
        check_load_confounds(path, table, corrupted=False)


@fuzz_settings(100)
@given(table=confound_tables(), corrupt=truncations() | overwrites(header_size=64))
def test_corrupt_confounds_are_a_clear_error(table, corrupt):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sub-01_desc-confounds_timeseries.tsv"
        path.write_bytes(corrupt(confounds_text(table)))
        check_load_confounds(path, table, corrupted=True)


# --------------------------------------------------------------------------
# Bugs of read_series found by the fuzzing, fixed
# --------------------------------------------------------------------------
def test_read_series_reads_a_nifti2_series_with_a_negative_pixdim(tmp_path):
    img = nb.Nifti2Image(np.arange(54, dtype=np.float32).reshape(3, 3, 2, 3), np.eye(4))
    img.header["pixdim"][4] = -2.0
    nb.save(img, tmp_path / "bold.nii")
    X, *_ = nifti.read_series(tmp_path / "bold.nii", mask=np.ones((3, 3, 2), bool))
    np.testing.assert_array_equal(X, np.asanyarray(img.dataobj).reshape(18, 3))


@pytest.mark.parametrize("shape", [(2, 2, 2), (4, 4, 4)])
def test_read_series_refuses_a_mask_of_another_grid(tmp_path, shape):
    nb.save(nb.Nifti1Image(np.ones((3, 3, 3, 3), np.float32), np.eye(4)), tmp_path / "bold.nii")
    with pytest.raises(InputError, match="bold.nii"):
        nifti.read_series(tmp_path / "bold.nii", mask=np.ones(shape, bool))
