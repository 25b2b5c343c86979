"""Figures and reports of parcellations."""
from nipype_ward.reports.figures import plot_compression, plot_parcellation

__all__ = ["plot_compression", "plot_parcellation"]
