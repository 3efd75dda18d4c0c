"""Progress of the run commands: a bar on a terminal, plain lines otherwise, --quiet, --device."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest
import torch

from ispkit.cli import main

SYNTHETIC = {"root": "data", "synthetic": {"n": 30, "size": 64}}
"""A tiny dataset the command writes next to the experiment file."""

TINY = {"pipelines": {"train": ["bi,s,me"]}, "corruptions": {"names": ["contrast"], "severities": [3]}}


def _experiment(tiny, tmp_path, **changes):
    return tiny.write("synthesis", tmp_path / "exp.yaml", name="cli", dataset=SYNTHETIC, **{**TINY, **changes})


def test_quiet_prints_the_result_only(tmp_path, capsys, tiny):
    config = _experiment(tiny, tmp_path)
    assert main(["synthesis", "run", str(config), "--out", str(tmp_path / "run"), "--no-tracking", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and len(out.splitlines()) == 1 and "drop ratio" in out
    assert (tmp_path / "run" / "report.html").is_file()


def test_plain_lines_name_every_phase_with_the_time_left(tmp_path, capsys, tiny):
    config = _experiment(tiny, tmp_path)
    assert main(["synthesis", "run", str(config), "--out", str(tmp_path / "run"), "--no-tracking"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\[1/2\] bi,s,me fold 1/2  epoch 1/1  loss \S+  accuracy \S+  elapsed \dm\d\ds  left ~\dm\d\ds", out)
    assert "[2/2] bi,s,me fold 2/2  evaluating on 2 test pipelines and the corruptions" in out
    assert re.search(r"\[2/2\] bi,s,me fold 2/2  evaluated  elapsed \dm\d\ds  left ~0m00s", out)


def test_device_cpu_overrides_the_experiments_device(tmp_path, capsys, tiny):
    config = _experiment(tiny, tmp_path, device="cuda:7")  # no such device here, and on no CI machine
    run = tmp_path / "run"
    assert main(["synthesis", "run", str(config), "--out", str(run), "--no-tracking", "--device", "cpu"]) == 0
    assert "1 train × 2 test pipelines, 2 folds, on cpu" in capsys.readouterr().out
    assert 'device: "cuda:7"' in (run / "config.yaml").read_text()  # the experiment as given: a resume may pick another device


def test_device_cuda_without_cuda_is_an_error_naming_what_is_missing(tmp_path, capsys, tiny, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for command, control in [("synthesis", "synthesis"), ("forensics", "forensics"), ("adjust", "adjustment")]:
        config = tiny.write(control, tmp_path / f"{control}.yaml", dataset=SYNTHETIC)
        assert main([command, "run", str(config), "--out", str(tmp_path / "run"), "--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert "device 'cuda' was asked for but CUDA is not available here: " in err and ("built without CUDA" in err or "finds no CUDA device" in err)
    assert not (tmp_path / "run").exists() and not (tmp_path / "data").exists()  # refused before anything was written


def test_device_is_checked_by_the_parser(capsys):
    for command in ("synthesis", "forensics", "adjust"):
        with pytest.raises(SystemExit) as exit:
            main([command, "run", "x.yaml", "--device", "gpu"])
        assert exit.value.code == 2
        assert "expected auto, cpu, cuda or cuda:N, got 'gpu'" in capsys.readouterr().err


def test_data_synth_counts_with_the_time_left_and_is_quiet_when_asked(tmp_path, capsys):
    assert main(["data", "synth", "microscopy", "--out", str(tmp_path / "a"), "--n", "4"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"microscopy: 4/4  elapsed \dm\d\ds  left ~0m00s", out), out
    assert main(["data", "synth", "microscopy", "--out", str(tmp_path / "b"), "--n", "4", "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")


def _run_on_a_terminal(argv: list[str], cwd, timeout: float = 240.0) -> tuple[int, str, str]:
    """Run ``python -m ispkit argv`` with standard error on a pseudo-terminal of 120 columns; (status, stdout, terminal)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "ispkit", *argv], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    screen, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the terminal's other end closed
                    break
                if not chunk:
                    break
                screen += chunk
            elif process.poll() is not None:
                break
        out = process.communicate(timeout=max(deadline - time.monotonic(), 1.0))[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return process.returncode, out.decode(), screen.decode(errors="replace")


def test_a_terminal_shows_a_bar_with_the_step_lines_above_it(tmp_path, tiny):
    config = _experiment(tiny, tmp_path)
    status, out, screen = _run_on_a_terminal(["synthesis", "run", str(config), "--out", "run", "--no-tracking", "--device", "cpu"], tmp_path)
    assert status == 0, screen
    assert "drop ratio" in out and "epoch" not in out  # stdout keeps the result only
    assert re.search(r"100%\|█+\| 4/4 \[\d\d:\d\d, left ~0m00s\]", screen), screen
    assert "[1/2] bi,s,me fold 1/2  epoch 1/1" in screen and "evaluating on 2 test pipelines" in screen


def test_without_a_terminal_the_command_prints_plain_lines(tmp_path, tiny):
    config = _experiment(tiny, tmp_path)
    result = subprocess.run([sys.executable, "-m", "ispkit", "synthesis", "run", str(config), "--out", "run", "--no-tracking", "--device", "cpu"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=240)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "%|" not in result.stdout + result.stderr
    assert re.search(r"\[2/2\] bi,s,me fold 2/2  epoch 1/1  .*  elapsed \dm\d\ds  left ~\dm\d\ds", result.stdout)
