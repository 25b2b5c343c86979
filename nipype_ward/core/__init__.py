"""The array core: no file is read or written here.

The exact Ward tree and its cuts (:mod:`~nipype_ward.core.ward`, its merge
loop compiled), grid and mesh graphs (:mod:`~nipype_ward.core.connectivity`),
parcel means and sizes (:mod:`~nipype_ward.core.parcels`), the quality of a
compression (:mod:`~nipype_ward.core.metrics`), the preparation of the
signals (:mod:`~nipype_ward.core.signals`, nilearn's), the group reductions
(:mod:`~nipype_ward.core.reduction`: concatenation, MIGP) and the checks of
numeric options (:mod:`~nipype_ward.core.validation`). Arrays in, arrays out,
validated at the boundary, as scikit-learn's functions are.
"""
