"""Running a workflow for a command line: plugin, quiet logs, crash summaries, the exit."""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import re
import sys
import threading
from pathlib import Path

from nipype_ward._compat import mended_batch_plugin, mended_multiproc_plugin
from nipype_ward.io.errors import DataWarning

#: Seconds between two looks of Nipype's distributed schedulers at their jobs.
#: Nipype's default (2 s) is longer than most of our nodes: with it, the
#: embedded seed job took 34 s under MultiProc against 20 s under Linear.
POLL_SLEEP_S = 0.01

#: Batch systems: each look runs their queue command once per pending job
#: (``squeue -j ID``), so they are polled once a second, not a hundred times.
BATCH_POLL_SLEEP_S = 1.0

#: What each batch plugin is told of a node's needs, through the node's
#: ``plugin_args`` (Nipype's batch plugins read no ``mem_gb``): the option
#: key and its text for ``mb`` megabytes and ``procs`` processes. SGE and
#: PBS sites name their parallel environments differently: memory only.
BATCH_RESOURCES = {
    "SLURM": ("sbatch_args", "--mem={mb}M --cpus-per-task={procs}"),
    "SGE": ("qsub_args", "-l h_vmem={mb}M"),
    "PBS": ("qsub_args", "-l mem={mb}mb"),
    "LSF": ("bsub_args", "-M {mb} -n {procs}"),
}

#: Plugins that submit the whole graph and return before its jobs end: the
#: command could neither report their outcome nor write the reports.
GRAPH_PLUGINS = ("SLURMGraph", "SGEGraph", "PBSGraph", "CondorDAGMan")

#: The least memory (GB) a submitted node asks for: a Python process with
#: nipype, numpy and nilearn imported holds about 0.3 GB before any work.
MIN_JOB_MEM_GB = 1.0


def request_resources(workflow, plugin: str) -> int:
    """Give every submitted node of ``workflow`` its memory and CPUs as batch options.

    Each node's ``mem_gb`` (at least :data:`MIN_JOB_MEM_GB`) and
    ``n_procs`` become, for SLURM, ``--mem=<MB>M --cpus-per-task=<n>`` in
    its ``plugin_args["sbatch_args"]``, added to the plugin's own
    ``sbatch_args`` (see :data:`BATCH_RESOURCES`). Nodes run without
    submitting are left alone. Returns the number of nodes given options.
    """
    import math

    if plugin not in BATCH_RESOURCES:
        return 0
    key, template = BATCH_RESOURCES[plugin]
    count = 0
    for name in workflow.list_node_names():
        node = workflow.get_node(name)
        if node.run_without_submitting:
            continue
        mb = math.ceil(max(float(node.mem_gb), MIN_JOB_MEM_GB) * 1024)
        options = template.format(mb=mb, procs=max(1, int(node.n_procs)))
        plugin_args = dict(node.plugin_args or {})
        plugin_args[key] = f"{plugin_args.get(key, '')} {options}".strip()
        plugin_args.setdefault("overwrite", False)
        node.plugin_args = plugin_args
        count += 1
    return count


def _batch_environment() -> None:
    """What Nipype's batch plugins read from the environment, set where a shell did not.

    They name each job after ``os.environ["LOGNAME"]`` and raise a KeyError
    where it is unset (batch shells, containers, cron).
    """
    import getpass
    import os

    if "LOGNAME" not in os.environ:
        try:
            os.environ["LOGNAME"] = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry for this uid (containers)
            os.environ["LOGNAME"] = "nipype-ward"


class GraphError(RuntimeError):
    """A run of the graph that stopped on failed nodes.

    The message is one line per failure (:func:`_crash_summary`);
    ``nodes`` are the failed nodes' full names (as the scheduler reported
    them: :class:`_Monitor`), and ``input_error`` says
    whether every failure was an :class:`~nipype_ward.io.errors.InputError`
    (the input must change: nothing in the work folder is worth resuming).
    """

    def __init__(self, message: str, nodes=(), input_error: bool = False):
        super().__init__(message)
        self.nodes = list(nodes)
        self.input_error = input_error


