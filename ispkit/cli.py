"""The ``ispkit`` command line: a thin layer over the public API.

Commands
--------
``ispkit views``    process a raw mosaic (or the generated demo scene) through presets,
                    writing one PNG and one YAML per view and a contact sheet
``ispkit data synth microscopy|drone --out DIR [--n N] [--seed S]``
                    write a synthetic dataset in the published layout (resumable)
``ispkit data download --root DIR [--record ID] [--base-url URL]``
                    download the published record from Zenodo, verify and unpack it (resumable)
``ispkit plugins``  list stage kinds and methods, their providers, and plugin failures
``ispkit presets``  list the twelve paper presets
``ispkit cameras``  list registered cameras
``ispkit models``   list registered task models
``ispkit experiments list``
                    list the example experiments shipped with ispkit
``ispkit experiments copy NAME [DIR]``
                    copy one into DIR (default: experiments), never overwriting, and say how to run it
``ispkit synthesis run CONFIG [--out DIR] [--tracking-uri URI | --no-tracking] [--scheduler S] [--workers N] [--device D] [--quiet]``
                    run (or resume) a drift-synthesis study and write its report
``ispkit rawbench run CONFIG [...same options]``
                    run (or resume) a raw-domain corruption benchmark: a synthesis study whose
                    experiment has ``raw_corruptions:``, with its mCE per corruption family
``ispkit forensics run CONFIG [...same options]``
                    run (or resume) a drift-forensics sweep: signature, operating specification, report
``ispkit adjust run CONFIG [...same options]``
                    run (or resume) a drift-adjustment study: learned vs frozen pipeline vs raw
``ispkit acquire run CONFIG [...same options]``
                    run (or resume) an acquisition-design study: the cheapest acquisition within ε
``ispkit ui RUN_DIR [--port N] [--host H]``
                    the MLflow UI on a run folder's tracking store (needs ``ispkit[ui]``)
``ispkit bulk SRC STORE --pipelines P [P ...] [--backend torch] [--scheduler S] [--workers N]``
                    a folder of raw files through pipelines into a Zarr store with Dask (resumable)

``--scheduler local`` (default) runs in this process, or on a local Dask cluster of
``--workers N`` processes; ``--scheduler tcp://host:8786`` runs on that Dask cluster.
Run commands show a progress bar on standard error when it is a terminal, plain lines
otherwise, nothing with ``--quiet``; ``--device cpu|cuda|cuda:N|auto`` overrides the
experiment's device.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import os
import platform
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .camera import Camera
from .errors import ISPKitError, storage_oserror
from .io import read_raw
from .memory import keep_freed_memory
from .pipeline import PRESETS
from .registry import get_registry

__all__ = ["main"]


def _views(args: argparse.Namespace) -> int:
    from .demo import demo_scene, render_views, scene_to_raw

    if args.raw and not args.raw.endswith(".npy"):
        image = read_raw(args.raw, camera=args.camera)  # the file's own camera unless --camera is given
        raw, camera, source = image.mosaic, image.camera, args.raw
    elif args.raw:
        raw, camera, source = np.load(args.raw), Camera.get(args.camera or "microscopy"), args.raw
    else:
        camera = Camera.get(args.camera or "microscopy")
        raw = scene_to_raw(demo_scene(args.size, args.size, seed=args.seed), camera)
        source = f"generated {args.size}×{args.size} demo scene (seed {args.seed})"
    print(f"ispkit views: {source}, camera {camera.name} ({camera.pattern}), {len(args.presets)} presets → {args.out}")
    written = render_views(raw, args.out, camera, args.presets)
    print(f"contact sheet: {written[-1]}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from .data.synthesize import synthesize_drone, synthesize_microscopy
    from .drift.progress_display import ProgressDisplay, counter

    args.saved_in = args.out
    with ProgressDisplay(quiet=args.quiet) as display:
        display(f"ispkit data synth {args.kind} → {args.out} (seed {args.seed}; existing files are kept, so a rerun resumes)")
        progress = counter(display, f"  {args.kind}")
        if args.kind == "microscopy":
            synthesize_microscopy(args.out, n=args.n or 100, seed=args.seed, progress=progress)
        else:
            synthesize_drone(args.out, n_frames=args.n or 12, seed=args.seed, progress=progress)
    return 0


def _download(args: argparse.Namespace) -> int:
    from .data.download import ZENODO, download_record

    args.saved_in = args.root
    state: dict[str, Any] = {"key": None, "shown": -1}

    def progress(done: int, total: int, key: str) -> None:
        percent = 100 * done // total if total else 100
        if key != state["key"] or percent != state["shown"]:
            state["key"], state["shown"] = key, percent
            print(f"\r  {key}: {percent:3d}% of {total / 1e6:.1f} MB", end="\n" if done >= total else "", flush=True)

    print(f"ispkit data download: record {args.record} from {args.base_url or ZENODO} → {args.root} (existing files are verified and kept)")
    paths = download_record(args.root, args.record, base_url=args.base_url, progress=progress)
    print(f"{len(paths)} file(s) in place and verified; ledger: {args.root / '.ispkit-download.json'}")
    return 0


def _plugins(args: argparse.Namespace) -> int:
    from . import drift, raw_corruptions, tasks  # noqa: F401 - each layer registers its hook kinds when imported
    from .registry import HOOK_KINDS, SLOW_IMPORT_S, STAGES

    registry = get_registry()
    registry.collect_all()  # every hook, so that every plugin failure is listed below
    print(f"{'kind':18s} {'method':16s} {'acts on':12s} provider")
    for (kind, method), entry in sorted(registry.stages().items()):
        print(f"{kind:18s} {method:16s} {entry.stage.takes + '→' + entry.stage.gives:12s} {entry.provider}")
    print()
    for hook_kind in sorted(HOOK_KINDS.values(), key=lambda k: k.what):
        if hook_kind is not STAGES:
            print(f"{hook_kind.what}s: {', '.join(sorted(map(str, registry.items(hook_kind.hook))))}")
    if registry.failures:
        print("\nplugins that failed and were skipped:")
        for f in registry.failures:
            print(f"  {f.plugin} ({f.distribution}): {f.error}")
    slow = registry.slow_imports()
    if slow:
        print(f"\nplugins slow to import (over {SLOW_IMPORT_S:g} s; every ispkit command waits for them):")
        for record in slow:
            print(f"  {record.plugin} ({record.distribution}): {record.seconds:.1f} s")
    return 1 if registry.failures and args.strict else 0


def _presets(args: argparse.Namespace) -> int:
    print("\n".join(PRESETS))
    return 0


def _cameras(args: argparse.Namespace) -> int:
    for name, camera in sorted(get_registry().cameras().items()):
        print(f"{name:12s} {camera.pattern} {camera.bit_depth}-bit  {camera.description}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from .tasks import task_models

    for name, model in sorted(task_models().items()):
        print(f"{name:14s} {model.task:15s} {model.summary}")
    return 0


def _experiments_list(args: argparse.Namespace) -> int:
    from textwrap import fill

    from .drift.config import shipped_experiments

    for name, experiment in shipped_experiments().items():
        print(f"{name}  (ispkit {experiment.command} run)")
        print(fill(experiment.summary, width=100, initial_indent="    ", subsequent_indent="    "))
    print("\ncopy one into a project's experiments/ folder: ispkit experiments copy NAME [DIR]")
    return 0


def _experiments_copy(args: argparse.Namespace) -> int:
    from .drift.config import COMMANDS, copy_experiment, shipped_experiments

    path = copy_experiment(args.name, args.dir).absolute()
    command = shipped_experiments()[path.stem].command
    config = COMMANDS[command].from_yaml(path)
    print(f"copied {path.name} → {path}")
    dataset, checkpoint = config.dataset, getattr(config, "checkpoint", None)
    if dataset.synthetic is not None:
        print(f"its data: synthetic, written to {dataset.root} on the first run")
    elif not dataset.root.exists():
        print(f"its data: expected at {dataset.root}, which does not exist yet (`ispkit data download --root {dataset.root}` gets the published record)")
    else:
        print(f"its data: {dataset.root}")
    if checkpoint is not None and not checkpoint.exists():
        print(f"its model: the checkpoint {checkpoint}, written by another study (the comment at the top of {path.name} says which)")
    project = path.parent.parent
    print(f"run it from {project} (its paths are relative to the file; the run folder is runs/{config.name} under the folder you run it from):")
    print(f"  cd {project} && ispkit {command} run {path.relative_to(project)}")
    return 0


def _run_experiment(args: argparse.Namespace, kind: str) -> tuple[Any, Path]:
    """Parse the experiment YAML of ``kind`` and run (or resume) it with the command's options."""
    from .drift import acquisition, adjustment, forensics, synthesis
    from .drift import config as configs
    from .drift.progress_display import ProgressDisplay
    from .drift.runs import resolve_device

    runs: dict[str, Callable[..., Any]] = {"synthesis": synthesis.run_synthesis, "forensics": forensics.run_forensics, "adjust": adjustment.run_adjustment}
    runs["rawbench"] = synthesis.run_synthesis  # the synthesis study; its config reader requires raw_corruptions:
    runs["acquire"] = acquisition.run_acquisition
    run = runs[kind]
    config = configs.COMMANDS[kind].from_yaml(args.config)
    if args.device is not None:  # the run folder's config.yaml (config.text) is unchanged: a resume may use another device
        config = dataclasses.replace(config, device=args.device)
    resolve_device(config.device)  # a missing CUDA is reported before anything is written
    out = args.out or Path("runs") / config.name
    args.saved_in = out  # named by the interrupt and storage-fault messages
    with ProgressDisplay(quiet=args.quiet) as display:
        display(f"ispkit {kind}: {args.config} → {out} (interrupt at any time; the same command resumes)")
        results = run(
            config, out, tracking=not args.no_tracking, tracking_uri=args.tracking_uri, progress=display, scheduler=args.scheduler, workers=args.workers
        )
    return results, out


