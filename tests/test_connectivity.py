import numpy as np
import pytest
from sklearn.feature_extraction.image import grid_to_graph

from nipype_ward.core.connectivity import connected_components, grid_connectivity


def test_six_neighbours_equal_scikit_learn(small_arrays):
    mask = small_arrays["mask"]
    ours = grid_connectivity(mask, 6)
    reference = grid_to_graph(*mask.shape, mask=mask)
    assert ours.shape == reference.shape
    assert (ours != reference).nnz == 0


@pytest.mark.parametrize(("neighbourhood", "degree"), [(6, 3), (18, 6), (26, 7)])
def test_cube_degrees(neighbourhood, degree):
    # In a 2x2x2 cube each voxel touches 3 by a face, 3 more by an edge, 1 by a corner.
    adjacency = grid_connectivity(np.ones((2, 2, 2), bool), neighbourhood)
    off_diagonal = adjacency - np.eye(8, dtype=int)
    assert (np.asarray(off_diagonal.sum(axis=1)).ravel() == degree).all()
    assert (adjacency != adjacency.T).nnz == 0
    assert (adjacency.diagonal() == 1).all()


def test_voxel_order_is_c_order():
    mask = np.zeros((3, 3, 3), bool)
    mask[0, 0, 0] = mask[0, 0, 1] = mask[1, 0, 1] = True
    adjacency = grid_connectivity(mask, 6).toarray()
    # C order: (0,0,0)=0, (0,0,1)=1, (1,0,1)=2; 0-1 and 1-2 touch by a face.
    assert adjacency[0, 1] and adjacency[1, 2] and not adjacency[0, 2]


def test_diagonal_voxels_connect_only_with_larger_neighbourhoods():
    mask = np.zeros((3, 3, 3), bool)
    mask[0, 0, 0] = mask[1, 1, 0] = mask[2, 2, 1] = True
    assert connected_components(grid_connectivity(mask, 6))[0] == 3
    assert connected_components(grid_connectivity(mask, 18))[0] == 2
    assert connected_components(grid_connectivity(mask, 26))[0] == 1


@pytest.mark.parametrize("bad", [5, 8, "6"])
def test_bad_neighbourhood(bad):
    with pytest.raises(ValueError, match="neighbourhood must be one of"):
        grid_connectivity(np.ones((2, 2, 2), bool), bad)


def test_mask_must_be_3d():
    with pytest.raises(ValueError, match="3D"):
        grid_connectivity(np.ones((2, 2), bool))
