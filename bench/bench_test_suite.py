"""What the README's test command costs: wall time and peak memory of its whole process tree.

``python bench/bench_test_suite.py`` runs the README's test command (the
tests not marked ``heavy``) and then, with ``--heavy``, the heavy tier, each
as CI runs it, sampling every 0.5 s the memory of the pytest process and
all its workers. Printed per tier: wall time, the peak of the summed
resident sizes (pages shared between workers counted once per process, an
upper bound) and of the summed proportional sizes (shared pages split
between the processes that share them: what the machine gives up). Needs
the ``bench`` extra (psutil).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]

TIERS = {"readme": ["-m", "not heavy"], "heavy": ["-m", "heavy"]}


def run_tier(marker_args, workers: str) -> dict:
    """Run one tier of the suite; return its wall time, peaks and exit code."""
    command = [sys.executable, "-m", "pytest", "-n", workers, *marker_args, "-q",
               "-p", "no:cacheprovider"]
    start = time.monotonic()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    root = psutil.Process(proc.pid)
    peak_rss = peak_pss = 0
    while proc.poll() is None:
        rss = pss = 0
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            processes = []
        for process in processes:
            try:
                memory = process.memory_full_info()
            except psutil.Error:
                continue
            rss, pss = rss + memory.rss, pss + memory.pss
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.5)
    output = proc.stdout.read()
    summary = next((line for line in reversed(output.splitlines()) if " in " in line), "")
    return {"wall_s": time.monotonic() - start, "rss_mb": peak_rss >> 20,
            "pss_mb": peak_pss >> 20, "returncode": proc.returncode, "summary": summary}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heavy", action="store_true", help="also run the heavy tier")
    parser.add_argument("-n", "--workers", default="auto", help="pytest-xdist workers")
    args = parser.parse_args(argv)
    print(f"{platform.node()}: {psutil.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB, load "
          f"{', '.join(f'{value:.1f}' for value in psutil.getloadavg())}")
    print(f"{'tier':8} {'wall':>8} {'peak RSS sum':>13} {'peak PSS sum':>13}  result")
    status = 0
    for tier in ("readme", "heavy") if args.heavy else ("readme",):
        result = run_tier(TIERS[tier], args.workers)
        print(f"{tier:8} {result['wall_s']:7.1f}s {result['rss_mb']:10,d} MB "
              f"{result['pss_mb']:10,d} MB  {result['summary']}")
        status = status or result["returncode"]
    return status


if __name__ == "__main__":
    raise SystemExit(main())
