"""Files: the formats, the series and its points, atomic writes, arrays, tables, folders.

From the top down: :mod:`~nipype_ward.io.series` reads a BOLD series of any
format once, and :mod:`~nipype_ward.io.geometry` reads and writes every
file of points (masks, means, labels, compressed and parcel series) through
a geometry (a volume mask on a grid, or grayordinates); they are the only
modules above the formats. Below them, one module a format
(:mod:`~nipype_ward.io.nifti`, :mod:`~nipype_ward.io.cifti`,
:mod:`~nipype_ward.io.gifti`, with the NIfTI header checks of
:mod:`~nipype_ward.io.headers`) and the extensions by name
(:mod:`~nipype_ward.io.formats`). Beside them: the prepared series, graphs
and trees (:mod:`~nipype_ward.io.arrays`), tables and confounds
(:mod:`~nipype_ward.io.tables`), JSON and atomic writes
(:mod:`~nipype_ward.io.files`), the run's folders and locks
(:mod:`~nipype_ward.io.folders`), EPI masks (:mod:`~nipype_ward.io.masking`),
the large arrays a reader fills (:mod:`~nipype_ward.io.memory`) and the
errors users see (:mod:`~nipype_ward.io.errors`).
"""
