"""nipype-ward: spatially constrained Ward parcellation of fMRI for Nipype.

Layers, imported one way only::

    cli -> workflows -> interfaces -> image I/O (``image``, ``masking``) ->
    array core (``ward``, ``connectivity``, ``parcels``) -> compiled kernel
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nipype-ward")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
