"""The meshes of the standard surface spaces, found offline.

Surface data are parcellated on their space's meshes (only their triangles
matter: any of a space's surfaces gives the same graph):

* ``fsaverage5``: nilearn's bundled copy (pial), always there;
* ``fsLR`` (den 32k, XCP-D's and fMRIPrep's CIFTI space) and the other
  fsaverage densities: the TemplateFlow client's cache
  (``$TEMPLATEFLOW_HOME``; fMRIPrep users have them). Nothing is
  downloaded here: a file the cache only names (TemplateFlow's empty
  placeholders) is an error saying how to fetch it, or to give the meshes
  explicitly (``--surfaces LEFT.surf.gii RIGHT.surf.gii``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from nipype_ward.io.errors import InputError

#: TemplateFlow's name and density of each space we know.
_TEMPLATEFLOW = {
    "fsLR": ("fsLR", "32k"),
    "fsaverage6": ("fsaverage", "41k"),
    "fsaverage": ("fsaverage", "164k"),
}


def surface_meshes(space: str, *, surfaces=None) -> tuple[Path, Path]:
    """The left and right meshes (``.surf.gii``) of a surface space.

    Parameters
    ----------
    space : str
        ``fsaverage5``, ``fsaverage6``, ``fsaverage`` or ``fsLR``.
    surfaces : pair of paths or None
        The meshes to use instead (left, right), e.g. a subject's own.
    """
    if surfaces is not None:
        left, right = (Path(path) for path in surfaces)
        for path in (left, right):
            if not path.is_file():
                raise InputError(path, "--surfaces: no such file")
        return left, right
    if space == "fsaverage5":
        bundled = resources.files("nilearn.datasets.data") / "fsaverage5"
        return tuple(Path(str(bundled / f"pial_{side}.gii.gz")) for side in ("left", "right"))
    if space not in _TEMPLATEFLOW:
        raise InputError(space, "no meshes known for this space: give them with --surfaces "
                         "LEFT.surf.gii RIGHT.surf.gii")
    template, density = _TEMPLATEFLOW[space]
    from templateflow import api

    found = []
    for hemi in ("L", "R"):
        paths = [Path(path) for path in api.ls(template, hemi=hemi, density=density,
                                               suffix="midthickness", extension=".surf.gii")]
        present = [path for path in paths if path.is_file() and path.stat().st_size > 0]
        if not present:
            where = paths[0] if paths else Path(api.TF_LAYOUT.root) / f"tpl-{template}"
            raise InputError(where, f"the {space} midthickness mesh is not in the TemplateFlow "
                             f"cache: fetch it where there is internet (python -c \"from "
                             f"templateflow import api; api.get('{template}', density="
                             f"'{density}', suffix='midthickness')\") or give --surfaces")
        found.append(present[0])
    return found[0], found[1]
