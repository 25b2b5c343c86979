"""Figures and reports of parcellations."""
from nipype_ward.reports.figures import (
    cut_coords_of,
    plot_compression,
    plot_parcellation,
    plot_quality,
)

__all__ = ["cut_coords_of", "plot_compression", "plot_parcellation", "plot_quality"]