def print_data_warnings(prog: str) -> None:
    """Print :class:`~nipype_ward.io.errors.DataWarning` as one line, ``<prog>: warning: ...``.

    Nodes run by MultiProc's forked workers inherit it; batch jobs write
    their warnings in their own logs (the counts are in the metrics).
    """
    import sys
    import warnings

    show = warnings.showwarning

    def _show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DataWarning):
            print(f"{prog}: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = _show


def run_graph(workflow, *, work_dir: Path, plugin: str, plugin_args: dict, verbose: bool,
              crash_dir: Path | None = None):
    """Run ``workflow`` in ``work_dir`` with a Nipype plugin; return the executed graph.

    Nipype's log is kept to its interfaces' warnings unless ``verbose``. A failed node
    raises one :class:`GraphError` whose message is the last error line of each
    crash file of this run (the file, the problem), not Nipype's tracebacks, and
    whose ``nodes`` are the failed nodes' full names as the scheduler reported
    them. ``crash_dir`` (default ``work_dir/crash``) should be this run's own
    when other runs may share the work folder.
    """
    from nipype import config, logging

    if not verbose:
        # Nipype logs a failed node's traceback as an ERROR of its workflow
        # logger (on stdout); the crash summary raised below says it in one line.
        config.set("logging", "workflow_level", "CRITICAL")
        config.set("logging", "interface_level", "WARNING")
        logging.update_logging(config)
    crash_dir = Path(crash_dir or Path(work_dir) / "crash")
    workflow.base_dir = str(work_dir)
    batch = plugin in BATCH_RESOURCES
    workflow.config["execution"] = {
        "crashdump_dir": str(crash_dir),
        "crashfile_format": "txt",
        "poll_sleep_duration": BATCH_POLL_SLEEP_S if batch else POLL_SLEEP_S,
    }
    if batch:
        _batch_environment()
        request_resources(workflow, plugin)
    started = set(crash_dir.glob("crash-*")) if crash_dir.exists() else set()
    # Nipype's MultiProc runs the garbage collector before each submission
    # and after each node it runs itself (the sinks): a full collection
    # walks every object the imports made (nipype, nilearn, pybids...), a
    # tenth of a second each, 4 s of a 23 s surface run. Objects alive now
    # live for the whole run anyway: frozen, the collector skips them.
    gc.collect()
    gc.freeze()
    monitor = _Monitor(freeze=plugin == "MultiProc")
    plugin_args = {**plugin_args, "status_callback": monitor}
    if batch:
        runner = mended_batch_plugin(plugin, plugin_args)
    elif plugin == "MultiProc":
        runner = mended_multiproc_plugin(plugin_args)
    else:
        runner = plugin
    try:
        return workflow.run(plugin=runner, plugin_args=plugin_args)
    except RuntimeError as exc:
        message, input_error = _crash_summary(crash_dir, started)
        raise GraphError(message or str(exc), monitor.failed, input_error) from exc
    finally:
        gc.unfreeze()


class _Monitor:
    """Nipype's status callback: which nodes failed, and the garbage collector kept short.

    ``failed`` lists the full names (``workflow.sub_workflow.node``) of the
    nodes the scheduler reported as failed, so that a runner can tell whose
    they are from the graph it built. With ``freeze`` (MultiProc), what
    survives a young collection when a node starts or ends is frozen: the
    young generations hold the objects made since the last freeze; what
    outlives their collection is the scheduler's and the results' state,
    alive until the run ends (when :func:`run_graph` unfreezes everything).
    A callback error would stop the scheduler in an unknown state: none
    leaves this one.
    """

    def __init__(self, *, freeze: bool):
        self.freeze = freeze
        self.failed: list[str] = []

    def __call__(self, node, status) -> None:
        try:
            if status == "exception":
                self.failed.append(str(node.fullname))
            if self.freeze:
                gc.collect(1)
                gc.freeze()
        except Exception:  # noqa: BLE001 - never into the scheduler
            pass


def stop_workers() -> None:
    """Kill this process's worker processes (MultiProc's pool) at once: the run was interrupted."""
    import multiprocessing
    import os
    import signal

    for child in multiprocessing.active_children():
        try:
            os.kill(child.pid, signal.SIGKILL)
        except OSError:
            pass


def node_durations(exec_graph) -> dict:
    """Run time in seconds of each executed node, by name; a list for map nodes."""
    durations = {}
    for node in exec_graph.nodes():
        runtime = node.result.runtime
        if isinstance(runtime, list):
            durations[node.name] = [float(getattr(r, "duration", 0.0)) for r in runtime]
        else:
            durations[node.name] = float(getattr(runtime, "duration", 0.0))
    return durations


#: Nipype's words for a batch job that ended without writing its result.
_LOST_JOB = re.compile(r"Job id \((\d+)\) finished or terminated, but results file does not "
                       r"exist")


#: How a crash file's last error line starts when it is one of our InputErrors.
_INPUT_ERROR = re.compile(r"^(?:[\w.]+\.)?InputError: ")


def _crash_summary(crash_dir: Path, known: set) -> tuple[str, bool]:
    """What went wrong, from each new crash file: the last error line of its traceback.

    A batch job that ended without a result (cancelled, killed for memory
    or time) is said in plain words, with the node, the job and its log.
    An :class:`~nipype_ward.io.errors.InputError` is its message alone.
    Returns the lines and whether all failures were input errors.
    """
    lines, input_errors = [], []
    for crash in sorted(set(crash_dir.glob("crash-*")) - known):
        text = crash.read_text(errors="replace").strip().splitlines()
        node = next((line[len("Node: "):].strip() for line in text if line.startswith("Node: ")),
                    None)
        lost = next((_LOST_JOB.search(line) for line in text if _LOST_JOB.search(line)), None)
        errors = [line for line in text if "Error:" in line]
        input_errors.append(bool(errors) and bool(_INPUT_ERROR.match(errors[-1].strip())))
        if lost and node:
            job = lost.group(1)
            lines.append(f"node {node}: its batch job {job} ended without a result (cancelled, "
                         f"or killed for its memory or time: see slurm-{job}.out in the work "
                         "folder's batch/); run the same command again to resume from the "
                         "work folder")
        elif errors:
            lines.append(_INPUT_ERROR.sub("", errors[-1].strip()))
    return "\n".join(dict.fromkeys(lines)), bool(input_errors) and all(input_errors)


def exit_after(main) -> None:
    """Run a command's ``main()`` and end the process with its status, without Python's teardown.

    What the interpreter does at exit is done first, in its order: the
    threads' exit hooks (executors shut down) and the other non-daemon
    threads joined, then the ``atexit`` handlers (logging flushed, temporary
    folders removed), then the standard streams flushed. Then ``os._exit``:
    the teardown of the ~3,000 modules a run imports, object by object,
    which took 0.5-0.6 s of every command (12 % of the 3 mm seed job) and
    does nothing a user sees, is skipped. A ``SystemExit`` (``--help``,
    argparse's usage errors) ends the same way with its code; an uncaught
    exception ends as Python ends it, traceback and teardown included.
    """
    try:
        status = main()
    except SystemExit as exc:
        status = exc.code
    if status is None:
        status = 0
    elif not isinstance(status, int):
        print(status, file=sys.stderr)  # sys.exit("message"), as Python does
        status = 1
    shutdown = getattr(threading, "_shutdown", None)
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if shutdown is None or run_exitfuncs is None:  # not CPython: the usual exit
        raise SystemExit(status)
    shutdown()
    run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status & 0xFF)
