"""The ``ispkit`` command line and the main job (``ispkit views``)."""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ispkit
from ispkit import Camera, Pipeline
from ispkit.cli import main
from ispkit.demo import demo_scene, scene_to_raw

ROOT = Path(__file__).resolve().parents[1]


def test_views_writes_twelve_pngs_yaml_and_contact_sheet(tmp_path, capsys):
    assert main(["views", "--out", str(tmp_path), "--size", "32"]) == 0
    for name in ispkit.PRESETS:
        stem = name.replace(",", "_")
        png = np.asarray(Image.open(tmp_path / f"{stem}.png"))
        assert png.shape == (32, 32, 3) and png.dtype == np.uint8
        assert Pipeline.from_yaml(tmp_path / f"{stem}.yaml") == Pipeline.preset(name, camera="microscopy")
    raw = scene_to_raw(demo_scene(32, 32, seed=0), Camera.builtin("microscopy"))
    expected = np.round(np.clip(Pipeline.preset("me,u,ga")(raw), 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "me_u_ga.png")), np.moveaxis(expected, 0, -1))
    sheet = Image.open(tmp_path / "contact_sheet.png")
    assert sheet.width == 4 * 32 and sheet.height > 3 * 32
    assert not list(tmp_path.glob(".*.tmp")), "temporary files left behind"
    assert "[12/12]" in capsys.readouterr().out


