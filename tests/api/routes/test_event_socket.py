"""The WebSocket mirror of the live events: the SSE stream's events, frame for frame, from a
real server, with resume, a normal close after `end`, and close codes for refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import wait_for_status, wait_until
from tests.support.keys import bearer, make_key
from tests.support.server import REPO_ROOT, Server, uvicorn_server

QUESTION = {"question": "What is the offshore wind target?"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("socket")
    (root / "documents").mkdir()
    (root / "documents" / "wind.md").write_text((REPO_ROOT / "documents" / "renewable-energy.md").read_text())
    with uvicorn_server(root) as running:
        yield running


def ws_url(server: Server, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def sse_events(server: Server, run_id: str, last_event_id: int = 0) -> list[dict[str, Any]]:
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id else {}
    events, current = [], {}
    with httpx.stream(
        "GET", f"{server.url}/api/v1/runs/{run_id}/events", headers=headers, timeout=30
    ) as reply:
        for line in reply.iter_lines():
            if not line:
                if "event" in current:
                    events.append(
                        {
                            "id": current["id"],
                            "event": current["event"],
                            "data": orjson.loads(current["data"]),
                        }
                    )
                current = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(":")
                current[field] = value.lstrip(" ")
    return events


def socket_events(socket: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """Every frame until the server closes, and the close code."""
    frames = []
    try:
        while True:
            frames.append(orjson.loads(socket.recv(timeout=30)))
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd else None


def finished_run(server: Server) -> str:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        run_id: str = client.post("/api/v1/runs", json=QUESTION).json()["run_id"]
        wait_for_status(client, run_id, "completed")
    return run_id


def test_the_socket_sends_the_sse_streams_events_and_closes_normally_after_end(server: Server) -> None:
    run_id = finished_run(server)
    with connect(ws_url(server, f"/api/v1/runs/{run_id}/ws")) as socket:
        frames, code = socket_events(socket)
    assert code == 1000
    assert frames == sse_events(server, run_id)
    assert frames[-1]["event"] == "end" and frames[-1]["data"]["status"] == "completed"
    assert [event["event"] for event in frames].count("progress") >= 5


def test_a_live_run_is_followed_to_its_end_and_resumes_like_the_sse_stream(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        run_id = client.post("/api/v1/runs", json=QUESTION).json()["run_id"]
    with connect(ws_url(server, f"/api/v1/runs/{run_id}/ws")) as socket:
        first = orjson.loads(socket.recv(timeout=30))
        open_streams = httpx.get(f"{server.url}/metrics").text
        rest, code = socket_events(socket)
    live = [first, *rest]
    assert code == 1000 and live[-1]["event"] == "end"
    assert "runlane_ws_streams_active 1.0" in open_streams
    wait_until(lambda: "runlane_ws_streams_active 0.0" in httpx.get(f"{server.url}/metrics").text)
    assert live == sse_events(server, run_id)
    middle = int(live[len(live) // 2]["id"])
    with connect(ws_url(server, f"/api/v1/runs/{run_id}/ws?last_event_id={middle}")) as socket:
        resumed, code = socket_events(socket)
    assert code == 1000
    assert resumed == sse_events(server, run_id, middle) == [e for e in live if int(e["id"]) > middle]
    end_id = live[-1]["id"]
    with connect(ws_url(server, f"/api/v1/runs/{run_id}/ws?last_event_id={end_id}")) as socket:
        assert socket_events(socket) == ([], 1000)  # the SSE stream answers 204 here


def test_an_unknown_run_closes_with_4404(server: Server) -> None:
    with connect(ws_url(server, "/api/v1/runs/20200101_000000_00000000/ws")) as socket:
        assert socket_events(socket) == ([], 4404)


def test_with_keys_a_missing_key_closes_4401_a_wrong_one_4403_and_another_owners_run_4404(
    tmp_path: Path,
) -> None:
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "note.md").write_text("# Note\n\nSolar subsidies fund rooftop panels.\n")
    alice = make_key(tmp_path / "output", "alice")[1]
    bob = make_key(tmp_path / "output", "bob")[1]
    settings = {"auth": "api-key", "pipeline": "tests.support.pipelines:instant_pipeline"}
    with uvicorn_server(tmp_path, **settings) as keyed:
        with httpx.Client(base_url=keyed.url, timeout=30, headers=bearer(alice)) as client:
            run_id = client.post("/api/v1/runs", json={"question": "What is funded?"}).json()["run_id"]
            wait_for_status(client, run_id, "completed")
        url = ws_url(keyed, f"/api/v1/runs/{run_id}/ws")
        with connect(url) as socket:
            assert socket_events(socket) == ([], 4401)
        with connect(url, additional_headers=bearer(alice[:-4] + "AAAA")) as socket:
            assert socket_events(socket) == ([], 4403)
        with connect(url, additional_headers=bearer(bob)) as socket:
            assert socket_events(socket) == ([], 4404)
        # A browser offers its key as a subprotocol; the server answers with `runlane`.
        with connect(url, subprotocols=["runlane", f"bearer.{alice}"]) as socket:
            assert socket.subprotocol == "runlane"
            frames, code = socket_events(socket)
        assert code == 1000 and frames[-1]["event"] == "end"
    assert alice not in keyed.log.read_text()
