"""Reads racing a deletion answer 200, 404 or 410: never a server error."""

from __future__ import annotations

import threading
from typing import Any

import orjson

from app.config import Settings
from tests.conftest import running_app, wait_for_status
from tests.support.pipelines import instant_pipeline

REQUEST = {"question": "q", "markdown_path": "documents"}


def test_reads_in_the_middle_of_a_deletion_answer_410_not_500(settings: Settings) -> None:
    with running_app(settings, instant_pipeline) as client:
        run_id = client.post("/api/v1/runs", json=REQUEST).json()["run_id"]
        wait_for_status(client, run_id, "completed")
        run_dir = settings.output_dir / run_id
        # Where a deletion stands after its tombstone and before the state goes (it goes last).
        (run_dir / "tombstone.json").write_bytes(orjson.dumps({"deleted_at": "2026-01-01T00:00:00.000Z"}))
        (run_dir / "final.md").unlink()
        (run_dir / "context_bundle.json").unlink()
        for endpoint in ("output", "output/html", "context"):
            assert client.get(f"/api/v1/runs/{run_id}/{endpoint}").status_code == 410


def test_reads_racing_deletions_never_answer_5xx(settings: Settings) -> None:
    with running_app(settings, instant_pipeline) as client:
        runs = [client.post("/api/v1/runs", json=REQUEST).json()["run_id"] for _ in range(40)]
        for run_id in runs:
            wait_for_status(client, run_id, "completed")
        codes: list[int] = []
        done = threading.Event()

        def read() -> None:
            while not done.is_set():
                for run_id in runs:
                    for path in ("status", "output", "context", ""):
                        url = f"/api/v1/runs/{run_id}/{path}".rstrip("/")
                        codes.append(client.get(url).status_code)

        readers = [threading.Thread(target=read) for _ in range(2)]
        for reader in readers:
            reader.start()
        deleted: list[Any] = [client.delete(f"/api/v1/runs/{run_id}").status_code for run_id in runs]
        done.set()
        for reader in readers:
            reader.join(60)
    assert deleted == [204] * len(runs)
    assert codes and set(codes) <= {200, 404, 410}
