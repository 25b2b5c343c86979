import nibabel as nb
import numpy as np
from sklearn.metrics import adjusted_rand_score

from nipype_ward.reports import figures


def _scan_order_parcels():
    """2,000 parcels of 2 x 2 x 2 voxels on a 40 x 20 x 20 grid, numbered in scan order."""
    blocks = np.arange(1, 2001).reshape(20, 10, 10)
    data = np.kron(blocks, np.ones((2, 2, 2), dtype=int))
    data[:2] = 0  # a background
    return data


def test_display_labels_keep_the_parcels_and_scatter_their_colours():
    """The same parcels (one display value each, 1 .. n), background 0, the same for the
    same seed; neighbours in scan order no longer get neighbouring values."""
    data = _scan_order_parcels()
    shown = figures.display_labels(data)
    inside = data > 0
    assert (shown[~inside] == 0).all()
    assert adjusted_rand_score(data[inside], shown[inside]) == 1.0
    assert np.array_equal(np.unique(shown[inside]), np.arange(1, np.unique(data[inside]).size + 1))
    np.testing.assert_array_equal(figures.display_labels(data), shown)
    # Parcels side by side along the last axis: 1 apart in scan order, as good as random here.
    pairs = (data[:, :, :-1] != data[:, :, 1:]) & inside[:, :, :-1]
    before = np.abs(data[:, :, 1:][pairs] - data[:, :, :-1][pairs])
    after = np.abs(shown[:, :, 1:][pairs].astype(int) - shown[:, :, :-1][pairs])
    assert (before == 1).all()
    assert np.mean(after <= 12) < 0.05  # within one turn of Paired's 12 colours


def test_plot_parcellation_draws_the_shuffled_parcels(tmp_path):
    import matplotlib.image

    data = _scan_order_parcels()
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    nb.save(nb.Nifti1Image(data.astype(np.int16), affine), tmp_path / "labels.nii.gz")
    nb.save(nb.Nifti1Image((data > 0).astype(np.float32) * 100, affine), tmp_path / "mean.nii.gz")
    out = figures.plot_parcellation(tmp_path / "labels.nii.gz", tmp_path / "mean.nii.gz",
                                    tmp_path / "parcels.png")
    pixels = matplotlib.image.imread(out)
    assert pixels.ndim == 3 and pixels.shape[0] > 100
    # The labels file is left as it was.
    np.testing.assert_array_equal(np.asanyarray(nb.load(tmp_path / "labels.nii.gz").dataobj), data)
