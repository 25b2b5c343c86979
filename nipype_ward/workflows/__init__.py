"""Workflow factories of nipype-ward."""
from nipype_ward.workflows.parcellation import init_ward_parcellation_wf
from nipype_ward.workflows.seed import init_rest_clustering_wf

__all__ = ["init_rest_clustering_wf", "init_ward_parcellation_wf"]
