"""Benchmark of listing with many runs on disk; prints figures, asserts nothing.

    .venv/bin/python scripts/bench_listing.py [--runs 100000]

Writes run folders directly (as a long-lived server would have left them), rebuilds the index
the way a starting server does, then serves GET /api/v1/runs through the real app: first page,
a deep page, a status filter, and a full walk of 20 pages with the cursor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from app.api.main import create_app  # noqa: E402
from app.config import Settings  # noqa: E402
from app.modules.contract import PipelineResult, RunContext  # noqa: E402
from app.runs.run_reaper import RunReaper  # noqa: E402
from app.runs.run_state import RunState, RunStatus, iso  # noqa: E402
from app.runs.run_store import STATE_FILE, RunStore  # noqa: E402

STATUSES = [RunStatus.COMPLETED] * 8 + [RunStatus.COMPLETED_WITH_GAPS, RunStatus.FAILED]


def unused_pipeline(ctx: RunContext) -> PipelineResult:
    return PipelineResult("completed", "answered", "", {})


def write_runs(root: Path, count: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(count):
        created = start + timedelta(seconds=i)
        status = STATUSES[i % len(STATUSES)]
        stamp = iso(created)
        assert stamp is not None
        state = RunState(
            run_id=f"run-{i:06d}",
            status=status,
            created_at=stamp,
            updated_at=stamp,
            started_at=stamp,
            completed_at=stamp,
            finish_reason="answered",
            timeout_s=3600,
        )
        folder = root / state.run_id
        folder.mkdir()
        (folder / STATE_FILE).write_bytes(state.model_dump_json().encode())


def timed(client: TestClient, params: dict[str, object], repeat: int = 50) -> tuple[float, dict[str, object]]:
    samples = []
    body: dict[str, object] = {}
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get("/api/v1/runs", params=params)
        samples.append((time.perf_counter() - started) * 1000)
        body = response.json()
    return statistics.median(samples), body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="runlane-bench-listing-"))
    try:
        output = root / "output"
        output.mkdir()
        started = time.perf_counter()
        write_runs(output, args.runs)
        print(f"wrote {args.runs:,} run folders in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        RunReaper(RunStore(output), 30, 30).reconcile_index()
        print(f"index rebuilt from the folders (cold start): {time.perf_counter() - started:.2f} s")
        started = time.perf_counter()
        RunReaper(RunStore(output), 30, 30).reconcile_index()
        print(f"start-up reconcile with the index in place: {time.perf_counter() - started:.2f} s")
        os.environ["RUNLANE_LOG_LEVEL"] = "WARNING"
        settings = Settings(output_dir=output, documents_root=root, reap_interval_s=3600)
        (root / "documents").mkdir()
        with TestClient(create_app(settings, unused_pipeline)) as client:
            first, body = timed(client, {"limit": 50})
            cold_cursor = body["next_cursor"]
            print(f"GET /api/v1/runs?limit=50 (first page): p50 {first:.2f} ms")
            cursor = cold_cursor
            for _ in range(500):  # walk 25,000 runs deep
                cursor = client.get("/api/v1/runs", params={"limit": 50, "cursor": cursor}).json()[
                    "next_cursor"
                ]
            deep, _ = timed(client, {"limit": 50, "cursor": cursor})
            print(f"GET /api/v1/runs?limit=50&cursor=... (25,000 runs deep): p50 {deep:.2f} ms")
            failed, body = timed(client, {"limit": 50, "status": "failed"})
            print(f"GET /api/v1/runs?limit=50&status=failed: p50 {failed:.2f} ms ({len(body['runs'])} items)")
            started = time.perf_counter()
            cursor = None
            for _ in range(20):
                params: dict[str, object] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
                cursor = client.get("/api/v1/runs", params=params).json()["next_cursor"]
            elapsed = time.perf_counter() - started
            print(f"walk of 20 pages of 200 (4,000 runs, cold status cache): {elapsed:.2f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
