"""Delivering results: the sink of a workflow, as a node of its graph."""

from nipype.interfaces.base import (
    BaseInterfaceInputSpec, File, InputMultiObject, SimpleInterface, TraitedSpec, traits,
)

from nipype_ward.io.files import LINK_FROM_BYTES, copy_atomically, copy_json, load_json


class _ExportFilesInputSpec(BaseInterfaceInputSpec):
    in_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="files to deliver, in the order of out_files"
    )
    out_files = InputMultiObject(
        traits.Str, mandatory=True,
        desc="absolute destination paths, one per in_file (their folders must exist)",
    )
    hardlink = traits.Bool(
        False, usedefault=True,
        desc=f"deliver each file of {LINK_FROM_BYTES >> 20} MiB or more but a JSON as a hard "
        "link to it where the file systems allow (else a copy): only for files the workflow "
        "wrote itself, never for a user's input",
    )


class _ExportFilesOutputSpec(TraitedSpec):
    out_files = traits.List(File(exists=True), desc="the delivered files")


class ExportFiles(SimpleInterface):
    """Copy files to absolute paths: Nipype's ``ExportFile`` for a list, in one node.

    Each copy is written to a temporary name beside its destination, then
    renamed: a file appears complete or not at all, with the mode the umask
    gives. In a JSON file, an entry naming another of the files (a metrics
    JSON's ``labels_file``) is set to that file's destination, relative to
    the JSON. With ``hardlink``, a large file is delivered as a hard link
    where it can be (see :func:`~nipype_ward.io.files.copy_atomically`). One node
    for all the files of a run keeps the scheduler's overhead (about 0.1 s
    a node under MultiProc) off the critical path.
    """

    input_spec = _ExportFilesInputSpec
    output_spec = _ExportFilesOutputSpec

    def _run_interface(self, runtime):
        in_files, out_files = list(self.inputs.in_files), list(self.inputs.out_files)
        if len(in_files) != len(out_files):
            raise ValueError(
                f"{len(in_files)} files to export but {len(out_files)} destinations"
            )
        destination = dict(zip(in_files, out_files))
        for source, target in zip(in_files, out_files):
            if not target.startswith("/"):
                raise ValueError(f"destination must be an absolute path, got {target}")
            if source.endswith(".json"):
                # Entries naming another file delivered here (a metrics JSON's
                # labels_file) name it where it is delivered, relative to the JSON.
                payload = load_json(source)
                copy_json(source, target, relative={
                    key: destination[value] for key, value in payload.items()
                    if isinstance(value, str) and value in destination})
            else:
                copy_atomically(source, target, link=self.inputs.hardlink)
        self._results["out_files"] = out_files
        return runtime