def _synthesis(args: argparse.Namespace) -> int:
    s = _run_experiment(args, "synthesis")[0].summary()
    print(
        f"{s['metric']}: {s['in_distribution']:.3f} in distribution, {s['under_isp_drift']:.3f} under ISP drift, "
        f"{s['under_corruptions']:.3f} under corruptions (drop ratio {s['drop_ratio']:.3f})"
    )
    return 0


def _rawbench(args: argparse.Namespace) -> int:
    results = _run_experiment(args, "rawbench")[0]
    s, mce = results.summary(), results.raw_mce()
    print(
        f"{s['metric']}: {s['in_distribution']:.3f} in distribution, {s['under_isp_drift']:.3f} under ISP drift, "
        f"{s['under_corruptions']:.3f} under image corruptions, {s['under_raw_corruptions']:.3f} under raw corruptions"
    )
    print(f"mCE relative to {mce['baseline']}: " + ", ".join(f"{train} {_percent(values['all'])}" for train, values in mce["mce"].items()))
    return 0


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%" if value == value else "n/a"  # NaN: undefined


def _forensics(args: argparse.Namespace) -> int:
    results, out = _run_experiment(args, "forensics")
    worst = min(results.runs, key=lambda r: r.metric)
    print(f"{results.metric}: baseline {results.baseline:.3f}; lowest {worst.metric:.3f} ({worst.subset}, λ = {worst.lam:g}, d = {worst.distance:.4g})")
    print(f"operating specification: {out / 'operating_spec.yaml'}")
    return 0


