"""Start-up cost of ispkit: wall time and peak memory of fresh processes, and the heavy modules they load.

Each scenario runs ``--runs`` times, each time in a fresh Python process (``sys.executable``,
so the installed ispkit and its dependencies as a user has them). The child times its own
work with ``time.perf_counter`` from its first line (the interpreter's own start-up, about
20 ms, is outside that figure and inside ``process_s``, the parent's view of the whole
process), reads its peak resident memory with ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
and lists which of :data:`HEAVY` it imported. Prints JSON: per scenario the medians of the
runs (``seconds``, ``process_s``, ``peak_rss_mb``), every run's figures, and the heavy
modules loaded (the same in every run). Scenarios (:data:`SCENARIOS`):

``import``        ``import ispkit``
``numpy_preset``  ``import ispkit`` and ``Pipeline.preset("ma,s,me", camera="microscopy")(raw)`` on a 256×256 mosaic
``torch_module``  the same preset as a torch module, ``Pipeline.preset(...).to_torch()(torch.from_numpy(raw))``
``version``       ``ispkit --version`` (``ispkit.cli.main``, as the console script runs it)
``help``          ``ispkit --help``

Plugins installed as entry points are loaded when the registry first lists stages, and
run whatever they import; ``--no-plugins`` sets ``ISPKIT_DISABLE_PLUGINS=all`` in the
children to measure ispkit alone.

Usage::

    python benchmarks/bench_import.py [--runs 7] [--no-plugins] [--baseline OLD_TREE] [--out FILE]

``--baseline`` measures an older source tree (``git archive <commit> | tar -x -C OLD_TREE``,
put first on ``PYTHONPATH``) interleaved with the installed one: every repetition runs each
scenario under both, and ``baseline_over_current`` gives the ratios of the medians.
:data:`TARGETS` are checked on the current code (``targets`` in the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "torchvision", "segmentation_models_pytorch", "mlflow", "matplotlib", "colour", "dask", "pandas", "scipy", "skimage")
"""Modules whose presence in ``sys.modules`` is reported."""

_PRELUDE = "import time as _t; _start = _t.perf_counter()\n"
_REPORT = f"""
import json as _json, resource as _resource, sys as _sys
_sys.stdout.flush()
print("BENCH " + _json.dumps({{
    "seconds": _t.perf_counter() - _start,
    "peak_rss_mb": _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / 1024,
    "heavy": [m for m in {HEAVY!r} if m in _sys.modules],
}}), file=_sys.stderr)
"""
_RAW = "import numpy as np\nraw = np.random.default_rng(0).random((256, 256))\n"

SCENARIOS: dict[str, str] = {
    "import": "import ispkit\n",
    "numpy_preset": _RAW + "from ispkit import Pipeline\nrgb = Pipeline.preset('ma,s,me', camera='microscopy')(raw)\nassert rgb.shape == (3, 256, 256)\n",
    "torch_module": _RAW
    + "import torch\nfrom ispkit import Pipeline\nrgb = Pipeline.preset('ma,s,me', camera='microscopy').to_torch()(torch.from_numpy(raw))\n"
    + "assert tuple(rgb.shape) == (3, 256, 256)\n",
    "version": "import contextlib, io\nfrom ispkit.cli import main\n"
    + "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n    main(['--version'])\n",
    "help": "import contextlib, io\nfrom ispkit.cli import main\n"
    + "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n    main(['--help'])\n",
}
"""Scenario name → the code a fresh process runs (between the timer's start and the report)."""


def run_once(code: str, env: dict[str, str]) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; its own report plus ``process_s``, the whole process's wall time."""
    start = time.perf_counter()
    # run outside any source tree: ``python -c`` puts the working folder first on sys.path
    done = subprocess.run([sys.executable, "-c", _PRELUDE + code + _REPORT], capture_output=True, text=True, env=env, check=False, cwd=tempfile.gettempdir())
    process_s = time.perf_counter() - start
    lines = [line for line in done.stderr.splitlines() if line.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the scenario failed (exit {done.returncode}):\n{code}\n{done.stderr[-2000:]}")
    report: dict[str, object] = json.loads(lines[-1][len("BENCH ") :])
    report["process_s"] = process_s
    return report


TARGETS = {"numpy_preset": {"seconds": 0.5, "peak_rss_mb": 200.0}}
"""Issue 17 item 7: NumPy-only use (import and one preset) within 0.5 s and 200 MB."""


def measure(names: list[str], variants: dict[str, dict[str, str]], runs: int) -> dict[str, dict[str, object]]:
    """Medians of ``runs`` fresh processes per scenario and variant, interleaved: each repetition
    runs every scenario under every variant once, so machine noise falls on all alike."""
    reports: dict[tuple[str, str], list[dict[str, object]]] = {(n, v): [] for n in names for v in variants}
    for _ in range(runs):
        for name in names:
            for variant, env in variants.items():
                reports[name, variant].append(run_once(SCENARIOS[name], env))
    result: dict[str, dict[str, object]] = {}
    for name in names:
        result[name] = {}
        for variant in variants:
            done = reports[name, variant]
            result[name][variant] = {
                **{k: round(statistics.median(float(r[k]) for r in done), 4) for k in ("seconds", "process_s", "peak_rss_mb")},  # type: ignore[arg-type]
                "heavy_modules": done[-1]["heavy"],
                "runs": [{k: r[k] for k in ("seconds", "process_s", "peak_rss_mb")} for r in done],
            }
        if "baseline" in variants:
            now, before = result[name]["current"], result[name]["baseline"]
            result[name]["baseline_over_current"] = {k: round(before[k] / now[k], 2) for k in ("seconds", "process_s", "peak_rss_mb")}  # type: ignore[index]
    return result


def targets(scenarios: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """Each :data:`TARGETS` figure of the current code: the limit, the median measured and whether it is met."""
    met: dict[str, dict[str, object]] = {}
    for name, limits in TARGETS.items():
        if name in scenarios:
            now = scenarios[name]["current"]
            for key, limit in limits.items():
                value = now[key]  # type: ignore[index]
                met[f"{name}.{key}"] = {"limit": limit, "measured": value, "met": value <= limit}
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per scenario and variant (default 7)")
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--no-plugins", action="store_true", help="ISPKIT_DISABLE_PLUGINS=all in the children")
    parser.add_argument("--baseline", type=Path, help="a source tree of an older ispkit (e.g. from git archive) measured interleaved with this one")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.no_plugins:
        env["ISPKIT_DISABLE_PLUGINS"] = "all"
    variants = {"current": env}
    if args.baseline is not None:
        variants["baseline"] = {**env, "PYTHONPATH": str(args.baseline.resolve())}
    load = list(os.getloadavg())
    scenarios = measure(args.scenarios, variants, args.runs)
    result = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": load,
            "load_average_after": list(os.getloadavg()),
        },
        "plugins": "disabled" if args.no_plugins else "as installed",
        "baseline": str(args.baseline) if args.baseline else None,
        "runs": args.runs,
        "scenarios": scenarios,
        "targets": targets(scenarios),
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
