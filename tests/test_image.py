import gzip
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from nipype_ward.io import arrays, files, geometry, nifti, nifti_write, series, tables
from nipype_ward.settings import cap_mem_gb, threads_per_node


def _save(tmp_path, name, data, affine=None):
    path = tmp_path / name
    nb.save(nb.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine), path)
    return path


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.nii.gz"
    with pytest.raises(nifti.InputError, match="nope.nii.gz: no such file"):
        nifti.load_bold(missing)


def test_corrupt_file_is_named(tmp_path):
    bad = tmp_path / "corrupt.nii.gz"
    bad.write_bytes(b"not a nifti at all")
    with pytest.raises(nifti.InputError, match="corrupt.nii.gz: not a readable NIfTI"):
        nifti.load_bold(bad)


def test_3d_where_4d_is_needed(tmp_path):
    path = _save(tmp_path, "vol.nii.gz", np.ones((3, 3, 3), np.float32))
    with pytest.raises(nifti.InputError, match=r"vol.nii.gz: expected a 4D image, got shape \(3, 3, 3\)"):
        nifti.load_bold(path)


def test_mask_on_other_grid(tmp_path):
    bold = _save(tmp_path, "bold.nii.gz", np.ones((3, 3, 3, 4), np.float32))
    mask = _save(tmp_path, "mask.nii.gz", np.ones((3, 3, 2), np.uint8))
    shifted = _save(tmp_path, "shifted.nii.gz", np.ones((3, 3, 3), np.uint8), np.diag([2, 2, 2, 1]))
    with pytest.raises(nifti.InputError, match=r"mask.nii.gz: grid \(3, 3, 2\) differs .*bold.nii.gz"):
        nifti.read_series(bold, mask=geometry.load_mask(mask)[0], mask_path=mask)
    with pytest.raises(nifti.InputError, match="shifted.nii.gz: affine differs"):
        nifti.read_series(bold, mask=geometry.load_mask(shifted)[0], mask_path=shifted)


def test_empty_mask(tmp_path):
    mask = _save(tmp_path, "empty.nii.gz", np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(nifti.InputError, match="empty.nii.gz: mask is empty"):
        geometry.load_mask(mask)


def test_nan_in_the_data(tmp_path):
    data = np.ones((3, 3, 3, 4), np.float32)
    data[1, 1, 1, 2] = np.nan
    data[0, 0, 0, 0] = np.inf
    bold = _save(tmp_path, "nan_bold.nii.gz", data)
    mask = _save(tmp_path, "mask.nii.gz", np.ones((3, 3, 3), np.uint8))
    with pytest.raises(nifti.InputError, match="nan_bold.nii.gz: 2 of the mask.s 27 voxels have NaN"):
        nifti.read_series(bold, mask=geometry.load_mask(mask)[0], mask_path=mask)


def test_nan_outside_the_mask_is_fine(tmp_path):
    data = np.ones((3, 3, 3, 4), np.float32)
    data[0, 0, 0] = np.nan
    mask = np.ones((3, 3, 3), np.uint8)
    mask[0, 0, 0] = 0
    X, m, _, _ = nifti.read_series(_save(tmp_path, "bold.nii.gz", data), mask=mask > 0)
    assert X.shape == (26, 4) and np.isfinite(X).all() and m.sum() == 26


def test_labels_round_trip(tmp_path, rng):
    mask = rng.random((4, 5, 6)) > 0.3
    labels = rng.integers(0, 7, int(mask.sum()))
    labels = np.unique(labels, return_inverse=True)[1]  # every label used
    reference = nb.Nifti1Image(np.zeros((4, 5, 6, 2), np.int16), np.diag([3, 3, 3, 1]))
    path = geometry.VolumeGeometry(mask, reference).save_labels(labels, tmp_path / "labels.nii.gz")
    img = nb.load(path)
    assert img.get_data_dtype() == np.int32
    assert np.allclose(img.affine, reference.affine)
    data = np.asanyarray(img.dataobj)
    assert (data[~mask] == 0).all() and data[mask].min() == 1
    read, values = geometry.load_labels(path, mask=mask)
    # Same partition, numbered by first appearance.
    assert len(np.unique(read)) == len(np.unique(labels))
    pairs = set(zip(read.tolist(), labels.tolist()))
    assert len(pairs) == len(np.unique(labels))
    assert (values[read] == data[mask]).all()


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.nii.gz"
    target.write_text("the user's previous file")

    def explode(tmp):
        tmp.write_text("half written")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.save_atomically(explode, target)
    assert target.read_text() == "the user's previous file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii.gz"]


