"""Figures and reports of parcellations."""
from nipype_ward.reports.figures import (
    cut_coords_of,
    plot_compression,
    plot_parcellation,
    plot_quality,
    plot_surface_compression,
    plot_surface_parcellation,
)

__all__ = ["cut_coords_of", "plot_compression", "plot_parcellation", "plot_quality",
           "plot_surface_compression", "plot_surface_parcellation"]