def _adjust(args: argparse.Namespace) -> int:
    for intensity, arms in _run_experiment(args, "adjust")[0].final().items():
        print(f"intensity {intensity}: " + ", ".join(f"{arm} {mean:.3f} ± {std:.3f}" for arm, (mean, std) in arms.items()))
    return 0


def _acquire(args: argparse.Namespace) -> int:
    from .drift.acquisition_results import value_text

    results, out = _run_experiment(args, "acquire")
    print(f"{results.metric}: reference {results.reference:.3f}, ε {results.epsilon:g}; cheapest within ε:")
    for variable in results.variables:
        cheapest, search = results.cheapest(variable), results.searches.get(variable)
        sweep = "none" if cheapest is None else f"{value_text(variable, cheapest.value)} ({results.metric} {cheapest.metric:.3f}, cost {cheapest.cost:.3g})"
        found = "" if search is None else f"; search {value_text(variable, search.value)} ({results.metric} {search.metric:.3f}, cost {search.cost:.3g})"
        print(f"  {variable}: sweep {sweep}{found}")
    print(f"report: {out / 'report.html'}")
    return 0


def _bulk(args: argparse.Namespace) -> int:
    from .scale import raw_archive, synthesize_bulk

    args.saved_in = args.store
    archive = raw_archive(args.src, camera=args.camera)
    print(
        f"ispkit bulk: {len(archive)} raw files {archive.shape} → {args.store} through {', '.join(args.pipelines)} (a rerun writes only what is missing)",
        flush=True,
    )
    written = synthesize_bulk(
        archive, list(args.pipelines), args.store, scheduler=args.scheduler, workers=args.workers, backend=args.backend, overwrite=args.overwrite
    )
    for label, array in written.items():
        print(f"{label}: {array.shape} {array.dtype}")
    return 0


