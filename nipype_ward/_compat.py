"""The private names of other packages that nipype-ward relies on, all here.

Each function below mends or reaches into a package where its public API
falls short, measured or reproduced in the docstring. The names they use
are not promised by those packages: ``setup.cfg`` bounds the versions these
were tested with, and ``tests/test_compat.py`` fails first, naming the
name, when an upgrade moves one. Nothing else in nipype-ward uses a private
name of another package.
"""

from __future__ import annotations

import contextlib


def cifti_as_nifti(path):
    """The NIfTI-2 part of a CIFTI-2 file, its extension parsed, as ``nibabel.load`` reads it.

    nibabel's ``Cifti2Image.from_file_map`` reads the file this way, then
    builds the brain-model axes of every grayordinate (0.2 s for fsLR 91k
    each time an image is made, loaded or saved): :func:`nipype_ward.io.cifti._read`
    keeps the reading and skips the axes (a node of a surface run went from
    11.6 s to 0.7 s of work).
    """
    from nibabel.cifti2.parse_cifti2 import _Cifti2AsNiftiImage

    return _Cifti2AsNiftiImage.from_filename(str(path))


@contextlib.contextmanager
def small_pages():
    """numpy's arrays allocated in 4 kB pages inside the block, not in transparent huge pages.

    numpy asks Linux for huge pages (``madvise``) on every array of 4 MB or
    more, and where the kernel's ``defrag`` setting is ``madvise`` (Debian's
    default) it compacts memory on the spot to find them. With the page
    cache full of the run just read, filling a 2 mm series of 1,200 volumes
    (1.1 GB) a block of volumes at a time took 4.6 s with huge pages asked
    for, 1.15 s without (and 0.64 s when free huge pages are at hand).
    numpy's switch is private: ``_set_madvise_hugepage``.
    """
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _set_madvise_hugepage
    previous = _set_madvise_hugepage(False)
    try:
        yield
    finally:
        _set_madvise_hugepage(previous)


def mended_batch_plugin(plugin: str, plugin_args: dict):
    """Nipype's batch plugin ``plugin``, with its crash report mended.

    Nipype 1.11 cannot report a job that ended without a result (cancelled
    with ``scancel``, killed for memory or time): its batch manager passes
    the traceback as one string where ``report_crash`` adds a list to it,
    and the run stops on that TypeError with no crash file. Given as lines,
    the report is written and the run ends as for any failed node.
    """
    from nipype.pipeline import plugins

    base = getattr(plugins, f"{plugin}Plugin")

    def _report_crash(self, node, result=None):
        if result is not None and isinstance(result.get("traceback"), str):
            result = {**result, "traceback": result["traceback"].splitlines(keepends=True)}
        return base._report_crash(self, node, result=result)

    # The same class name: Nipype names the plugin after it for map nodes.
    mended = type(base.__name__, (base,), {"_report_crash": _report_crash})
    return mended(plugin_args=plugin_args)


def mended_multiproc_plugin(plugin_args: dict):
    """Nipype's MultiProc plugin, with workers that die with the run and failures that always arrive.

    Two mends of Nipype 1.11's ``MultiProcPlugin`` :

    - A task that raised outside the node's own ``run`` (Nipype's
      ``run_node`` reads the node's result file to report a failure, and a
      work folder removed under it raises there) leaves its future with an
      exception; Nipype's callback then raises, records nothing, and the
      scheduler waits for that task forever. Here the task is reported as
      failed, with its traceback, like any failed node.
    - Workers are forked processes that outlive a parent killed with
      ``SIGKILL`` (holding its locks and memory). Here each asks the kernel
      to kill it when its parent dies (``PR_SET_PDEATHSIG``), and ignores
      ``SIGINT``: a Ctrl-C reaches the whole process group, and the parent
      alone answers it (one line, the workers killed).
    """
    import os
    from concurrent.futures import ProcessPoolExecutor

    from nipype.pipeline.plugins import multiproc

    base = multiproc.MultiProcPlugin

    def __init__(self, plugin_args=None):
        base.__init__(self, plugin_args=plugin_args)
        # No worker has started yet (they start at the first submission):
        # Nipype's pool is replaced by the same pool with guarded workers.
        self.pool.shutdown(wait=False)
        self.pool = ProcessPoolExecutor(
            max_workers=self.processors, initializer=_guarded_worker,
            initargs=(self._cwd, os.getpid()),
            mp_context=multiproc.mp.get_context(self.plugin_args.get("mp_context")),
        )

    def _async_callback(self, future):
        try:
            result = future.result()
        except BaseException:  # noqa: BLE001 - reported as the node's failure
            import sys
            from traceback import format_exception

            taskid = next(key for key, value in self._task_obj.items() if value is future)
            result = {"result": None, "traceback": format_exception(*sys.exc_info()),
                      "taskid": taskid}
        self._taskresult[result["taskid"]] = result

    # The same class name: Nipype names the plugin after it for map nodes.
    mended = type(base.__name__, (base,), {"__init__": __init__,
                                           "_async_callback": _async_callback})
    return mended(plugin_args=plugin_args)


def _guarded_worker(cwd: str, parent: int) -> None:
    """A MultiProc worker's start: Nipype's own, then killed with its parent, deaf to Ctrl-C."""
    import ctypes
    import os
    import signal

    from nipype.pipeline.plugins.multiproc import process_initializer

    process_initializer(cwd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pr_set_pdeathsig = 1  # linux/prctl.h
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's exit still ends the pool
        pass
    if os.getppid() != parent:  # the parent died before the request
        os._exit(1)


