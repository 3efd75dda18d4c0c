"""Throughput of a drift-synthesis grid (ispkit.drift.grid): one process vs 1 and 2 Dask workers.

Synthesises ``--n`` microscopy raws (``--size``²) once, then runs the same small study
(``--train`` pipelines × ``--folds`` folds of ``small_cnn``, ``--epochs`` epochs, every
train pipeline tested, two corruptions) three times into fresh run folders, in one run of
this script: in this process (torch on all cores), on a ``LocalCluster`` of one worker
process, and of two (each worker's torch gets the cores divided by the workers). The
clusters are started, and torch and ispkit imported on their workers, before timing
(each worker still opens the study: reads the dataset and makes its views). Prints JSON: units per minute of each, the ratios
``two_over_one`` (2 vs 1 workers) and ``two_over_in_process``, and whether each
cluster's results equal the in-process ones (bit-equal only with the same number of
torch threads per unit, see :mod:`ispkit.drift.grid`).

Usage::

    python benchmarks/bench_grid.py [--n 180] [--size 128] [--epochs 6] [--folds 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

TRAIN = ["bi,s,me", "me,u,ga", "ma,s,ga", "bi,u,me"]


def _warm() -> None:
    """Import torch and the study code on a worker, as a long-lived cluster would have done."""
    import ispkit.drift.grid
    import ispkit.drift.synthesis  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=180)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--train", type=int, default=4, choices=range(1, len(TRAIN) + 1))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from dask.distributed import Client, LocalCluster

    from ispkit.data.synthesize import synthesize_microscopy
    from ispkit.drift.config import SynthesisConfig
    from ispkit.drift.synthesis import run_synthesis
    from ispkit.memory import keep_freed_memory

    keep_freed_memory()  # as the ispkit command does (the workers do it too)

    work = Path(tempfile.mkdtemp(prefix="bench_grid_"))
    try:
        synthesize_microscopy(work / "data", n=args.n, seed=0, size=args.size, intensities=(1.0,), workers=os.cpu_count())
        train = TRAIN[: args.train]
        config = SynthesisConfig.from_yaml(f"""
name: bench-grid
dataset: {{kind: microscopy, root: {work / "data"}}}
pipelines: {{train: {json.dumps(train)}, test: {json.dumps(train)}}}
model: {{name: small_cnn, downsample: 2}}
training: {{epochs: {args.epochs}, batch_size: 16, lr: 0.003}}
folds: {args.folds}
corruptions: {{names: [gaussian_noise, contrast], severities: [3]}}
""")
        units = len(train) * args.folds
        seconds, equal = {}, {}
        t0 = time.perf_counter()
        alone = run_synthesis(config, work / "in_process", tracking=False)
        seconds["in_process"] = time.perf_counter() - t0
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, Client(cluster) as client:
                client.run(_warm)
                t0 = time.perf_counter()
                spread = run_synthesis(config, work / f"workers{workers}", tracking=False, scheduler=client)
                seconds[f"workers_{workers}"] = time.perf_counter() - t0
            equal[f"workers_{workers}"] = spread.to_dict() == alone.to_dict()
        per_minute = {k: round(units / v * 60, 2) for k, v in seconds.items()}
        report = {
            "benchmark": "drift-synthesis grid (ispkit.drift.synthesis.run_synthesis: in process vs LocalCluster workers)",
            "units": units,
            "images": args.n,
            "size": args.size,
            "epochs": args.epochs,
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "seconds": {k: round(v, 2) for k, v in seconds.items()},
            "units_per_minute": per_minute,
            "results_equal_to_in_process": equal,
            "two_over_one": round(per_minute["workers_2"] / per_minute["workers_1"], 3),
            "two_over_in_process": round(per_minute["workers_2"] / per_minute["in_process"], 3),
        }
        text = json.dumps(report, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
