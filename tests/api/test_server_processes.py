"""Real uvicorn processes sharing one output root: races, consistency, crashes and restarts."""

from __future__ import annotations

import contextlib
import os
import socket
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.runs.run_store import RunStore
from tests.conftest import wait_until
from tests.support.pipelines import executions
from tests.support.server import uvicorn_server

PIPELINE = "tests.support.pipelines:file_gated_pipeline"
REQUEST = {"question": "What are main climate initiatives?", "markdown_path": "documents"}

pytestmark = pytest.mark.slow


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "documents").mkdir()
    return tmp_path


def fresh_get(url: str) -> httpx.Response:
    """One request on its own connection, so requests spread over the worker processes."""
    with httpx.Client(timeout=10) as client:
        return client.get(url)


def poll_status(base: str, run_id: str, *statuses: str) -> dict[str, Any]:
    """The run's status once it is one of `statuses`; a failure says what was answered last."""
    last: list[object] = []

    def current() -> dict[str, Any] | None:
        response = fresh_get(f"{base}/api/v1/runs/{run_id}/status")
        body: dict[str, Any] = response.json()
        last[:] = [response.status_code, body]
        return body if body.get("status") in statuses else None

    try:
        result: dict[str, Any] = wait_until(current, timeout=60, what=f"{run_id} in {statuses}")
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}; last answered: {last}") from None
    return result


def test_four_workers_give_one_202_and_49_409_for_one_new_run_id(root: Path) -> None:
    (root / "documents" / "release").touch()
    with uvicorn_server(root, workers=4, pipeline=PIPELINE) as server:

        def post(_: int) -> int:
            with httpx.Client(timeout=30) as client:
                body = {**REQUEST, "run_id": "contested-id"}
                return client.post(f"{server.url}/api/v1/runs", json=body).status_code

        with ThreadPoolExecutor(50) as pool:
            codes = Counter(pool.map(post, range(50)))
        assert codes == {202: 1, 409: 49}
        poll_status(server.url, "contested-id", "completed")
    assert executions(root / "documents") == ["contested-id"]


def test_every_worker_answers_status_output_and_context_the_same_way(root: Path) -> None:
    documents = root / "documents"
    with uvicorn_server(root, workers=4, pipeline=PIPELINE) as server:
        created = httpx.post(f"{server.url}/api/v1/runs", json=REQUEST, timeout=10).json()
        run_id = created["run_id"]
        poll_status(server.url, run_id, "running")
        with ThreadPoolExecutor(8) as pool:
            running = list(pool.map(fresh_get, [f"{server.url}{created['status_url']}"] * 40))
            assert {r.json()["status"] for r in running} == {"running"}
            early = pool.map(fresh_get, [f"{server.url}{created['output_url']}"] * 20)
            assert {r.status_code for r in early} == {409}
            (documents / "release").touch()
            poll_status(server.url, run_id, "completed")
            done = list(pool.map(fresh_get, [f"{server.url}{created['status_url']}"] * 40))
            outputs = list(pool.map(fresh_get, [f"{server.url}{created['output_url']}"] * 20))
            contexts = list(pool.map(fresh_get, [f"{server.url}{created['context_url']}"] * 20))
        assert {r.content for r in done} == {done[0].content}
        assert orjson.loads(done[0].content)["status"] == "completed"
        assert {r.headers["etag"] for r in done} == {done[0].headers["etag"]}
        assert {(r.status_code, r.content) for r in outputs} == {(200, outputs[0].content)}
        assert {(r.status_code, r.content) for r in contexts} == {(200, contexts[0].content)}
        pids = {line.split()[1] for line in (documents / "executions.log").read_text().splitlines()}
        assert len(pids) == 1


def test_queued_runs_on_disk_are_each_run_exactly_once_by_four_workers(root: Path) -> None:
    (root / "documents" / "release").touch()
    store = RunStore(root / "output", PIPELINE)
    queued = [store.create(REQUEST, None, 600).run_id for _ in range(10)]
    with uvicorn_server(root, workers=4, pipeline=PIPELINE) as server:
        for run_id in queued:
            poll_status(server.url, run_id, "completed")
    assert sorted(executions(root / "documents")) == sorted(queued)