def _ui(args: argparse.Namespace) -> int:
    from .drift.tracking import local_store
    from .drift.ui import serve

    return serve(local_store(args.run_dir), args.host, args.port, lambda line: print(line, flush=True))


def _scheduler_options(parser: argparse.ArgumentParser) -> None:
    """``--scheduler`` and ``--workers`` (see :mod:`ispkit.scale.cluster`)."""
    parser.add_argument("--scheduler", default="local", help="'local' (default) or a Dask scheduler address such as tcp://host:8786")
    parser.add_argument(
        "--workers", type=_positive, default=1, help="with --scheduler local: worker processes of a local Dask cluster (default 1: this process)"
    )


def _device(text: str) -> str:
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text}")
    return value


def _experiment_command(sub: Any, kind: str, help: str, what: str, func: Any) -> None:
    """``ispkit <kind> run CONFIG [--out DIR] [--tracking-uri URI | --no-tracking] [--scheduler S] [--workers N]``."""
    run = (
        sub.add_parser(kind, help=help)
        .add_subparsers(dest=f"{kind}_command", required=True)
        .add_parser("run", help=f"run (or resume) {what} from a YAML experiment")
    )
    run.add_argument("config", help="experiment YAML (examples: `ispkit experiments list`, `ispkit experiments copy NAME`)")
    run.add_argument("--out", type=Path, help="run folder (default: runs/<experiment name>); an existing one is resumed")
    track = run.add_mutually_exclusive_group()
    track.add_argument("--tracking-uri", help="MLflow tracking server (default: a local store inside the run folder)")
    track.add_argument("--no-tracking", action="store_true", help="do not track with MLflow")
    _scheduler_options(run)
    run.add_argument("--device", type=_device, help="auto (CUDA when available), cpu, cuda or cuda:N; overrides the experiment's device")
    _quiet_option(run)
    run.set_defaults(func=func)


def _quiet_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress (a bar on a terminal, plain lines otherwise); errors still print")


