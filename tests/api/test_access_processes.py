"""Key revocation and quotas hold in every server process sharing one output folder."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from app.runs.api_keys import KeyRing
from app.runs.run_store import META_DIR
from tests.conftest import wait_until
from tests.support.keys import bearer, make_key
from tests.support.server import uvicorn_server

pytestmark = pytest.mark.slow

GATED = {"auth": "api-key", "pipeline": "tests.support.pipelines:file_gated_pipeline"}


def _documents(root: Path) -> None:
    (root / "documents").mkdir()
    (root / "documents" / "note.md").write_text("# Note\n\nSolar subsidies fund rooftop panels.\n")


def _at_once(count: int, send: object) -> list[httpx.Response]:
    """`count` requests released together, each on its own connection (so on any process)."""
    barrier, answers = threading.Barrier(count), []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        response = send()  # type: ignore[operator]
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_a_revoked_key_is_refused_by_every_process_within_a_second(tmp_path: Path) -> None:
    _documents(tmp_path)
    record, key = make_key(tmp_path / "output", "alice")
    with uvicorn_server(tmp_path, workers=3, auth="api-key") as server:
        # Warm every process's cache with the key: many fresh connections reach all three.
        for _ in range(30):
            assert httpx.get(f"{server.url}/api/v1/runs", headers=bearer(key)).status_code == 200
        KeyRing((tmp_path / "output").resolve() / META_DIR).revoke(record.id)
        revoked_at = time.monotonic()
        late: list[int] = []
        while len(late) < 60:
            started = time.monotonic()
            status = httpx.get(f"{server.url}/api/v1/runs", headers=bearer(key)).status_code
            if started - revoked_at >= 1.0:
                late.append(status)
        assert set(late) == {401}


def test_active_run_quota_admits_exactly_n_of_concurrent_starts_across_processes(tmp_path: Path) -> None:
    _documents(tmp_path)
    _, key = make_key(tmp_path / "output", "alice", max_active=3)
    with uvicorn_server(tmp_path, workers=2, **GATED) as server:
        url = f"{server.url}/api/v1/runs"

        def start() -> httpx.Response:
            return httpx.post(url, json={"question": "q"}, headers=bearer(key), timeout=60)

        answers = _at_once(8, start)
        accepted = [a for a in answers if a.status_code == 202]
        refused = [a for a in answers if a.status_code == 429]
        assert (len(accepted), len(refused)) == (3, 5)
        assert {a.json()["code"] for a in refused} == {"QUOTA_ACTIVE_RUNS"}
        assert all(int(a.headers["retry-after"]) >= 1 for a in refused)
        (tmp_path / "documents" / "release").touch()
        for answer in accepted:
            status_url = f"{server.url}{answer.json()['status_url']}"
            wait_until(lambda u=status_url: httpx.get(u, headers=bearer(key)).json()["status"] == "completed")
        assert start().status_code == 202  # finished runs free their places


def test_queued_run_quota_counts_only_waiting_runs(tmp_path: Path) -> None:
    _documents(tmp_path)
    _, key = make_key(tmp_path / "output", "alice", max_queued=2)
    with uvicorn_server(tmp_path, workers=2, max_workers="1", **GATED) as server:
        url = f"{server.url}/api/v1/runs"

        def start() -> httpx.Response:
            return httpx.post(url, json={"question": "q"}, headers=bearer(key), timeout=60)

        # Each process runs one run at a time: once two run, every later start waits queued.
        assert [start().status_code for _ in range(2)] == [202, 202]
        running = f"{url}?status=running"
        wait_until(lambda: len(httpx.get(running, headers=bearer(key)).json()["runs"]) == 2)
        answers = _at_once(6, start)
        assert sorted(a.status_code for a in answers) == [202] * 2 + [429] * 4
        assert {a.json()["code"] for a in answers if a.status_code == 429} == {"QUOTA_QUEUED_RUNS"}
        (tmp_path / "documents" / "release").touch()


def test_request_rate_holds_across_processes(tmp_path: Path) -> None:
    _documents(tmp_path)
    _, key = make_key(tmp_path / "output", "alice", rate_per_min=5)
    _, other = make_key(tmp_path / "output", "bob")
    with uvicorn_server(tmp_path, workers=2, auth="api-key") as server:

        def poll() -> httpx.Response:
            return httpx.get(f"{server.url}/api/v1/runs", headers=bearer(key), timeout=60)

        answers = _at_once(9, poll)
        assert sorted(a.status_code for a in answers) == [200] * 5 + [429] * 4
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.json()["code"] == "RATE_LIMITED"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert httpx.get(f"{server.url}/api/v1/runs", headers=bearer(other)).status_code == 200