def test_a_killed_server_leaves_runs_that_the_next_server_recovers(root: Path) -> None:
    documents = root / "documents"
    with uvicorn_server(root, pipeline=PIPELINE, max_workers="1") as first:
        running = httpx.post(f"{first.url}/api/v1/runs", json=REQUEST, timeout=10).json()["run_id"]
        poll_status(first.url, running, "running")
        queued = httpx.post(f"{first.url}/api/v1/runs", json=REQUEST, timeout=10).json()["run_id"]
        first.kill()
    store = RunStore(root / "output")
    assert store.get(running).status == "running"
    assert store.get(queued).status == "queued"  # durable: it was on disk before the 202
    (documents / "release").touch()
    with uvicorn_server(root, pipeline=PIPELINE) as second:
        interrupted = poll_status(second.url, running, "failed")
        assert interrupted["finish_reason"] == "interrupted"
        assert "stopped before the run finished" in interrupted["error"]["message"]
        poll_status(second.url, queued, "completed")
    assert Counter(executions(documents)) == {running: 1, queued: 1}


def test_cancel_and_events_work_whichever_server_process_receives_them(root: Path) -> None:
    with (
        uvicorn_server(root, pipeline=PIPELINE) as runner,
        uvicorn_server(root, pipeline=PIPELINE, max_workers="1") as other,
    ):
        run_id = httpx.post(f"{runner.url}/api/v1/runs", json=REQUEST, timeout=10).json()["run_id"]
        poll_status(other.url, run_id, "running")
        with (
            httpx.Client(timeout=30) as client,
            client.stream("GET", f"{other.url}/api/v1/runs/{run_id}/events") as events,
        ):
            lines = events.iter_lines()
            assert next(line for line in lines if line.startswith("event:")) == "event: status"
            cancelled = client.post(f"{other.url}/api/v1/runs/{run_id}/cancel")
            assert cancelled.status_code == 202 and cancelled.json()["cancel_requested_at"]
            rest = list(lines)
        assert "event: cancel_requested" in rest and "event: end" in rest
        final = orjson.loads(rest[rest.index("event: end") + 1].removeprefix("data: "))
        assert (final["status"], final["finish_reason"]) == ("stopped", "cancelled")
    assert executions(root / "documents") == [run_id]  # only the first server ever ran it


def test_an_event_stream_ends_cleanly_when_the_client_goes_away(root: Path) -> None:
    with uvicorn_server(root, pipeline=PIPELINE, sse_ping_interval_s="0.2") as server:
        run_id = httpx.post(f"{server.url}/api/v1/runs", json=REQUEST, timeout=10).json()["run_id"]
        poll_status(server.url, run_id, "running")
        with httpx.stream("GET", f"{server.url}/api/v1/runs/{run_id}/events", timeout=10) as events:
            lines = events.iter_lines()  # held: dropping it would close the connection early
            assert next(line for line in lines if line.startswith("event:")) == "event: status"
            wait_until(
                lambda: "runlane_sse_streams_active 1.0" in httpx.get(f"{server.url}/metrics").text,
                what="the stream to stay open while the client reads",
            )
        wait_until(
            lambda: "runlane_sse_streams_active 0.0" in httpx.get(f"{server.url}/metrics").text,
            what="the stream to close after the client left",
        )
        (root / "documents" / "release").touch()
        poll_status(server.url, run_id, "completed")


def test_a_fifo_in_place_of_a_state_file_never_blocks_the_server(root: Path) -> None:
    (root / "documents" / "release").touch()
    with uvicorn_server(root, pipeline=PIPELINE) as server:
        run_id = httpx.post(f"{server.url}/api/v1/runs", json=REQUEST).json()["run_id"]
        poll_status(server.url, run_id, "completed")
        state = root / "output" / run_id / "api_state.json"
        state.unlink()
        os.mkfifo(state)
        with httpx.Client(timeout=10) as client:  # a hang would time out, not pass
            for path in ("status", "events", ""):
                response = client.get(f"{server.url}/api/v1/runs/{run_id}/{path}".rstrip("/"))
                assert response.status_code == 500, path
                assert response.json()["code"] == "RUN_STATE_UNREADABLE"
            assert client.get(f"{server.url}/health").status_code == 200


def test_an_oversized_request_head_is_refused_with_431_before_it_is_buffered(root: Path) -> None:
    with uvicorn_server(root, pipeline=PIPELINE) as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
            with contextlib.suppress(OSError):  # the server may close while we still send
                for _ in range(64):
                    sock.sendall(b"a" * 65536)
            reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 431"), reply[:80]
        assert httpx.get(f"{server.url}/health").status_code == 200


def test_a_large_body_sent_with_its_head_in_one_write_is_not_taken_for_a_large_head(root: Path) -> None:
    with uvicorn_server(root, pipeline=PIPELINE) as server:
        reply = httpx.post(f"{server.url}/api/v1/runs", json={"question": "\u0085" * 1_200_000}, timeout=30)
    # A body too large (413), not a head too large (431): the head is a few hundred bytes.
    assert reply.status_code == 413 and reply.json()["code"] == "PAYLOAD_TOO_LARGE"