def test_a_large_working_file_is_delivered_as_a_link_else_copied(tmp_path):
    """copy_atomically(link=True): a large file becomes one file under two names on one
    file system, a copy across two; delivered again, nothing left behind; the source
    replaced as this package's writers replace files, the delivery unchanged. A small
    file (labels, a figure) is copied."""
    large = files.LINK_FROM_BYTES
    first, second = b"1" * large, b"2" * large
    source = tmp_path / "work" / "bold_ward20_compressed.nii.gz"
    source.parent.mkdir()
    source.write_bytes(first)
    out = tmp_path / "out"
    out.mkdir()
    target = files.copy_atomically(source, out / "ward20_compressed.nii.gz", link=True)
    assert target.read_bytes() == first
    assert target.stat().st_ino == source.stat().st_ino and source.stat().st_nlink == 2
    # Again onto the same file (a rename of a link onto its own file does nothing).
    files.copy_atomically(source, target, link=True)
    assert sorted(p.name for p in out.iterdir()) == ["ward20_compressed.nii.gz"]
    assert source.stat().st_nlink == 2
    # A node run again writes a new file and renames it onto the old name.
    files.save_atomically(lambda tmp: Path(tmp).write_bytes(second), source)
    assert target.read_bytes() == first and target.stat().st_nlink == 1
    # A small file: copied.
    labels = tmp_path / "work" / "bold_ward20.nii.gz"
    labels.write_bytes(b"\x01" * (large - 1))
    copied = files.copy_atomically(labels, out / "ward20_labels.nii.gz", link=True)
    assert copied.read_bytes() == labels.read_bytes() and labels.stat().st_nlink == 1
    # Without link, a copy even on one file system.
    copied = files.copy_atomically(source, out / "copy.nii.gz")
    assert copied.read_bytes() == second and source.stat().st_nlink == 1
    # Across file systems (tmpfs here), a copy.
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system at /dev/shm")
    other = Path(tempfile.mkdtemp(dir=shm))
    try:
        copied = files.copy_atomically(source, other / "ward20.nii.gz", link=True)
        assert copied.read_bytes() == second and copied.stat().st_nlink == 1
        assert sorted(p.name for p in other.iterdir()) == ["ward20.nii.gz"]
    finally:
        shutil.rmtree(other)


