"""Throughput of bulk drift synthesis (ispkit.scale.bulk) with 1 vs 2 worker processes.

Synthesises ``--n`` microscopy raw files (``--size``², one intensity) once, then runs
:func:`ispkit.scale.bulk.synthesize_bulk` for ``--presets`` into a fresh Zarr store on a
``dask.distributed.LocalCluster`` with 1 and with 2 worker processes (one thread each,
torch limited to one thread per worker), in the same run. The cluster is started (and
warmed up with a one-image run) before timing; the best of ``--rounds`` is kept. Prints
JSON: images/s (an image = one raw file through every preset) per worker count and the
ratio ``two_over_one`` (ideal: 2.0 on a machine with ≥ 2 free cores).

Usage::

    python benchmarks/bench_bulk.py [--n 24] [--size 256] [--presets ma,s,me bi,u,ga] [--rounds 2] [--out FILE]
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


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--presets", nargs="+", default=["ma,s,me", "bi,u,ga"])
    parser.add_argument("--backend", default="numpy", choices=["numpy", "torch"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from dask.distributed import Client, LocalCluster

    from ispkit.data.synthesize import synthesize_microscopy
    from ispkit.scale.bulk import raw_archive, synthesize_bulk

    work = Path(tempfile.mkdtemp(prefix="bench_bulk_"))
    try:
        root = synthesize_microscopy(work / "raw", n=args.n, seed=0, size=args.size, intensities=(1.0,), workers=os.cpu_count())
        archive = raw_archive(root / "microscopy" / "images" / "raw_scale100")
        warm = raw_archive(archive.paths[:1])
        results = {}
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, Client(cluster) as client:
                client.run(_one_thread)
                synthesize_bulk(warm, args.presets, work / f"warm{workers}.zarr", scheduler=client, backend=args.backend)
                best = float("inf")
                for r in range(args.rounds):
                    store = work / f"w{workers}_r{r}.zarr"
                    t0 = time.perf_counter()
                    synthesize_bulk(archive, args.presets, store, scheduler=client, backend=args.backend)
                    best = min(best, time.perf_counter() - t0)
                    shutil.rmtree(store)
            results[workers] = {"seconds": round(best, 3), "images_per_s": round(len(archive) / best, 3)}
        report = {
            "benchmark": "bulk drift synthesis (ispkit.scale.bulk.synthesize_bulk, LocalCluster processes)",
            "images": len(archive),
            "size": args.size,
            "presets": args.presets,
            "backend": args.backend,
            "rounds": args.rounds,
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "workers_1": results[1],
            "workers_2": results[2],
            "two_over_one": round(results[2]["images_per_s"] / results[1]["images_per_s"], 3),
        }
        text = json.dumps(report, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
