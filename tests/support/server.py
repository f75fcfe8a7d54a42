"""Real `uvicorn` server processes for tests, on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.api.http_protocol import SERVER_OPTIONS

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(root: Path, **settings: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "RUNLANE_OUTPUT_DIR": str(root / "output"),
        "RUNLANE_DOCUMENTS_ROOT": str(root),
        "RUNLANE_HEARTBEAT_INTERVAL_S": "0.1",
        "RUNLANE_REAP_INTERVAL_S": "0.2",
        "RUNLANE_ORPHAN_AFTER_S": "5",
        "RUNLANE_SHUTDOWN_GRACE_S": "0",
    }
    env.update({f"RUNLANE_{key.upper()}": value for key, value in settings.items()})
    env.pop("COVERAGE_PROCESS_START", None)
    return env


class Server:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.log = log

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: the process dies without any clean-up, as in a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)


@contextmanager
def uvicorn_server(
    root: Path, workers: int = 1, app: str = "app.api.main:app", port: int | None = None, **settings: str
) -> Iterator[Server]:
    port = port or free_port()
    log = root / f"server-{port}.log"
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", *SERVER_OPTIONS]
    if workers > 1:
        command += ["--workers", str(workers)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=root, env=server_env(root, **settings), stdout=sink, stderr=subprocess.STDOUT
        )
    server = Server(process, port, log)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


class Worker:
    """A `runlane worker` process group (the Celery main process and its pool children)."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log.read_text()}")
            if " ready." in self.log.read_text(errors="replace"):
                return
            time.sleep(0.05)
        raise RuntimeError(f"worker not ready:\n{self.log.read_text()}")

    def deliveries(self) -> int:
        """How many task messages this worker received (redeliveries included)."""
        return self.log.read_text(errors="replace").count("] received")

    def kill(self) -> None:
        """SIGKILL to the whole group: the worker and its pool die with no clean-up at all."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


@contextmanager
def worker_process(root: Path, host_id: str, concurrency: int, settings: dict[str, str]) -> Iterator[Worker]:
    """A worker with its own host id, on the deployment `settings` describe."""
    log = root / f"worker-{host_id}-{time.monotonic_ns()}.log"
    command = [sys.executable, "-c", "from app.cli import main; main()", "worker"]
    command += [f"--concurrency={concurrency}"]
    env = server_env(root, **{**settings, "host_id": host_id, "log_json": "false"})
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = Worker(process, log)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()