def test_views_from_a_raw_file_and_preset_subset(tmp_path):
    raw = np.random.default_rng(1).random((16, 24))
    np.save(tmp_path / "raw.npy", raw)
    out = tmp_path / "views"
    assert main(["views", "--raw", str(tmp_path / "raw.npy"), "--camera", "drone", "--presets", "bi,s,me", "me,u,ga", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["bi_s_me.png", "contact_sheet.png", "me_u_ga.png"]
    assert Pipeline.from_yaml(out / "bi_s_me.yaml").camera.name == "drone"


def test_views_from_a_raw_tiff_use_its_camera(tmp_path):
    from ispkit.io import write_raw

    raw = scene_to_raw(demo_scene(16, 16, seed=2), Camera.builtin("drone"))
    write_raw(tmp_path / "frame.tiff", raw, Camera.builtin("drone"))
    assert main(["views", "--raw", str(tmp_path / "frame.tiff"), "--presets", "bi,s,me", "--out", str(tmp_path / "v")]) == 0
    assert Pipeline.from_yaml(tmp_path / "v" / "bi_s_me.yaml").camera.name == "drone"


def test_demo_views_resemble_the_scene():
    """The generated raw inverts the camera's colour processing, so the views look like the scene."""
    scene = demo_scene(64, 64, seed=3)
    for camera in ("microscopy", "drone"):
        view = Pipeline.preset("bi,s,ga", camera=camera)(scene_to_raw(scene, Camera.builtin(camera)))
        inner = (slice(None), slice(4, -8), slice(4, -4))  # away from borders and the colour strip
        assert np.abs(view[inner] - scene[inner]).mean() < 0.05, camera


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["views", "--camera", "microscope"], "unknown camera 'microscope'"),
        (["views", "--size", "33"], "must be positive and even"),
    ],
)
def test_errors_exit_2_with_a_message(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_presets_and_cameras(capsys):
    assert main(["presets"]) == 0
    assert capsys.readouterr().out.split() == list(ispkit.PRESETS)
    assert main(["cameras"]) == 0
    out = capsys.readouterr().out
    assert "drone" in out and "microscopy" in out


def test_console_script_entry_point():
    result = subprocess.run([sys.executable, "-m", "ispkit", "presets"], capture_output=True, text=True, check=True)
    assert result.stdout.split()[0] == "bi,s,me"


def test_console_script_entry_point_is_console_main():
    (script,) = importlib.metadata.distribution("ispkit").entry_points.select(group="console_scripts", name="ispkit")
    assert script.value == "ispkit.cli:console_main"


@pytest.mark.parametrize("status", [0, 2, 130])
def test_a_ctrl_c_during_shutdown_keeps_the_exit_status_main_chose(status):
    # the command has finished (its status chosen) when a Ctrl-C arrives while the interpreter
    # shuts down: the process must still exit with that status, not die by SIGINT (-2)
    child = f"""
import atexit, os, signal, sys, time
from ispkit import cli
cli.main = lambda: {status}
atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(1.0), print("not reached")))
sys.exit(cli.console_main())
"""
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert result.returncode == status, result.stderr
    assert "not reached" not in result.stdout and "KeyboardInterrupt" not in result.stderr


def test_version_names_ispkit_torch_and_python(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    torch_version = importlib.metadata.version("torch")
    assert out == f"ispkit {ispkit.__version__} (torch {torch_version}, python {platform.python_version()})\n"
    assert re.fullmatch(r"ispkit \d+\.\d+\.\d+ \(torch \S+, python \d+\.\d+\.\d+\)\n", out), out


def test_version_in_a_fresh_process_is_the_installed_distributions():
    result = subprocess.run([sys.executable, "-m", "ispkit", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith(f"ispkit {importlib.metadata.version('ispkit')} (torch ")
    assert result.stderr == ""


def test_plugins_lists_every_hook_kind_in_a_fresh_process():
    """Each layer registers its hook kind when imported; the command imports them all first."""
    env = {**os.environ, "ISPKIT_DISABLE_PLUGINS": "all"}
    out = subprocess.run([sys.executable, "-m", "ispkit", "plugins"], capture_output=True, text=True, check=True, env=env).stdout
    assert out.splitlines()[-4:] == [
        "cameras: drone, microscopy",
        "distances: l2, ssim",
        "raw corruptions: chromatic_aberration, dark_current, defective_pixels, fixed_pattern_noise, illuminant, lens_shading, low_light, "
        "motion_blur, overexposure, vignetting",
        "task models: resnet18, small_cnn, small_unet, unetplusplus",
    ]


def test_models_lists_the_builtin_task_models(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["resnet18", "classification"], ["small_cnn", "classification"], ["small_unet", "segmentation"], ["unetplusplus", "segmentation"],
    ]  # fmt: skip


def test_experiments_list_names_each_shipped_experiment_and_its_command(capsys):
    from ispkit.drift.config import shipped_experiments

    assert main(["experiments", "list"]) == 0
    out = capsys.readouterr().out
    headings = [line for line in out.splitlines() if line and not line.startswith(" ")]
    assert headings[:-1] == [f"{name}  (ispkit {e.command} run)" for name, e in shipped_experiments().items()]
    assert "    The README's main job: a small drift-synthesis study on synthetic Raw-Microscopy data" in out
    assert headings[-1] == "copy one into a project's experiments/ folder: ispkit experiments copy NAME [DIR]"


def test_experiments_copy_writes_the_file_says_how_to_run_it_and_never_overwrites(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["experiments", "copy", "synthesis_microscopy_small"]) == 0
    copy = tmp_path / "experiments" / "synthesis_microscopy_small.yaml"
    assert copy.read_bytes() == (ROOT / "experiments" / "synthesis_microscopy_small.yaml").read_bytes()
    assert capsys.readouterr().out.splitlines() == [
        f"copied synthesis_microscopy_small.yaml → {copy}",
        f"its data: synthetic, written to {tmp_path / 'out' / 'data' / 'synthetic'} on the first run",
        f"run it from {tmp_path} (its paths are relative to the file; the run folder is runs/synthesis-microscopy-small under the folder you run it from):",
        f"  cd {tmp_path} && ispkit synthesis run experiments/synthesis_microscopy_small.yaml",
    ]
    assert main(["experiments", "copy", "forensics_microscopy_full", "studies"]) == 0
    out = capsys.readouterr().out
    assert f"its data: expected at {tmp_path / 'data' / 'raw'}, which does not exist yet (`ispkit data download --root {tmp_path / 'data' / 'raw'}`" in out
    assert (
        f"its model: the checkpoint {tmp_path / 'runs' / 'synthesis-microscopy-full' / 'units' / 'bi,s,ga' / 'fold0' / 'model.pt'}, written by another study"
        in out
    )
    assert f"cd {tmp_path} && ispkit forensics run studies/forensics_microscopy_full.yaml" in out
    copy.write_text("# my changes\n")
    assert main(["experiments", "copy", "synthesis_microscopy_small"]) == 2
    assert "refusing to overwrite it" in capsys.readouterr().err and copy.read_text() == "# my changes\n"
    assert main(["experiments", "copy", "synthesis_microscopy"]) == 2
    assert "no shipped experiment 'synthesis_microscopy': did you mean" in capsys.readouterr().err


def test_run_help_points_at_the_shipped_experiments(capsys):
    with pytest.raises(SystemExit):
        main(["synthesis", "run", "--help"])
    assert "examples: `ispkit experiments list`" in capsys.readouterr().out.replace("\n", " ").replace("  ", " ")


SYNTHETIC = {"root": "data", "synthetic": {"n": 30, "size": 64}}
"""A tiny dataset the command writes next to the experiment file."""


def test_synthesis_run_writes_the_report_and_resumes(tmp_path, capsys, tiny):
    config = tiny.write(
        "synthesis", tmp_path / "exp.yaml", name="cli", dataset=SYNTHETIC, pipelines={"train": ["bi,s,me"]}, training={"lr": None},
        corruptions={"names": ["contrast"], "severities": [3]},
    )  # fmt: skip
    out = tmp_path / "run"
    assert main(["synthesis", "run", str(config), "--out", str(out), "--no-tracking"]) == 0
    text = capsys.readouterr().out
    assert "[2/2] bi,s,me fold 2/2  epoch 1/1" in text and "drop ratio" in text
    assert (out / "report.html").is_file() and not (out / "mlflow.db").exists()
    assert main(["synthesis", "run", str(config), "--out", str(out), "--no-tracking"]) == 0
    assert capsys.readouterr().out.count("done earlier, read back") == 2


def test_synthesis_run_reports_config_errors(tmp_path, capsys):
    config = tmp_path / "exp.yaml"
    config.write_text("dataset: {kind: microscopy, root: data}\npipelines: {train: all}\nmodel: {name: resnet81}\n")
    assert main(["synthesis", "run", str(config), "--no-tracking"]) == 2
    assert "did you mean 'resnet18'" in capsys.readouterr().err


def test_forensics_run_writes_the_operating_specification(tmp_path, capsys, tiny):
    config = tiny.write(
        "forensics", tmp_path / "forensics.yaml", name="cli-forensics", dataset=SYNTHETIC, training={"epochs": 1}, split={"fold": 0}, samples=None,
        subsets=["gamma"], lambdas=[0, math.inf], optimisation={"steps": 2},
    )  # fmt: skip
    out = tmp_path / "run"
    assert main(["forensics", "run", str(config), "--out", str(out), "--no-tracking"]) == 0
    text = capsys.readouterr().out
    assert "[1/2] gamma" in text and "operating specification" in text
    assert (out / "operating_spec.yaml").is_file() and (out / "report.html").is_file()


def test_adjust_run_prints_the_final_scores(tmp_path, capsys, tiny):
    config = tiny.write(
        "adjustment", tmp_path / "adjust.yaml", name="cli-adjust", dataset=SYNTHETIC, intensities=[1.0], arms=["frozen", "raw"], training={"epochs": 1},
        pipeline_lr=None,
    )  # fmt: skip
    assert main(["adjust", "run", str(config), "--out", str(tmp_path / "run"), "--no-tracking"]) == 0
    assert re.search(r"intensity 1: frozen 0\.\d{3} ± 0\.\d{3}, raw 0\.\d{3} ± 0\.\d{3}", capsys.readouterr().out)


def test_forensics_config_errors_exit_2(tmp_path, capsys):
    config = tmp_path / "forensics.yaml"
    config.write_text('dataset: {kind: microscopy, root: data}\npipeline: "ma,s,me"\nmodel: {name: small_cnn}\nsubsets: [denoise]\n')
    assert main(["forensics", "run", str(config)]) == 2
    assert "'denoise' has no differentiable parameters" in capsys.readouterr().err


def test_bulk_writes_a_zarr_store_and_resumes(tmp_path, capsys):
    pytest.importorskip("zarr")
    from ispkit.data import synthesize_microscopy
    from ispkit.scale import open_bulk

    root = synthesize_microscopy(tmp_path / "data", n=4, seed=0, size=32, intensities=(1.0,), workers=1)
    src = root / "microscopy" / "images" / "raw_scale100"
    assert main(["bulk", str(src), str(tmp_path / "views.zarr"), "--pipelines", "bi,s,me", "me,u,ga"]) == 0
    assert "bi,s,me: (4, 3, 32, 32) float32" in capsys.readouterr().out
    arrays = open_bulk(tmp_path / "views.zarr")
    first = sorted(src.glob("*.tiff"))[0]
    expected = Pipeline.preset("me,u,ga", camera="microscopy")(ispkit.io.read_raw(first).mosaic)
    np.testing.assert_allclose(arrays["me,u,ga"][0].compute(), expected.astype(np.float32))
    assert main(["bulk", str(src), str(tmp_path / "views.zarr"), "--pipelines", "bi,s,me"]) == 0
