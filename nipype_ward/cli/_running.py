"""Running a workflow for a command line: plugin, quiet logs, crash summaries."""

from __future__ import annotations

import gc
from pathlib import Path

#: Seconds between two looks of Nipype's distributed schedulers at their jobs.
#: Nipype's default (2 s) is longer than most of our nodes: with it, the
#: embedded seed job took 34 s under MultiProc against 20 s under Linear.
POLL_SLEEP_S = 0.01


def run_graph(workflow, *, work_dir: Path, plugin: str, plugin_args: dict, verbose: bool):
    """Run ``workflow`` in ``work_dir`` with a Nipype plugin; return the executed graph.

    Nipype's log is kept to warnings unless ``verbose``. A failed node
    raises one ``RuntimeError`` whose message is the last error line of each
    new crash file (the file, the problem), not Nipype's tracebacks.
    """
    from nipype import config, logging

    if not verbose:
        config.set("logging", "workflow_level", "WARNING")
        config.set("logging", "interface_level", "WARNING")
        logging.update_logging(config)
    crash_dir = Path(work_dir) / "crash"
    workflow.base_dir = str(work_dir)
    workflow.config["execution"] = {
        "crashdump_dir": str(crash_dir),
        "crashfile_format": "txt",
        "poll_sleep_duration": POLL_SLEEP_S,
    }
    started = set(crash_dir.glob("crash-*")) if crash_dir.exists() else set()
    # Nipype's MultiProc runs the garbage collector before each submission
    # and after each node it runs itself (the sinks): a full collection
    # walks every object the imports made (nipype, nilearn, pybids...), a
    # tenth of a second each, 4 s of a 23 s surface run. Objects alive now
    # live for the whole run anyway: frozen, the collector skips them.
    gc.collect()
    gc.freeze()
    try:
        return workflow.run(plugin=plugin, plugin_args=plugin_args)
    except RuntimeError as exc:
        raise RuntimeError(_crash_summary(crash_dir, started) or str(exc)) from exc
    finally:
        gc.unfreeze()


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


def _crash_summary(crash_dir: Path, known: set) -> str:
    """The last line of each new crash file's traceback: what went wrong."""
    lines = []
    for crash in sorted(set(crash_dir.glob("crash-*")) - known):
        text = crash.read_text(errors="replace").strip().splitlines()
        errors = [line for line in text if "Error:" in line]
        if errors:
            lines.append(errors[-1].strip())
    return "\n".join(dict.fromkeys(lines))
