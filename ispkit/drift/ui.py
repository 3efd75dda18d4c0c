"""``ispkit ui RUN_DIR``: the MLflow UI on a run folder's local tracking store.

The store is found by :func:`ispkit.drift.tracking.local_store` (``mlflow.db`` in the
folder, wherever the folder is now); the server is ``mlflow server`` with one worker, run
as a child process until it stops or Ctrl-C. The web UI is part of the full ``mlflow``
package (``pip install 'ispkit[ui]'``, which ``scripts/install.sh`` installs);
``mlflow-skinny``, which ispkit needs for tracking, has no UI.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..errors import ISPKitError
from .tracking import LocalStore

__all__ = ["ui_missing", "server_command", "wait_until_serving", "serve", "stop"]


def ui_missing() -> str | None:
    """What the MLflow UI lacks here (a sentence saying how to install it), or ``None`` when it is installed."""
    spec = importlib.util.find_spec("mlflow")
    if spec is None or spec.origin is None:
        return "mlflow is not installed: pip install 'ispkit[ui]'"
    page = Path(spec.origin).parent / "server" / "js" / "build" / "index.html"
    if not page.is_file() or importlib.util.find_spec("flask") is None:
        return "the MLflow web UI is not installed (mlflow-skinny, which tracking needs, has none): pip install 'ispkit[ui]' (the full mlflow package)"
    return None


def server_command(store: LocalStore, host: str, port: int) -> list[str]:
    """The ``mlflow server`` command line serving ``store`` on ``host:port`` with one worker."""
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store.uri, "--host", host, "--port", str(port), "--workers", "1"]


def wait_until_serving(url: str, server: subprocess.Popen[bytes], timeout: float = 120.0) -> bool:
    """Poll ``url``'s ``/health`` until it answers 200 (``True``), the server exits or ``timeout`` seconds pass (``False``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


def serve(store: LocalStore, host: str, port: int, say: Callable[[str], None] = print, *, timeout: float = 120.0) -> int:
    """Run the MLflow UI on ``store`` until the server stops or Ctrl-C; returns the exit status (0 after Ctrl-C).

    Says the address once the server answers. Raises :class:`~ispkit.errors.ISPKitError` when the UI
    is not installed, or when the server exits or does not answer within ``timeout`` seconds.
    """
    missing = ui_missing()
    if missing is not None:
        raise ISPKitError(missing)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    # its own process group, stopped as a whole below; its log goes to standard error, the address to standard output
    server = subprocess.Popen(server_command(store, host, port), stdout=2, start_new_session=True)  # fd 2: standard error
    handlers = {signum: signal.signal(signum, _interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)}  # a kill stops the server too
    try:
        if not wait_until_serving(url, server, timeout):
            raise ISPKitError(f"the MLflow server on {host}:{port} did not start (exit status {server.poll()}); is the port taken? try --port")
        say(f"MLflow UI of {store.run_dir} at {url} (Ctrl-C stops it)")
        if store.moved_from is not None:
            say(f"note: this run folder was moved from {store.moved_from}; its artifacts (report, figures) are recorded under that path")
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop(server)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop(server: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop the server and every process it started (its process group): SIGTERM, then SIGKILL after ``grace`` seconds
    (MLflow's job consumers may outlive a SIGTERM of the server)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGKILL)  # whatever of the group is left
    server.wait()