def test_volumes_written_one_at_a_time(tmp_path, rng):
    """save_volumes writes what nibabel reads back; fewer volumes than promised leave nothing."""
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-10, -20, 5]
    reference = nb.Nifti1Image(np.zeros((4, 5, 3), np.uint8), affine)
    reference.set_qform(affine, code=4)
    reference.set_sform(affine, code=4)
    data = rng.standard_normal((4, 5, 3, 7)).astype(np.float32)
    path = nifti_write.save_volumes((data[..., t] for t in range(7)), reference,
                              tmp_path / "bold.nii.gz", n_volumes=7, t_r=0.8)
    img = nb.load(path)
    np.testing.assert_array_equal(np.asarray(img.dataobj), data)
    np.testing.assert_array_equal(img.affine, affine)
    # Stored as float32 (nibabel < 5.3 gives them back as numpy float32).
    np.testing.assert_allclose(img.header.get_zooms(), (2.0, 2.0, 2.0, 0.8), rtol=1e-7)
    assert int(img.header["sform_code"]) == int(img.header["qform_code"]) == 4

    with pytest.raises(ValueError, match="6 volumes written, the header says 7"):
        nifti_write.save_volumes((data[..., t] for t in range(6)), reference,
                           tmp_path / "short.nii.gz", n_volumes=7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bold.nii.gz"]


def _epi_run(tmp_path):
    from nipype_ward.datasets import simulate_rest_fmri

    sim = simulate_rest_fmri(resolution=6, n_volumes=40, n_regions=20, random_state=1)
    path = tmp_path / "bold.nii.gz"
    nb.save(sim.bold_img, path)
    return path, np.asarray(sim.bold_img.dataobj)


def test_epi_masked_run_read_in_one_pass_is_nilearns(tmp_path, monkeypatch):
    """Without a mask, the run is read once (no spill file), as nilearn masks it.

    Reference: nilearn's mean_img, compute_epi_mask and apply_mask.
    """
    from nilearn.image import mean_img
    from nilearn.masking import apply_mask, compute_epi_mask

    from nipype_ward.io import masking

    path, data = _epi_run(tmp_path)

    def no_spill(*args, **kwargs):
        raise AssertionError("the run went through a spill file")

    monkeypatch.setattr(nifti.tempfile, "TemporaryFile", no_spill)
    X, mask, mean, _ = nifti.read_series(path, compute_mask=masking.compute_epi_mask)
    ref_mask = compute_epi_mask(mean_img(nb.load(path), copy_header=True))
    np.testing.assert_array_equal(mask, np.asarray(ref_mask.dataobj) > 0)
    np.testing.assert_array_equal(X, apply_mask(nb.load(path), ref_mask).T)
    assert X.flags.c_contiguous and X.flags.owndata and X.base is None
    np.testing.assert_array_equal(np.asarray(mean.dataobj), data.mean(axis=-1))


def test_mask_beyond_the_guess_and_no_guess_read_all_the_same(tmp_path):
    """A mask reaching past the first block's (second pass), or none from it (spill file)."""
    path, data = _epi_run(tmp_path)
    small = np.zeros(data.shape[:3], bool)
    small[10:12, 10:12, 10:12] = True
    large = np.zeros(data.shape[:3], bool)
    large[2:-2, 3:-3, 2:-2] = True  # far beyond small grown by the margin
    calls = []

    def beyond(mean_img):
        calls.append(mean_img)
        return small if len(calls) == 1 else large

    X, mask, *_ = nifti.read_series(path, compute_mask=beyond)
    assert len(calls) == 2
    np.testing.assert_array_equal(mask, large)
    np.testing.assert_array_equal(X, data[large])

    def no_guess(mean_img):
        calls.append(mean_img)
        if len(calls) == 3:
            raise nifti.InputError(path, "no brain in the first volumes")
        return large

    X, mask, *_ = nifti.read_series(path, compute_mask=no_guess)
    np.testing.assert_array_equal(X, data[large])


@pytest.mark.parametrize("piece_bytes", [nifti_write.GZIP_BLOCK_BYTES, 100_003])
def test_series_written_on_threads_are_the_same_bytes(piece_bytes, tmp_path, rng, monkeypatch):
    """A 4D .nii.gz deflated by one, two or three threads of its own: the same bytes (pieces
    each with the 32 kB before it as dictionary), a gzip stream that Python's zlib (its CRC-32
    and length checked), the gzip tool and nibabel read back. 100,003 bytes: pieces that cut
    volumes and blocks of volumes anywhere; 4 MB: one piece per block of volumes here."""
    monkeypatch.setattr(nifti_write, "GZIP_BLOCK_BYTES", piece_bytes)
    mask = rng.random((20, 18, 16)) < 0.6
    values = rng.normal(100, 10, (int(mask.sum()), 120)).astype(np.float32)  # 2.7 MB raw
    reference = nb.Nifti1Image(np.zeros(mask.shape, np.float32), np.diag([2, 2, 2, 1]))
    paths = []
    for threads in (1, 2, 3):
        paths.append(nifti_write.save_series_image(
            lambda start, stop: values[:, start:stop], mask, reference,
            tmp_path / f"threads{threads}.nii.gz", n_volumes=120, t_r=2.0, threads=threads))
    assert paths[0].read_bytes() == paths[1].read_bytes() == paths[2].read_bytes()
    img = nb.load(paths[0])
    assert img.shape == mask.shape + (120,) and img.header.get_zooms()[3] == 2.0
    data = img.get_fdata(dtype=np.float32)
    np.testing.assert_array_equal(data[mask], values)
    assert not data[~mask].any()
    raw = gzip.decompress(paths[0].read_bytes())
    assert len(raw) == 352 + 20 * 18 * 16 * 120 * 4
    expected = np.zeros(mask.shape + (120,), np.float32)
    expected[mask] = values
    assert raw[352:] == expected.tobytes(order="F")
    assert subprocess.run(["gzip", "-t", str(paths[0])]).returncode == 0


@pytest.mark.parametrize("stored", ["u1", "i1", "<i2", "<u2", "<i4", "<u4", "<f4", "<f8", ">i2"])
def test_series_gathered_from_every_stored_type_is_nibabels(stored, tmp_path, monkeypatch, rng):
    """The compiled gather reads the native C types of NIfTI (the others, here big-endian,
    go through numpy): nibabel's values inside the mask, over more than one block of volumes."""
    from nipype_ward.io import _volumes

    calls = []
    monkeypatch.setattr(nifti, "gather_volumes",
                        lambda *a: calls.append(a[2].dtype) or _volumes.gather_volumes(*a))
    n_volumes = 2 * nifti.BLOCK_VOLUMES + 5
    info = np.iinfo(stored) if np.dtype(stored).kind in "iu" else None
    low, high = (info.min, info.max) if info else (-1e3, 1e3)
    data = rng.uniform(low, high, (9, 8, 7, n_volumes)).astype(stored)
    mask = rng.random((9, 8, 7)) < 0.6
    path = tmp_path / "bold.nii.gz"
    header = nb.Nifti1Header(endianness=np.dtype(stored).byteorder.replace("|", "<"))
    img = nb.Nifti1Image(data, np.eye(4), header)
    img.header.set_data_dtype(stored)
    img.header.set_slope_inter(1.0, 0.0)
    nb.save(img, path)
    assert nb.load(path).dataobj.dtype == np.dtype(stored)  # as stored
    X, *_ = nifti.read_series(path, mask=mask)
    expected = nb.load(path).get_fdata()[mask]
    np.testing.assert_array_equal(X, expected.astype(X.dtype))
    native = np.dtype(stored).isnative
    assert calls == ([np.dtype(stored)] * 3 if native else [])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_series_scattered_into_volumes_is_numpys_unmasking(dtype, tmp_path, rng):
    """Values put back on the grid a block of volumes at a time (compiled for float32 and
    float64, numpy for the rest) are numpy's ``volume[mask] = values``; outside is 0."""
    mask = rng.random((9, 8, 7)) < 0.6
    n_volumes = 2 * nifti.BLOCK_VOLUMES + 5
    values = rng.normal(0, 100, (int(mask.sum()), n_volumes)).astype(dtype)
    reference = nb.Nifti1Image(np.zeros(mask.shape, np.float32), np.eye(4))
    path = nifti_write.save_series_image(lambda start, stop: values[:, start:stop], mask,
                                         reference, tmp_path / "out.nii.gz",
                                         n_volumes=n_volumes, dtype=dtype)
    expected = np.zeros(mask.shape + (n_volumes,), dtype)
    expected[mask] = values
    written = np.asanyarray(nb.load(path).dataobj)
    assert written.dtype == dtype
    np.testing.assert_array_equal(written, expected)
    # Each voxel a row of a table (a parcel's mean): numpy's volume[mask] = means[labels].
    means = rng.normal(0, 100, (5, n_volumes)).astype(dtype)
    labels = rng.integers(0, 5, int(mask.sum()))
    path = nifti_write.save_series_image(lambda start, stop: means[:, start:stop], mask,
                                         reference, tmp_path / "parcels.nii.gz",
                                         n_volumes=n_volumes, dtype=dtype, rows_of=labels)
    expected[mask] = means[labels]
    np.testing.assert_array_equal(np.asanyarray(nb.load(path).dataobj), expected)
    with pytest.raises((ValueError, IndexError), match="not a row of the values|out of bounds"):
        nifti_write.save_series_image(lambda start, stop: means[:, start:stop], mask,
                                      reference, tmp_path / "bad.nii.gz", n_volumes=n_volumes,
                                      dtype=dtype, rows_of=labels + 1)
    assert not (tmp_path / "bad.nii.gz").exists()


@pytest.mark.parametrize("parallel", [False, True])
# ISA-L finds the corruption at the end (its CRC): the volumes before it are garbage.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_series_read_by_isal_or_rapidgzip_is_nibabels(parallel, tmp_path, monkeypatch, rng):
    """Both decompressors give nibabel's values; a truncated or corrupt file is named.

    rapidgzip takes files from PARALLEL_GZIP_BYTES on: lowered here to this
    small file, on 2 CPUs. Reference: nibabel's get_fdata of the same file.
    """
    import rapidgzip
    from isal import igzip

    monkeypatch.setattr(nifti, "PARALLEL_GZIP_BYTES", 0 if parallel else 2**62)
    monkeypatch.setattr(nifti, "usable_cpus", lambda: 2)
    opened = []
    for module, name in ((rapidgzip, "RapidgzipFile"), (igzip, "open")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _m=module.__name__, **k:
                            opened.append(_m) or _real(*a, **k))
    data = rng.normal(1000, 50, (12, 10, 9, 40)).astype(">f4")  # big-endian, as stored
    mask = rng.random((12, 10, 9)) < 0.5
    path = tmp_path / "bold.nii.gz"
    nb.save(nb.Nifti1Image(data, np.eye(4)), path)
    X, *_ = nifti.read_series(path, mask=mask)
    assert opened == ["rapidgzip" if parallel else "isal.igzip"]
    np.testing.assert_array_equal(X, nb.load(path).get_fdata()[mask])
    assert X.dtype == np.float32

    raw = path.read_bytes()
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.raises(nifti.InputError, match="truncated.nii.gz.*truncated or corrupt"):
        nifti.read_series(truncated, mask=mask)
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(raw[: len(raw) // 2] + bytes(100) + raw[len(raw) // 2 + 100:])
    with pytest.raises(nifti.InputError, match="corrupt.nii.gz"):
        nifti.read_series(corrupt, mask=mask)


def test_keep_rows_in_place(rng):
    """keep_rows gives numpy's X[keep] in X's own memory; a view is copied."""
    X = rng.standard_normal((1000, 7)).astype(np.float32)
    keep = rng.random(1000) < 0.6
    expected = X[keep]
    kept = nifti.keep_rows(X, keep)
    np.testing.assert_array_equal(kept, expected)
    assert kept is X and X.flags.owndata  # the same array, shrunk
    view = np.ones((10, 3))[::2]
    np.testing.assert_array_equal(nifti.keep_rows(view, [True, False] * 2 + [True]), view[[0, 2, 4]])


def _resident_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_POPULATE_WRITE is Linux's")
def test_new_rows_are_resident_at_once_and_shrink_in_place():
    """new_rows' pages are faulted in by the call (the process's RSS, read from
    /proc, grows by the array's size before anything is written), values kept;
    the array owns its memory, so keep_rows still shrinks it where it lies."""
    from nipype_ward.io import memory

    if not memory.populate(np.empty(4 * 4096, dtype=np.uint8)):
        pytest.skip("MADV_POPULATE_WRITE needs Linux 5.14 or later")
    before = _resident_kb()
    X = memory.new_rows((4096, 4096), np.float32)  # 64 MB
    grown = _resident_kb() - before
    assert grown >= 0.95 * X.nbytes / 1024
    X[:] = 3.0
    assert memory.populate(X) and (X == 3.0).all()  # populating again changes nothing
    assert X.flags.owndata and X.flags.c_contiguous
    kept = nifti.keep_rows(X, np.arange(4096) < 10)
    assert kept is X and X.shape == (10, 4096) and (X == 3.0).all()


def test_connectivity_from_another_mask(tmp_path):
    from scipy import sparse

    path = arrays.save_connectivity(sparse.eye(5, format="csr"), tmp_path / "conn.npz")
    with pytest.raises(nifti.InputError, match="conn.npz: connectivity is 5 x 5 but the mask has 7"):
        arrays.load_connectivity(path, n_voxels=7)


def _header_only(path, shape, dtype, slope=None):
    """A NIfTI file whose data are never written: enough for estimates, which
    never read data. The file has its declared size (a sparse file: no disk
    used), so it passes the check that a ``.nii`` holds the data it declares."""
    header = nb.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_data_offset(352)
    if slope is not None:
        header.set_slope_inter(slope, 0.0)
    with open(path, "wb") as fobj:
        header.write_to(fobj)
        fobj.truncate(352 + int(np.prod(shape)) * np.dtype(dtype).itemsize)
    return path


@pytest.mark.parametrize(
    ("dtype", "slope", "itemsize"),
    [(np.float32, None, 4), (np.int16, None, 4), (np.float64, None, 8), (np.int16, 0.5, 8)],
)
def test_estimate_mem_gb_by_hand(tmp_path, dtype, slope, itemsize):
    # The docstring's bounds per value held (s bytes each): prepare 2 s + 2 x 8,
    # tree s + 2 x 8, compress s + 1 (1 byte: "small"), plus 0.3 GB each.
    # 100^3 voxels x 1000 volumes = 1e9 values: 1 GB a byte per value.
    path = _header_only(tmp_path / "big.nii", (100, 100, 100, 1000), dtype, slope)
    per_value = {"prepare": 2 * itemsize + 16, "tree": itemsize + 16, "compress": itemsize + 1}
    big = series.estimate_mem_gb(path)
    assert big == pytest.approx({node: 0.3 + b for node, b in per_value.items()}, rel=1e-9)
    # 500 more volumes of 1e6 voxels: 0.5e9 more values, each its bytes once
    # more; the 0.3 GB base does not grow. Exact to the 0.01 GB of rounding.
    path = _header_only(tmp_path / "bigger.nii", (100, 100, 100, 1500), dtype, slope)
    bigger = series.estimate_mem_gb(path)
    assert bigger == pytest.approx({node: 0.3 + 1.5 * b for node, b in per_value.items()},
                                   rel=1e-9)
    for node, b in per_value.items():
        assert bigger[node] - big[node] == pytest.approx(0.5 * b, rel=1e-9)
    # With its brain mask (a quarter of the grid: 2.5e5 voxels x 1500 volumes,
    # 0.375e9 values), the bounds are the mask's; capped at a scheduler's limit.
    mask = np.zeros((100, 100, 100), np.uint8)
    mask[:50, :50] = 1
    nb.save(nb.Nifti1Image(mask, np.eye(4)), tmp_path / "mask.nii.gz")
    masked = series.estimate_mem_gb(path, mask=tmp_path / "mask.nii.gz")
    assert masked == pytest.approx({node: round(0.3 + 0.375 * b, 2)
                                    for node, b in per_value.items()}, abs=1e-9)
    capped = cap_mem_gb(series.estimate_mem_gb(path), 2.0)
    assert capped == {node: min(value, 2.0) for node, value in bigger.items()}
    limit = 1 / 3  # rounded, 0.33 would be below it, 0.34 above: the limit itself
    assert cap_mem_gb(series.estimate_mem_gb(path), limit)["tree"] == limit
    assert cap_mem_gb(0.25, limit) == 0.25 and cap_mem_gb(5.0, None) == 5.0


def test_tables_are_the_bytes_pandas_writes(tmp_path):
    """save_table writes what pandas' to_csv writes for BIDS tables (the reference).

    Integers, %.6g floats (NaN as n/a, -0, inf), strings needing quotes (a
    tab, a double quote), None as n/a, booleans, float32.
    """
    import pandas as pd

    columns = {
        "index": np.arange(1, 6),
        "name": [f"parcel_{i}" for i in range(5)],
        "n_voxels": np.array([84, 63, 51, 27, 31]),
        "x": np.array([1.234567891, -0.0, np.nan, 1e-7, 123456789.0]),
        "structure": np.array(["CORTEX_LEFT", None, "b\tc", 'q"', "ok"], dtype=object),
        "f32": np.array([0.1, 0.2, 0.3, np.inf, -np.inf], dtype=np.float32),
        "flag": np.array([True, False, True, True, False]),
    }
    ours = tables.save_table(columns, tmp_path / "ours.tsv")
    pd.DataFrame(columns).to_csv(tmp_path / "pandas.tsv", sep="\t", index=False,
                                 na_rep="n/a", float_format="%.6g")
    assert Path(ours).read_bytes() == (tmp_path / "pandas.tsv").read_bytes()
    read = pd.read_csv(ours, sep="\t", na_values=["n/a"])
    np.testing.assert_array_equal(tables.load_table_column(ours, "x"), read["x"].to_numpy())
    with pytest.raises(ValueError, match="different lengths"):
        tables.save_table({"a": [1, 2], "b": [1]}, tmp_path / "bad.tsv")


def test_a_work_folder_removed_while_checked_is_made_again(tmp_path, monkeypatch):
    """Another run that made the folder and failed removes it between mkdir and the write test."""
    from nipype_ward.io import folders

    real = folders.tempfile.TemporaryFile
    removed = []

    def racing(*args, dir=None, **kwargs):
        if not removed:
            removed.append(dir)
            Path(dir).rmdir()  # what the other run's cleanup does at that moment
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(folders.tempfile, "TemporaryFile", racing)
    folders.check_writable(tmp_path / "work", "work folder (-w)")
    assert removed == [tmp_path / "work"] and (tmp_path / "work").is_dir()


def test_threads_per_node_follow_the_plugin(monkeypatch):
    """Linear: a node has every CPU; MultiProc: fMRIPrep's omp_nthreads; batch jobs: 1."""
    monkeypatch.setattr("nipype_ward.settings.usable_cpus", lambda: 6)
    assert [threads_per_node("Linear", n) for n in (None, 1, 4)] == [6, 1, 4]
    assert [threads_per_node("MultiProc", n) for n in (None, 1, 2, 4, 16)] == [5, 1, 1, 3, 8]
    assert threads_per_node("SLURM", 16) == 1


@pytest.mark.parametrize("mapped", [True, False])
@pytest.mark.parametrize("shape", [(1000, 7), (3, 4), (0, 5)])
def test_a_consumed_series_is_the_file_numpy_writes(tmp_path, monkeypatch, rng, shape, mapped):
    """Copied into the file's memory map from its last rows (4 kB at a time here), each
    block freed once copied, or written as numpy writes where the file's blocks cannot be
    reserved: the same bytes as numpy.save, the array left empty; a view is written, not
    emptied."""
    monkeypatch.setattr(arrays, "CONSUME_BLOCK_BYTES", 4096)
    if not mapped:
        monkeypatch.setattr(arrays, "_reserve", lambda fobj, size: False)
    X = rng.standard_normal(shape).astype(np.float32)
    np.save(tmp_path / "numpy.npy", X)
    arrays.save_series(X.copy(), tmp_path / "ours.npy", consume=True)
    assert (tmp_path / "ours.npy").read_bytes() == (tmp_path / "numpy.npy").read_bytes()
    owned = X.copy()
    arrays.save_series(owned, tmp_path / "again.npy", consume=True)
    assert owned.shape == (0, shape[1])
    view = X[::-1]
    arrays.save_series(view, tmp_path / "view.npy", consume=True)
    np.testing.assert_array_equal(np.load(tmp_path / "view.npy"), X[::-1])
    np.testing.assert_array_equal(view, X[::-1])


def test_a_read_left_early_leaves_no_reader_thread(tmp_path, rng):
    """Blocks are decompressed ahead by a thread of their own: each block holds its
    volumes (nibabel's reference) however far the caller gets, and a caller that stops
    early (an error in its loop) leaves no reader thread behind."""
    import threading

    data = rng.normal(1000, 50, (6, 5, 4, 2 * nifti.BLOCK_VOLUMES + 3)).astype(np.float32)
    path = tmp_path / "bold.nii.gz"
    nb.save(nb.Nifti1Image(data, np.eye(4)), path)

    def readers():
        return [t for t in threading.enumerate() if t.name.startswith("nifti-read")]

    with nifti.open_image(path, ndim=4) as img:
        for start, stop, block in nifti._blocks_of(img, path):
            np.testing.assert_array_equal(block, data[..., start:stop])
    assert stop == data.shape[3] and not readers()
    with pytest.raises(RuntimeError, match="the caller's own error"):
        with nifti.open_image(path, ndim=4) as img:
            for start, _, _ in nifti._blocks_of(img, path):
                assert readers()  # the next block is being read
                raise RuntimeError("the caller's own error")
    assert not readers()
