"""Workflow factories of nipype-ward."""
from nipype_ward.workflows.parcellation import init_ward_parcellation_wf

__all__ = ["init_ward_parcellation_wf"]
