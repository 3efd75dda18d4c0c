"""Throughput of the twelve presets: library chain vs ispkit numpy vs ispkit torch.

For every preset, images per second of

(a) ``chain``: the plain library-call chain (``ispkit.static.static_pipeline``), image by image;
(b) ``numpy``: ``Pipeline(raw)``, ispkit's numpy backend;
(c) ``torch_cpu``: ``Pipeline.to_torch()`` on a batch, float32, CPU, no autograd;
(d) ``cuda``: the same on a CUDA device, when one is available,

all measured in the same run, interleaved, best of several runs (noise on a shared
machine only adds time), at 256×256 (a batch) and on one 1920×1080 frame. Prints
JSON; the ratios are what to compare across machines. Targets (issue #2): torch CPU
≥ 5× the chain over all twelve presets together, numpy within 10 % of the chain
(``numpy_over_chain`` ≥ 0.9).

Usage::

    python benchmarks/bench_isp.py [--batch 32] [--rounds 3] [--min-seconds 1] [--no-hd] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

import ispkit
from ispkit import Camera, Pipeline
from ispkit.static import static_pipeline


def best_times(fns: dict[str, Callable[[], object]], rounds: int, min_seconds: float, sync: Callable[[], None]) -> dict[str, float]:
    """Smallest wall time of each function; noise on a shared machine only ever adds time.

    The functions run interleaved, round after round (so a slow phase of the machine
    hits all of them), for at least ``rounds`` rounds and until each has run for
    ``min_seconds`` in total.
    """
    best = {name: float("inf") for name in fns}
    spent = dict.fromkeys(fns, 0.0)
    for fn in fns.values():  # warm-up
        fn()
    sync()
    done = 0
    while done < rounds or min(spent.values()) < min_seconds:
        for name, fn in fns.items():
            if done >= rounds and spent[name] >= min_seconds:
                continue
            start = time.perf_counter()
            fn()
            sync()
            elapsed = time.perf_counter() - start
            best[name] = min(best[name], elapsed)
            spent[name] += elapsed
        done += 1
    return best


def measure(raw: np.ndarray, camera: Camera, rounds: int, min_seconds: float, cuda: bool) -> dict[str, dict[str, float]]:
    """Images per second for every preset and backend."""
    n = raw.shape[0]
    batch32 = torch.from_numpy(raw).float()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    results: dict[str, dict[str, float]] = {}
    for preset in ispkit.PRESETS:
        pipeline = Pipeline.preset(preset, camera=camera)
        module = pipeline.to_torch()
        fns: dict[str, Callable[[], object]] = {
            "chain": lambda: [static_pipeline(x, preset, camera) for x in raw],
            "numpy": lambda: pipeline(raw),
            "torch_cpu": lambda: module(batch32),
        }
        if cuda:
            gpu_module, gpu_batch = pipeline.to_torch().cuda(), batch32.cuda()
            fns["cuda"] = lambda: gpu_module(gpu_batch)
        with torch.inference_mode():
            seconds = best_times(fns, rounds, min_seconds, sync)
        results[preset] = {k: n / v for k, v in seconds.items()}
        print(f"  {preset:8s} " + "  ".join(f"{k} {v:8.1f} img/s" for k, v in results[preset].items()), flush=True)
    return results


def summarise(per_preset: dict[str, dict[str, float]], n: int) -> dict[str, float]:
    """Ratios over all twelve presets together (total time) and per-preset extremes."""
    total = {k: sum(n / row[k] for row in per_preset.values()) for k in next(iter(per_preset.values()))}
    out = {f"total_seconds_{k}": v for k, v in total.items()}
    for k in total:
        if k != "chain":
            out[f"{k}_over_chain"] = total["chain"] / total[k]
            out[f"{k}_over_chain_min_preset"] = min(row[k] / row["chain"] for row in per_preset.values())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="images of 256×256 per batch")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per preset (at least)")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="least time spent per backend and preset")
    parser.add_argument("--no-hd", action="store_true", help="skip the 1920×1080 frame")
    parser.add_argument("--camera", default="microscopy")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--default-allocator", action="store_true", help="leave glibc's malloc thresholds as they are (see ispkit.memory)")
    args = parser.parse_args()
    kept = False if args.default_allocator else ispkit.keep_freed_memory()
    camera = Camera.get(args.camera)
    cuda = torch.cuda.is_available()
    rng = np.random.default_rng(0)
    report: dict[str, object] = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "cuda": torch.cuda.get_device_name() if cuda else None,
        },
        "camera": camera.name,
        "freed_memory_kept": kept,
    }
    print(f"{args.batch} × {args.size}×{args.size}:", flush=True)
    small = measure(rng.random((args.batch, args.size, args.size)), camera, args.rounds, args.min_seconds, cuda)
    report[f"{args.size}x{args.size}"] = {"batch": args.batch, "images_per_second": small, "summary": summarise(small, args.batch)}
    if not args.no_hd:
        print("1 × 1080×1920:", flush=True)
        hd = measure(rng.random((1, 1080, 1920)), camera, 2, args.min_seconds, cuda)
        report["1080x1920"] = {"batch": 1, "images_per_second": hd, "summary": summarise(hd, 1)}
    summary = report[f"{args.size}x{args.size}"]["summary"]  # type: ignore[index]
    report["targets"] = {
        "torch_cpu_over_chain >= 5": summary["torch_cpu_over_chain"] >= 5.0,
        "numpy_over_chain >= 0.9": summary["numpy_over_chain"] >= 0.9,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        from ispkit.atomic import atomic_write_text

        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
