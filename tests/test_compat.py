"""The private names of other packages that nipype_ward._compat relies on, still there.

Each mend of another package's behaviour uses names that package does not
promise to keep. When an upgrade moves one, this fails first, naming it,
instead of a run failing (or hanging) in front of a user. And no other
module of nipype-ward uses a private name of nibabel or Nipype.
"""

import inspect


def test_nipype_multiproc_internals():
    from nipype.pipeline.plugins import multiproc

    plugin = multiproc.MultiProcPlugin
    # _compat.mended_multiproc_plugin replaces these two.
    assert callable(plugin._async_callback)
    assert "self._task_obj[self._taskid] = result_future" in inspect.getsource(plugin._submit_job)
    assert "self._taskresult" in inspect.getsource(plugin._get_result)
    # ... and builds its own pool the way Nipype does.
    source = inspect.getsource(plugin.__init__)
    for name in ("self.pool = ProcessPoolExecutor", "self._cwd", "self.processors",
                 '"mp_context"'):
        assert name in source, name
    assert list(inspect.signature(multiproc.process_initializer).parameters) == ["cwd"]
    assert multiproc.mp.get_context is not None


def test_nipype_batch_and_graph_internals():
    from nipype.pipeline.plugins import SLURMPlugin
    from nipype.pipeline.plugins.base import DistributedPluginBase

    # _compat.mended_batch_plugin overrides _report_crash(node, result=None).
    assert list(inspect.signature(SLURMPlugin._report_crash).parameters) == [
        "self", "node", "result"]
    # The status callback: "start", "end", "exception" for each node.
    assert 'self._status_callback(self.procs[jobid], "exception")' in inspect.getsource(
        DistributedPluginBase._clean_queue)


def test_nibabel_cifti_internals():
    """nipype_ward.io.cifti._read reads the NIfTI-2 part as nibabel's own loader does."""
    from nibabel.cifti2 import parse_cifti2

    assert hasattr(parse_cifti2, "_Cifti2AsNiftiImage")
    assert callable(parse_cifti2._Cifti2AsNiftiImage.from_filename)
    assert hasattr(parse_cifti2, "Cifti2Extension")
    source = inspect.getsource(parse_cifti2.Cifti2Image.from_file_map) \
        if hasattr(parse_cifti2, "Cifti2Image") else inspect.getsource(
            __import__("nibabel.cifti2.cifti2", fromlist=["x"]).Cifti2Image.from_file_map)
    assert "_Cifti2AsNiftiImage" in source


def test_numpy_huge_page_switch():
    """nipype_ward._compat.small_pages turns numpy's switch off, then back as it was."""
    from nipype_ward._compat import small_pages

    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _set_madvise_hugepage
    before = _set_madvise_hugepage(True)
    with small_pages():
        assert _set_madvise_hugepage(False) is False  # it was off inside
    assert _set_madvise_hugepage(before) is True  # and on again after


def test_no_other_module_uses_their_private_names():
    import ast
    from pathlib import Path

    import nipype_ward

    root = Path(nipype_ward.__file__).parent
    found = {}
    for path in root.rglob("*.py"):
        if path.name == "_compat.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
                    "nibabel", "nipype"):
                names = [alias.name for alias in node.names]
                names += (node.module or "").split(".")
            for name in names:
                if name.startswith("_") and not name.startswith("__"):
                    found.setdefault(str(path.relative_to(root)), []).append(name)
    assert found == {}
