"""The graph, the tree and its cuts: one tree a run, cut at every K.

The graph of a volume's voxels (:func:`connectivity`) or of surface
grayordinates on their meshes (:func:`mesh_connectivity`), the Ward tree of
a prepared series (and of its two halves, for split-half reproducibility),
and the label image of a cut.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from nipype_ward.core.connectivity import connected_components, grid_connectivity
from nipype_ward.core.parcels import adjusted_rand_index
from nipype_ward.core.validation import check_n_clusters
from nipype_ward.core.ward import build_ward_tree, check_connectivity, cut_tree
from nipype_ward.io import arrays, cifti, errors, gifti
from nipype_ward.io.errors import InputError
from nipype_ward.io.geometry import load_geometry
from nipype_ward.steps.prepare import load_voxel_series


def mesh_connectivity(mask_path, out_file, surfaces: dict) -> int:
    """The graph of the grayordinates of a surface "mask" (a CIFTI-2 map), written.

    ``surfaces`` gives the mesh (``.surf.gii``) of each surface structure
    the file holds, by CIFTI structure name (``CIFTI_STRUCTURE_CORTEX_LEFT``,
    ``CIFTI_STRUCTURE_CORTEX_RIGHT``); see
    :func:`nipype_ward.io.cifti.grayordinate_connectivity`. Returns the number
    of connected pieces.
    """
    models = cifti.brain_models_of(cifti.load_cifti(mask_path))
    faces = {}
    for structure, path in surfaces.items():
        mesh = gifti.load_mesh(path)
        if structure in models.nvertices and mesh.n_vertices != models.nvertices[structure]:
            raise InputError(path, f"a mesh of {mesh.n_vertices} vertices, but the data have "
                             f"{models.nvertices[structure]} for {structure}: give the "
                             "surfaces of the data's space")
        faces[structure] = mesh.faces
    try:
        adjacency = cifti.grayordinate_connectivity(models, faces)
    except ValueError as exc:
        raise InputError(mask_path, str(exc)) from exc
    arrays.save_connectivity(adjacency, out_file)
    return connected_components(adjacency)[0]


def connectivity(mask_path, out_file, *, neighbourhood: int = 6) -> int:
    """Write the grid adjacency of a mask's voxels; return its connected pieces.

    A mask of several pieces is warned about
    (:class:`~nipype_ward.io.errors.DataWarning`): no parcel spans two pieces,
    the tree joins them only at its top, and K below their number merges
    whole pieces (where scikit-learn would bridge them; see
    :func:`nipype_ward.core.ward.ward_tree`).
    """
    mask = load_geometry(mask_path).mask
    adjacency = grid_connectivity(mask, neighbourhood)
    arrays.save_connectivity(adjacency, out_file)
    n_components, component = connected_components(adjacency)
    if n_components > 1:
        sizes = sorted(np.bincount(component).tolist(), reverse=True)
        shown = ", ".join(f"{size:,}" for size in sizes[:3]) + (", ..." if n_components > 3
                                                                 else "")
        warnings.warn(errors.DataWarning(
            mask_path, f"the mask is {n_components} separate pieces ({shown} voxels, "
            f"{neighbourhood}-neighbourhood): no parcel spans two, and K below "
            f"{n_components} merges whole pieces"))
    return int(n_components)


def check_n_clusters_in_mask(n_clusters, n_voxels: int, mask_path) -> list[int]:
    """Each K must be a positive integer no larger than the mask; errors name the mask."""
    values = check_n_clusters(n_clusters)
    for k in values:
        if k > n_voxels:
            raise InputError(
                mask_path,
                f"cannot make {k} parcels from a mask of {n_voxels} voxels: ask for at "
                f"most {n_voxels} (--n-clusters) or give a larger mask",
            )
    return values


def ward_tree(
    connectivity_path,
    out_tree,
    *,
    series_path=None,
    bold_path=None,
    mask_path=None,
    n_clusters=(),
    preparation=None,
    out_half_trees=None,
    threads: int = 1,
):
    """Build the Ward tree of a voxel series and write it.

    The series is a prepared series file (``series_path``) or a 4D NIfTI
    read and prepared now (``bold_path``); see :func:`load_voxel_series`.
    ``n_clusters`` is only checked here (before the heavy work), so that a
    bad K fails fast. With ``out_half_trees`` (two paths), the trees of the
    first and of the second half of the volumes are written too, for the
    split-half reproducibility of every cut; the halves are cut from the
    prepared series, so filtering and confound regression see the whole run.
    With ``threads`` of 2 or more, the halves' trees are built beside the
    full tree, one after the other (the kernel releases the GIL): on a 2 mm
    run of 1,200 volumes the full tree takes 3.2-3.9 s and each half 2.0-2.6
    s, so the node takes about the full tree and a half instead of the full
    tree and then both halves at once, for the memory of a half's clusters
    (about half the full tree's) beside the full tree's. Each tree's first
    pass gets the threads its share leaves (all of them for a tree alone,
    half of them each beside the halves; see ``build_ward_tree``).
    """
    if n_clusters and mask_path is not None:
        check_n_clusters_in_mask(n_clusters, load_geometry(mask_path).n_points, mask_path)
    series = load_voxel_series(
        series_path=series_path, bold_path=bold_path, mask_path=mask_path,
        preparation=preparation,
    )
    X = series.X
    # Checked once, shared by the trees (not a copy of the graph each).
    adjacency = check_connectivity(
        arrays.load_connectivity(connectivity_path, n_voxels=X.shape[0]), X.shape[0])
    if out_half_trees is not None and X.shape[1] < 4:
        raise InputError(
            series_path or bold_path,
            f"split halves need at least 4 volumes, got {X.shape[1]}",
        )
    jobs = [(X, out_tree)]
    if out_half_trees is not None:
        half = X.shape[1] // 2
        jobs += zip((X[:, :half], X[:, half:]), out_half_trees)
    workers = min(max(1, threads), 2) if len(jobs) > 1 else 1

    def tree_of(part, path):
        # The pieces of the mask (or the surface's structures) are reported by
        # the connectivity step and stored in the tree: no warning from a run.
        tree = build_ward_tree(part, adjacency, warn_components=False,
                               threads=max(1, threads // workers))
        arrays.save_tree(tree, path)
        return tree

    # In order: the full tree on one thread, the halves one after the other on
    # the other (each job on the first thread free).
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = [pool.submit(tree_of, *job) for job in jobs]
        return [job.result() for job in done][0]  # raises a tree's error here


def cut(tree_path, mask_path, n_clusters: int, out_labels) -> Path:
    """Cut a written tree at ``n_clusters`` parcels and write the label image."""
    geometry = load_geometry(mask_path)
    (k,) = check_n_clusters_in_mask(n_clusters, geometry.n_points, mask_path)
    tree = arrays.load_tree(tree_path, n_leaves=geometry.n_points)
    return geometry.save_labels(cut_tree(tree.children, k), out_labels)


def split_half_ari(half_tree_paths, n_clusters: int, n_voxels: int) -> float:
    """ARI between the trees of the two halves of a run, both cut at ``n_clusters``."""
    if len(half_tree_paths) != 2:
        raise ValueError(f"split halves need two tree files, got {len(half_tree_paths)}")
    first, second = (
        cut_tree(arrays.load_tree(path, n_leaves=n_voxels).children, n_clusters)
        for path in half_tree_paths
    )
    return adjusted_rand_index(first, second)
