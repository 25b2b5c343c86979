from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from nipype_ward.io import arrays, files, geometry, nifti, series, tables


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


def test_volumes_written_one_at_a_time(tmp_path, rng):
    """save_volumes writes what nibabel reads back; fewer volumes than promised leave nothing."""
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-10, -20, 5]
    reference = nb.Nifti1Image(np.zeros((4, 5, 3), np.uint8), affine)
    reference.set_qform(affine, code=4)
    reference.set_sform(affine, code=4)
    data = rng.standard_normal((4, 5, 3, 7)).astype(np.float32)
    path = nifti.save_volumes((data[..., t] for t in range(7)), reference,
                              tmp_path / "bold.nii.gz", n_volumes=7, t_r=0.8)
    img = nb.load(path)
    np.testing.assert_array_equal(np.asarray(img.dataobj), data)
    np.testing.assert_array_equal(img.affine, affine)
    assert img.header.get_zooms() == (2.0, 2.0, 2.0, 0.8)
    assert int(img.header["sform_code"]) == int(img.header["qform_code"]) == 4

    with pytest.raises(ValueError, match="6 volumes written, the header says 7"):
        nifti.save_volumes((data[..., t] for t in range(6)), reference,
                           tmp_path / "short.nii.gz", n_volumes=7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bold.nii.gz"]


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
