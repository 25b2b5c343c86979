#!/usr/bin/env python
"""What the report's carpet sample costs PrepareSignals, on the 3 mm seed data.

Usage::

    python bench/bench_carpet_sample.py [--repeat R]

Times, in this process, :func:`nipype_ward.steps.prepare_series` (the whole
step of the ``prepare_signals`` node: read, mask, prepare, write) without and
with ``out_carpet``, runs interleaved and paired, for no preparation (the
seed's default) and for detrending and z-scoring; then the carpet sample
alone (:func:`nipype_ward.core.carpet.carpet_sample`: rows and both DVARS)
and its write. On a busy machine the paired differences of the whole step
are noise; the cost of the sample alone is the number to read.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from nipype_ward import steps
from nipype_ward.core.carpet import carpet_sample
from nipype_ward.datasets import load_simulated_rest
from nipype_ward.io.arrays import save_carpet
from nipype_ward.steps import SignalPreparation


def _best(function, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    data = load_simulated_rest()
    out = Path(tempfile.mkdtemp())
    preparations = {"none (seed default)": SignalPreparation(),
                    "detrend + zscore": SignalPreparation(detrend=True,
                                                          standardize="zscore_sample")}
    for label, preparation in preparations.items():
        times = {False: [], True: []}
        for index in range(args.repeat):
            for carpet in ((False, True) if index % 2 == 0 else (True, False)):
                start = time.perf_counter()
                series = steps.prepare_series(
                    data.func, out / "s.npy", out / "m.nii.gz", out / "mean.nii.gz",
                    brain_mask_path=data.mask, preparation=preparation,
                    out_carpet=out / "c.npz" if carpet else None)
                times[carpet].append(time.perf_counter() - start)
        without, with_ = np.array(times[False]), np.array(times[True])
        print(f"prepare_series, {label}, X {series.X.shape}: without {without.min():.3f} s, "
              f"with the carpet sample {with_.min():.3f} s (best of {args.repeat}); paired "
              f"difference median {1000 * np.median(with_ - without):+.0f} ms")
    raw = steps.read_prepared(data.func, mask_path=data.mask)[0].X
    prepared = steps.read_prepared(data.func, mask_path=data.mask,
                                   preparation=preparations["detrend + zscore"])[0].X
    sample = carpet_sample(raw, prepared)
    cost = _best(lambda: carpet_sample(raw, prepared), args.repeat)
    write = _best(lambda: save_carpet(sample, out / "c.npz"), args.repeat)
    print(f"carpet sample alone: {1000 * cost:.1f} ms, its write {1000 * write:.1f} ms "
          f"({(out / 'c.npz').stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
