"""Benchmark of the API's hot path and its POST latency; prints figures, asserts nothing.

    .venv/bin/python scripts/bench_api.py [--seconds 10] [--connections 32]

Serves the real app with one uvicorn process (no access log) plus two reference routes,
measured by `wrk` under identical conditions:
  * bare:   an `async def` route returning a constant (the ceiling);
  * file:   an `async def` route that reads and parses a small JSON file (the naive design);
  * status: GET /api/v1/runs/{id}/status of the real app, for a running and a finished run;
  * status with keys: the same app in a second process with RUNLANE_AUTH=api-key, polled with
    the run owner's key (the key check and the owner check on every poll), against the same bare
    route of the first process, which has no key check at all.
Then POST /api/v1/runs latency (sequential, one connection) and status latency.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from fastapi import FastAPI, Response

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from app.api.main import create_app  # noqa: E402
from app.config import Settings  # noqa: E402
from app.modules.contract import PipelineResult, RunContext  # noqa: E402
from app.runs.api_keys import KeyRing  # noqa: E402
from app.runs.run_owner import current_owner  # noqa: E402
from app.runs.run_state import RunStatus  # noqa: E402
from app.runs.run_store import META_DIR, Outcome, RunStore  # noqa: E402


def quick_pipeline(ctx: RunContext) -> PipelineResult:
    return PipelineResult("completed", "answered", "# answer\n", {"question": ctx.options.question})


def bench_app() -> FastAPI:
    """The real app plus the two reference routes (uvicorn --factory)."""
    app = create_app(Settings(), pipeline=quick_pipeline)
    sample = Path(os.environ["RUNLANE_OUTPUT_DIR"]) / "bench-done" / "api_state.json"

    @app.get("/bench/bare")
    async def bare() -> Response:
        return Response(b'{"ok":true}', media_type="application/json")

    @app.get("/bench/file")
    async def file() -> Response:
        return Response(orjson.dumps(orjson.loads(sample.read_bytes())), media_type="application/json")

    return app


def prepare(root: Path) -> str:
    """Two runs of one API key (a finished and a running one); returns the key."""
    store = RunStore(root / "output")
    record, key = KeyRing(store.root / META_DIR).create("bench")
    for run_id in ("bench-done", "bench-running"):
        store.create({"question": "q", "markdown_path": "documents"}, run_id, 3600, key_id=record.id)
        store.claim(run_id, current_owner(socket.gethostname()))
    store.finish("bench-done", Outcome(RunStatus.COMPLETED, "answered", "# a\n", {"a": 1}, []))
    (root / "documents").mkdir()
    store.close()
    return key


def wrk(url: str, seconds: int, connections: int, key: str | None = None) -> float:
    header = ["-H", f"Authorization: Bearer {key}"] if key else []
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *header, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error responses")
    return float(match.group(1)) if match else 0.0


def latencies(send: object, count: int) -> tuple[float, float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        send()  # type: ignore[operator]
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk (scripts/bench does it)")
    root = Path(tempfile.mkdtemp(prefix="runlane-bench-"))
    key = prepare(root)
    env = {**os.environ, "RUNLANE_OUTPUT_DIR": str(root / "output"), "RUNLANE_DOCUMENTS_ROOT": str(root)}
    env["RUNLANE_ORPHAN_AFTER_S"] = "86400"  # the bench process owns the running run and never beats
    env["RUNLANE_LOG_LEVEL"] = "WARNING"
    env["PYTHONPATH"] = f"{REPO_ROOT}:{REPO_ROOT / 'scripts'}"
    server, keyed = (
        serve(args.port, env, root),
        serve(args.port + 1, {**env, "RUNLANE_AUTH": "api-key"}, root),
    )
    base, keyed_base = f"http://127.0.0.1:{args.port}", f"http://127.0.0.1:{args.port + 1}"
    try:
        for url in (base, keyed_base):
            wait_ready(f"{url}/health")
        print(
            f"wrk -t1 -c{args.connections} -d{args.seconds}s, one uvicorn process, 2 cores shared, "
            f"median of {args.rounds} interleaved rounds"
        )
        rows = [
            ("bare async def (ceiling)", f"{base}/bench/bare", None),
            ("async def read+parse file", f"{base}/bench/file", None),
            ("status, finished run", f"{base}/api/v1/runs/bench-done/status", None),
            ("status, running run", f"{base}/api/v1/runs/bench-running/status", None),
            ("status, finished, with key", f"{keyed_base}/api/v1/runs/bench-done/status", key),
            ("status, running, with key", f"{keyed_base}/api/v1/runs/bench-running/status", key),
        ]
        samples: dict[str, list[float]] = {name: [] for name, _, _ in rows}
        for _ in range(args.rounds):
            for name, url, row_key in rows:
                samples[name].append(wrk(url, args.seconds, args.connections, row_key))
        results = {name: statistics.median(values) for name, values in samples.items()}
        ceiling = results[rows[0][0]]
        for name, rate in results.items():
            print(f"  {name:<28} {rate:>9,.0f} req/s  ({rate / ceiling:6.1%} of bare)")
        with httpx.Client(base_url=base) as client:
            body = {"question": "What are main climate initiatives?"}
            p50, p99 = latencies(lambda: client.post("/api/v1/runs", json=body).raise_for_status(), 300)
            print(f"POST /api/v1/runs latency (300 sequential): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
            p50, p99 = latencies(lambda: client.get("/api/v1/runs/bench-done/status"), 2000)
            print(f"GET status latency (2000 sequential): p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    finally:
        for process in (server, keyed):
            process.terminate()
            process.wait(30)
        shutil.rmtree(root, ignore_errors=True)


def serve(port: int, env: dict[str, str], root: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "--factory", "bench_api:bench_app", "--port", str(port)]
    return subprocess.Popen([*command, "--no-access-log", "--log-level", "warning"], env=env, cwd=root)


def wait_ready(url: str) -> None:
    for _ in range(400):
        try:
            httpx.get(url)
            return
        except httpx.TransportError:
            time.sleep(0.05)


if __name__ == "__main__":
    main()