def version_line() -> str:
    """What ``ispkit --version`` prints: ``ispkit 0.2.0 (torch 2.14.1, python 3.11.7)``.

    torch's version is its distribution's (as pip shows it, e.g. ``2.14.1+cu128`` for a
    CUDA build), read from the installed metadata without importing torch.
    """
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "not installed"
    return f"ispkit {__version__} (torch {torch_version}, python {platform.python_version()})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ispkit", description="Differentiable ISP data models for dataset-drift controls.")
    parser.add_argument("--version", action="version", version=version_line(), help="print ispkit's, torch's and Python's versions and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    views = sub.add_parser("views", help="process a raw image through the paper's presets and write PNGs")
    views.add_argument("--out", type=Path, default=Path("out/views"), help="output folder (default: out/views)")
    views.add_argument("--camera", help="camera name or YAML file (default: the raw file's own camera, else microscopy)")
    views.add_argument("--raw", help="a raw TIFF/DNG file, or a .npy mosaic in [0, 1]; default: the generated demo scene")
    views.add_argument("--size", type=int, default=256, help="size of the generated scene (even)")
    views.add_argument("--seed", type=int, default=0)
    views.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS, metavar="PRESET")
    views.set_defaults(func=_views)
    data = sub.add_parser("data", help="datasets: download the published or write synthetic Raw-Microscopy / Raw-Drone data").add_subparsers(
        dest="data_command", required=True
    )
    synth = data.add_parser("synth", help="write a synthetic dataset in the published layout")
    synth.add_argument("kind", choices=["microscopy", "drone"])
    synth.add_argument("--out", type=Path, required=True, help="dataset root (microscopy/ or drone/ is created inside)")
    synth.add_argument("--n", type=int, help="images (microscopy, default 100) or frames (drone, default 12)")
    synth.add_argument("--seed", type=int, default=0)
    _quiet_option(synth)
    synth.set_defaults(func=_synth)
    download = data.add_parser("download", help="download the published record from Zenodo, verify and unpack it")
    download.add_argument("--root", type=Path, required=True, help="dataset root (the record is unpacked inside)")
    download.add_argument("--record", default="5235536", help="Zenodo record id (default: 5235536)")
    download.add_argument("--base-url", help="server to ask (default: https://zenodo.org)")
    download.set_defaults(func=_download)
    plugins = sub.add_parser("plugins", help="list stages, their providers and plugin failures")
    plugins.add_argument("--strict", action="store_true", help="exit 1 if any plugin failed")
    plugins.set_defaults(func=_plugins)
    sub.add_parser("presets", help="list the twelve paper presets").set_defaults(func=_presets)
    sub.add_parser("cameras", help="list registered cameras").set_defaults(func=_cameras)
    sub.add_parser("models", help="list registered task models").set_defaults(func=_models)
    experiments = sub.add_parser("experiments", help="the example experiments shipped with ispkit").add_subparsers(dest="experiments_command", required=True)
    experiments.add_parser("list", help="list the shipped experiments and the command that runs each").set_defaults(func=_experiments_list)
    copy = experiments.add_parser("copy", help="copy a shipped experiment into a folder (never overwriting) and say how to run it")
    copy.add_argument("name", help="a name from `ispkit experiments list`, e.g. synthesis_microscopy_small")
    copy.add_argument("dir", nargs="?", type=Path, default=Path("experiments"), help="folder to copy into (default: experiments, created if missing)")
    copy.set_defaults(func=_experiments_copy)
    _experiment_command(sub, "synthesis", "drift synthesis: train on one data model, test on all", "a drift-synthesis study", _synthesis)
    _experiment_command(sub, "rawbench", "raw-domain corruption benchmark: a synthesis study with raw_corruptions:", "a raw-corruption benchmark", _rawbench)
    _experiment_command(sub, "forensics", "drift forensics: find processing settings under which a model fails", "a forensic sweep", _forensics)
    _experiment_command(sub, "adjust", "drift adjustment: train pipeline parameters jointly with the task model", "an adjustment study", _adjust)
    _experiment_command(sub, "acquire", "acquisition design: the cheapest acquisition whose accuracy stays within ε", "an acquisition-design study", _acquire)
    ui = sub.add_parser("ui", help="the MLflow UI on a run folder's tracking store (needs ispkit[ui])")
    ui.add_argument("run_dir", type=Path, help="a run folder (the --out of a run command; it may have been moved)")
    ui.add_argument("--port", type=int, default=5000, help="port to serve on (default: 5000)")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    ui.set_defaults(func=_ui)
    bulk = sub.add_parser("bulk", help="process a folder of raw files through pipelines into a Zarr store with Dask")
    bulk.add_argument("src", help="folder (or file) of raw TIFF/DNG files of one shape and camera")
    bulk.add_argument("store", help="Zarr store to write (one array per pipeline; an existing one is resumed)")
    bulk.add_argument("--pipelines", nargs="+", required=True, metavar="PRESET", choices=PRESETS, help="presets to apply")
    bulk.add_argument("--camera", help="camera of the raw files (default: the files' own)")
    bulk.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    _scheduler_options(bulk)
    bulk.add_argument("--overwrite", action="store_true", help="replace arrays made with other settings")
    bulk.set_defaults(func=_bulk)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # batched torch work runs ~2x faster on glibc (see ispkit.memory)
    try:
        return args.func(args)
    except (ISPKitError, FileNotFoundError, FileExistsError) as exc:
        print(f"ispkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"ispkit: {_interrupted(exc, getattr(args, 'saved_in', None))}", file=sys.stderr)
        return 130
    except Exception as exc:
        fault = storage_fault(exc)
        if fault is None:
            raise
        saved = getattr(args, "saved_in", None)
        where = f" in {saved}" if saved else ""
        print(f"ispkit: error: {fault}; what finished is kept{where}: free space (or make it writable) and run the same command to resume", file=sys.stderr)
        return 2


def console_main() -> int:
    """The ``ispkit`` command and ``python -m ispkit``: :func:`main`, then the exit.

    Once :func:`main` has returned, its work is saved and its exit status chosen; a Ctrl-C
    that arrives while the interpreter shuts down (joining threads, atexit handlers) ends the
    process at once with that status instead of a ``KeyboardInterrupt`` traceback and death
    by ``SIGINT`` (which would read as an interrupted run to whoever started it).
    """
    status = main()

    def exit_now(signum: int, frame: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

    signal.signal(signal.SIGINT, exit_now)
    return status


def _interrupted(exc: KeyboardInterrupt, saved_in: Path | None) -> str:
    """The one line printed on Ctrl-C: what was saved and how to resume."""
    from .drift.execution import StudyInterrupted

    if isinstance(exc, StudyInterrupted):
        return (
            f"interrupted: {exc.finished} of {exc.total} units finished and saved in {saved_in} (the running unit keeps its "
            "last finished epoch); run the same command to resume"
        )
    where = f" in {saved_in}" if saved_in else ""
    return f"interrupted: what was written{where} is kept; run the same command to resume"


_STORE_MESSAGES = ("database or disk is full", "attempt to write a readonly database", "disk i/o error")


def storage_fault(exc: BaseException) -> str | None:
    """What a full disk, a read-only file system or a missing permission did, if ``exc`` is (or
    was raised from) one of those (:func:`ispkit.errors.storage_oserror`), or if the tracking
    store's database says so; ``None`` for any other error.

    >>> import errno
    >>> storage_fault(OSError(errno.ENOSPC, "No space left on device", "out/units/a/model.pt"))
    'cannot write out/units/a/model.pt: No space left on device'
    >>> storage_fault(ValueError("bad")) is None
    True
    """
    cause = storage_oserror(exc)
    if cause is not None:
        return f"cannot write {cause.filename or 'a file'}: {cause.strerror or cause}"
    text = str(exc).lower()
    for message in _STORE_MESSAGES:
        if message in text:
            return f"cannot write the tracking store: {message}"
    return None


if __name__ == "__main__":
    sys.exit(main())
