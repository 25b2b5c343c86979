#!/usr/bin/env python
"""Ward clustering to learn a brain parcellation from rest fMRI, as a Nipype workflow.

The nilearn example this project began from (EPI mask, grid connectivity,
Ward at 1000 and 2000 parcels, label images, compression, figures), run by
:func:`nipype_ward.workflows.init_ward_parcellation_wf`::

    python workflows/rest_clustering.py                      # embedded data
    python workflows/rest_clustering.py --bold sub-01_bold.nii.gz \
        --mask sub-01_desc-brain_mask.nii.gz --n-clusters 500 1000 --output-dir out

``--help`` lists every option. The same command is installed as
``nipype-ward-rest-clustering``.
"""
from nipype_ward.cli.rest_clustering import command

if __name__ == "__main__":
    command()
