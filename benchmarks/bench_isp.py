"""Throughput of the twelve presets: library chain vs ispkit NumPy vs ispkit torch, on real raw crops.

Measured in one process, interleaved (every repetition runs every contender once, so a
slow phase of a shared machine hits all of them), reporting **medians** of the
repetitions:

* ``chain``: the plain library-call chain (``ispkit.static.static_pipeline``), image by image;
* ``numpy``: ``Pipeline(raw)``, ispkit's NumPy backend;
* ``torch``: ``Pipeline.to_torch()`` (float32 parameters, the default) on a float32
  batch, CPU, ``torch.inference_mode()``, default settings (``ispkit.threads``);
* ``torch_after_numpy``: the same torch call made right after the NumPy backend's, next
  to ``torch`` made right after another torch call;

in four conditions: idle; with one CPU-bound co-runner (a subprocess this benchmark
starts, multiplying NumPy matrices on one thread); one 1080×1920 frame; and
forward + backward of ``bi,s,ga`` against the paper's released torch module
(``--paper-code PATH``, a local checkout of its repository, never shipped here). Also
measured in the same run: the copy bandwidth of this machine and how far the best
preset is from the bound it sets, peak memory per contender, ``torch.compile`` on three
presets, and on a CUDA device (when one is present) images/s and GP/s at 256×256
batch 256 and at 4K, eager and compiled.

Inputs: 256×256 crops (and the full frame) of a real 10-bit raw, e.g. fast-openISP's
``raw/test.RAW`` (1920×1080, little-endian uint16, RGGB; ``--raw PATH``), else a
natural-image mosaic made from scikit-image's sample photographs.

Usage::

    python benchmarks/bench_isp.py --raw test.RAW --paper-code ../raw2logit --out benchmarks/results/bench_isp.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
import types
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

import ispkit
from ispkit import Camera, Pipeline
from ispkit import threads as ispkit_threads
from ispkit.static import static_pipeline

COMPILE_PRESETS = ("bi,s,ga", "ma,u,me", "me,s,ga")

# -- inputs ------------------------------------------------------------------------------


def read_raw(path: str, height: int, width: int, bits: int) -> np.ndarray:
    """A headerless little-endian uint16 raw frame ``(height, width)`` normalised by ``2**bits - 1``."""
    data = np.fromfile(path, dtype="<u2")
    if data.size != height * width:
        raise SystemExit(f"{path}: {data.size} samples, expected {height}×{width} = {height * width}")
    if data.max() >= 1 << bits:
        raise SystemExit(f"{path}: a sample of {data.max()} does not fit {bits} bits")
    return data.reshape(height, width).astype(np.float64) / ((1 << bits) - 1)


def natural_frame(height: int, width: int, pattern: str) -> np.ndarray:
    """A photograph from scikit-image, resized to ``height`` × ``width`` and mosaicked in ``pattern``."""
    from skimage import data, transform

    from ispkit.cfa import masks_numpy

    rgb = transform.resize(data.astronaut() / 255.0, (height, width), order=1, anti_aliasing=False)
    masks = masks_numpy((height, width), pattern)
    return np.einsum("hwc,chw->hw", rgb, masks)


def crops(frame: np.ndarray, n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` crops of ``size``² at even offsets (the CFA phase kept), float64."""
    rng = np.random.default_rng(seed)
    h, w = frame.shape
    out = np.empty((n, size, size))
    for k in range(n):
        y, x = 2 * rng.integers(0, (h - size) // 2 + 1), 2 * rng.integers(0, (w - size) // 2 + 1)
        out[k] = frame[y : y + size, x : x + size]
    return out


# -- timing ------------------------------------------------------------------------------


def medians(fns: dict[str, Callable[[], object]], reps: int, sync: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Median wall time of each function over ``reps`` interleaved repetitions (after one warm-up each)."""
    for fn in fns.values():
        fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


@contextmanager
def co_runner():
    """One CPU-bound process beside the benchmark: NumPy matrix products on one thread, until stopped."""
    code = "import numpy as np\na = np.random.rand(200, 200)\nwhile True:\n    a = np.tanh(a @ a)\n"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        time.sleep(1.0)  # let it start spinning
        yield proc
    finally:
        proc.kill()
        proc.wait()


def contenders(pipeline: Pipeline, preset: str, raw: np.ndarray, batch: torch.Tensor) -> dict[str, Callable[[], object]]:
    camera = pipeline.camera
    module = pipeline.to_torch()
    return {
        "chain": lambda: [static_pipeline(x, preset, camera) for x in raw],
        "numpy": lambda: pipeline(raw),
        "torch_after_numpy": lambda: module(batch),  # runs right after "numpy"
        "torch": lambda: module(batch),  # runs right after "torch_after_numpy"
    }


def measure(raw: np.ndarray, camera: Camera, reps: int, label: str) -> dict[str, dict[str, float]]:
    """Images per second of every contender, for every preset."""
    n = raw.shape[0]
    batch = torch.from_numpy(raw).float()
    results: dict[str, dict[str, float]] = {}
    print(f"{label}: {n} × {raw.shape[1]}×{raw.shape[2]}", flush=True)
    for preset in ispkit.PRESETS:
        pipeline = Pipeline.preset(preset, camera=camera)
        with torch.inference_mode():
            seconds = medians(contenders(pipeline, preset, raw, batch), reps)
        results[preset] = {k: n / v for k, v in seconds.items()}
        print(f"  {preset:8s} " + "  ".join(f"{k} {v:8.1f}" for k, v in results[preset].items()) + " img/s", flush=True)
    return results


def summarise(per_preset: dict[str, dict[str, float]], n: int) -> dict[str, float]:
    """Ratios over all twelve presets together (total time) and per-preset extremes."""
    total = {k: sum(n / row[k] for row in per_preset.values()) for k in next(iter(per_preset.values()))}
    out = {f"total_seconds_{k}": v for k, v in total.items()}
    for k in total:
        if k != "chain":
            out[f"{k}_over_chain"] = total["chain"] / total[k]
            out[f"{k}_over_chain_min_preset"] = min(row[k] / row["chain"] for row in per_preset.values())
            out[f"{k}_over_chain_min_preset_name"] = min(per_preset, key=lambda p: per_preset[p][k] / per_preset[p]["chain"])
    out["torch_after_numpy_slowdown_max"] = max(row["torch"] / row["torch_after_numpy"] for row in per_preset.values())
    out["torch_after_numpy_slowdown_total"] = total["torch_after_numpy"] / total["torch"]
    return out


# -- bandwidth and memory ----------------------------------------------------------------


def copy_bandwidth(megabytes: int = 256, reps: int = 7) -> dict[str, float]:
    """Bytes read + written per second by a large ``copy_`` (median), with one thread and with the default threads."""
    src = torch.empty(megabytes << 18, dtype=torch.float32).uniform_()
    dst = torch.empty_like(src)
    out = {}
    for label, threads in (("one_thread", 1), ("all_threads", torch.get_num_threads())):
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        seconds = medians({"copy": lambda: dst.copy_(src)}, reps)["copy"]
        torch.set_num_threads(previous)
        out[f"copy_GBps_{label}"] = 2 * src.numel() * 4 / seconds / 1e9
    return out


def bandwidth_bound(per_preset: dict[str, dict[str, float]], size: int, bandwidth: float) -> dict[str, float | str]:
    """How far the fastest preset is from moving only its input and output once at ``bandwidth``.

    The least any preset must move: read the float32 mosaic (4 bytes per pixel) and write
    the float32 RGB view (12 bytes per pixel), 16 bytes per pixel.
    """
    best = max(per_preset, key=lambda p: per_preset[p]["torch"])
    pixels_per_second = per_preset[best]["torch"] * size * size
    bound = bandwidth / 16
    return {
        "best_preset": best,
        "bytes_per_pixel_at_least": 16,
        "best_preset_Mpixel_per_s": pixels_per_second / 1e6,
        "bound_Mpixel_per_s": bound / 1e6,
        "fraction_of_bound": pixels_per_second / bound,
        "effective_bytes_per_pixel": bandwidth / pixels_per_second,
    }


def numpy_peak(fn: Callable[[], object]) -> int:
    """Peak bytes NumPy (and Python) allocated during ``fn()``, by tracemalloc."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def torch_peak(fn: Callable[[], object]) -> int:
    """Peak bytes of CPU tensors alive during ``fn()``: the running sum of the profiler's allocation events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.time_range.start, e.cpu_memory_usage) for e in prof.events() if e.cpu_memory_usage)
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def peak_memory(raw: np.ndarray, camera: Camera, presets: tuple[str, ...]) -> dict[str, dict[str, float]]:
    batch = torch.from_numpy(raw).float()
    out = {}
    for preset in presets:
        pipeline = Pipeline.preset(preset, camera=camera)
        module = pipeline.to_torch()
        with torch.inference_mode():
            module(batch)
            out[preset] = {
                "chain_MiB": numpy_peak(lambda preset=preset: [static_pipeline(x, preset, camera) for x in raw]) / 2**20,
                "numpy_MiB": numpy_peak(lambda pipeline=pipeline: pipeline(raw)) / 2**20,
                "torch_MiB": torch_peak(lambda module=module: module(batch)) / 2**20,
                "input_float32_MiB": batch.numel() * 4 / 2**20,
            }
    return out


# -- the paper's module ------------------------------------------------------------------


def load_paper_module(checkout: str) -> type:
    """``ParametrizedProcessing`` from a checkout of the paper's released code (processing/pipeline_torch.py).

    Run as its source is, with stand-ins for what its import line needs but the class
    does not use (its NumPy pipeline and utilities, which import rawpy, b2sdk, IPython)
    and for ``numpy.lib.function_base``, which NumPy 2 removed.
    """
    root = Path(checkout)
    source = (root / "processing" / "pipeline_torch.py").read_text()
    stubs = {
        "processing": types.ModuleType("processing"),
        "processing.pipeline_numpy": types.SimpleNamespace(processing=None),
        "utils": types.ModuleType("utils"),
        "utils.base": types.SimpleNamespace(np2torch=None, torch2np=None),
    }
    try:
        import numpy.lib.function_base  # noqa: F401
    except ImportError:
        stubs["numpy.lib.function_base"] = types.SimpleNamespace(interp=np.interp)
    saved = {k: sys.modules.get(k) for k in stubs}
    cwd = os.getcwd()
    try:
        sys.modules.update(stubs)  # type: ignore[arg-type]
        os.chdir(root)  # the module chdirs to the folder holding README.md
        namespace: dict[str, object] = {"__name__": "raw2logit_pipeline_torch"}
        exec(compile(source, str(root / "processing" / "pipeline_torch.py"), "exec"), namespace)
    finally:
        os.chdir(cwd)
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return namespace["ParametrizedProcessing"]  # type: ignore[return-value]


def paper_comparison(checkout: str, raw: np.ndarray, camera: Camera, reps: int) -> dict[str, float]:
    """Forward + backward (mean of the output) of ``bi,s,ga``, every parameter trainable, against the paper's module."""
    paper_class = load_paper_module(checkout)
    params = (list(map(float, camera.black_level)), list(map(float, camera.white_balance)), np.asarray(camera.color_matrix, dtype=float).ravel().tolist())
    paper = paper_class(camera_parameters=params, batch_norm_output=False)
    ours = Pipeline.preset("bi,s,ga", camera=camera).to_torch(trainable="all")
    batch = torch.from_numpy(raw).float()

    def step(module: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            module.zero_grad(set_to_none=True)
            module(batch).mean().backward()

        return run

    seconds = medians({"paper": step(paper), "ispkit": step(ours)}, reps)
    n = raw.shape[0]
    return {"paper_img_per_s": n / seconds["paper"], "ispkit_img_per_s": n / seconds["ispkit"], "ispkit_over_paper": seconds["paper"] / seconds["ispkit"]}


# -- torch.compile and CUDA --------------------------------------------------------------


def compiled_cpu(raw: np.ndarray, camera: Camera, reps: int) -> dict[str, dict[str, float]]:
    """Eager vs ``torch.compile`` on the CPU, images/s, for :data:`COMPILE_PRESETS`."""
    batch = torch.from_numpy(raw).float()
    out = {}
    for preset in COMPILE_PRESETS:
        module = Pipeline.preset(preset, camera=camera).to_torch().eval()
        compiled = torch.compile(module)
        with torch.no_grad():  # not inference_mode: dynamo's guards on NumPy constants fail inside it (torch 2.14)
            start = time.perf_counter()
            compiled(batch)
            compile_seconds = time.perf_counter() - start
            seconds = medians({"eager": lambda module=module: module(batch), "compiled": lambda compiled=compiled: compiled(batch)}, reps)
        n = raw.shape[0]
        out[preset] = {
            "eager": n / seconds["eager"],
            "compiled": n / seconds["compiled"],
            "speedup": seconds["eager"] / seconds["compiled"],
            "compile_seconds": compile_seconds,
        }
        print(f"  compile {preset}: {out[preset]}", flush=True)
    return out


def cuda_throughput(frame: np.ndarray, camera: Camera, reps: int, size: int = 256, batch_size: int = 256) -> dict[str, object]:
    """Images/s and GP/s per preset on the CUDA device: a batch of ``batch_size`` crops and one 4K frame, eager and compiled."""
    device = torch.device("cuda")
    small = torch.from_numpy(crops(frame, batch_size, size, seed=1)).float().to(device)
    k = -(-2160 // frame.shape[0])
    big = torch.from_numpy(np.tile(frame, (k, -(-3840 // frame.shape[1])))[:2160, :3840].copy())[None].float().to(device)
    out: dict[str, object] = {"device": torch.cuda.get_device_name(device)}
    for label, batch in (("256x256_batch256", small), ("2160x3840", big)):
        rows = {}
        for preset in ispkit.PRESETS:
            module = Pipeline.preset(preset, camera=camera).to_torch().to(device).eval()
            fns = {"eager": lambda module=module, batch=batch: module(batch, check=False)}
            compiled = torch.compile(module)
            fns["compiled"] = lambda compiled=compiled, batch=batch: compiled(batch, check=False)
            with torch.no_grad():
                seconds = medians(fns, reps, torch.cuda.synchronize)
            pixels = batch.shape[0] * batch.shape[-1] * batch.shape[-2]
            rows[preset] = {f"{k}_img_per_s": batch.shape[0] / v for k, v in seconds.items()} | {f"{k}_GP_per_s": pixels / v / 1e9 for k, v in seconds.items()}
            print(f"  cuda {label} {preset}: {rows[preset]}", flush=True)
        out[label] = rows
    return out


# -- main --------------------------------------------------------------------------------


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="crops per batch")
    parser.add_argument("--size", type=int, default=256, help="crop side")
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions (medians)")
    parser.add_argument("--raw", help="a headerless little-endian uint16 raw frame (fast-openISP's raw/test.RAW)")
    parser.add_argument("--raw-shape", default="1080x1920", help="its height×width")
    parser.add_argument("--raw-bits", type=int, default=10, help="its bit depth")
    parser.add_argument("--paper-code", help="a local checkout of the paper's released code, to measure its torch module")
    parser.add_argument("--camera", default="microscopy")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: load,hd,paper,memory,compile,cuda")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    kept = ispkit.keep_freed_memory()
    camera = Camera.get(args.camera)
    if args.raw:
        height, width = map(int, args.raw_shape.split("x"))
        frame, source = read_raw(args.raw, height, width, args.raw_bits), f"{Path(args.raw).name} ({args.raw_shape}, {args.raw_bits}-bit)"
    else:
        frame, source = natural_frame(1080, 1920, camera.pattern), "scikit-image astronaut, resized to 1080×1920 and mosaicked"
    raw = crops(frame, args.batch, args.size)
    report: dict[str, object] = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "cpus": len(os.sched_getaffinity(0)),
            "torch_threads": torch.get_num_threads(),
            "ispkit_workers": ispkit_threads.workers(),
            "cpu": platform.processor() or platform.machine(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "input": source,
        "camera": camera.name,
        "freed_memory_kept": kept,
        "reps": args.reps,
        "load_average_start": load_average(),
    }
    report["bandwidth"] = copy_bandwidth()
    small = measure(raw, camera, args.reps, "idle")
    report[f"{args.size}x{args.size}"] = {"batch": args.batch, "images_per_second": small, "summary": summarise(small, args.batch)}
    report["bandwidth_bound"] = bandwidth_bound(small, args.size, report["bandwidth"]["copy_GBps_all_threads"] * 1e9)  # type: ignore[index]
    if "hd" not in skip:
        hd = measure(frame[None], camera, max(3, args.reps - 2), "one frame")
        report[f"{frame.shape[0]}x{frame.shape[1]}"] = {"batch": 1, "images_per_second": hd, "summary": summarise(hd, 1)}
    if "paper" not in skip and args.paper_code:
        report["paper_bi_s_ga_forward_backward"] = paper_comparison(args.paper_code, raw, camera, args.reps)
        print("paper:", report["paper_bi_s_ga_forward_backward"], flush=True)
    if "load" not in skip:
        with co_runner():
            loaded = measure(raw, camera, args.reps, "one CPU-bound co-runner")
            report["with_co_runner"] = {"batch": args.batch, "images_per_second": loaded, "summary": summarise(loaded, args.batch)}
            if "paper" not in skip and args.paper_code:
                report["with_co_runner"]["paper_bi_s_ga_forward_backward"] = paper_comparison(args.paper_code, raw, camera, args.reps)  # type: ignore[index]
    if "memory" not in skip:
        report["peak_memory"] = peak_memory(raw, camera, ("bi,s,ga", "ma,u,me", "me,s,ga"))
    if "compile" not in skip:
        report["torch_compile_cpu"] = compiled_cpu(raw, camera, args.reps)
    if "cuda" not in skip:
        report["cuda"] = cuda_throughput(frame, camera, args.reps) if torch.cuda.is_available() else "not measured: no CUDA device in this run"
    report["load_average_end"] = load_average()
    report["targets"] = targets(report, args.size)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        from ispkit.atomic import atomic_write_text

        atomic_write_text(args.out, text + "\n")


def targets(report: dict, size: int) -> dict[str, object]:
    """Issue 14's targets, each with the measured value and whether it is met."""
    s = report[f"{size}x{size}"]["summary"]
    out: dict[str, object] = {
        "torch >= 10x chain, all twelve presets (idle)": [round(s["torch_over_chain"], 2), s["torch_over_chain"] >= 10],
        "no preset below 5x (idle)": [round(s["torch_over_chain_min_preset"], 2), s["torch_over_chain_min_preset"] >= 5],
        "torch right after NumPy within 10% of torch alone": [round(s["torch_after_numpy_slowdown_max"], 3), s["torch_after_numpy_slowdown_max"] <= 1.10],
        "numpy within 10% of the chain, every preset": [round(s["numpy_over_chain_min_preset"], 3), s["numpy_over_chain_min_preset"] >= 0.9],
    }
    hd = next((v for k, v in report.items() if k.startswith("1080x")), None)
    if hd:
        out["1080p frame >= 5x chain, every preset"] = [
            round(hd["summary"]["torch_over_chain_min_preset"], 2),
            hd["summary"]["torch_over_chain_min_preset"] >= 5,
        ]
    if "with_co_runner" in report:
        c = report["with_co_runner"]["summary"]
        out["co-runner: torch >= 3x chain"] = [round(c["torch_over_chain"], 2), c["torch_over_chain"] >= 3]
        out["co-runner: numpy >= 0.8x chain"] = [round(c["numpy_over_chain"], 3), c["numpy_over_chain"] >= 0.8]
    if "paper_bi_s_ga_forward_backward" in report:
        r = report["paper_bi_s_ga_forward_backward"]["ispkit_over_paper"]
        out["bi,s,ga forward+backward >= 5x the paper's module"] = [round(r, 2), r >= 5]
    return out


if __name__ == "__main__":
    main()
