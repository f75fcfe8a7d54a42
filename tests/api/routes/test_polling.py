"""Cheap polling (ETag, 304, Retry-After), progress in the status, and live Server-Sent Events."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.api.routes.test_runs import assert_problem
from tests.conftest import running_app, wait_for_status, wait_until
from tests.support.pipelines import GatedPipeline, instant_pipeline

REQUEST = {"question": "What are main climate initiatives?"}


@pytest.fixture
def client(settings: Settings, gated: GatedPipeline) -> Iterator[TestClient]:
    with running_app(settings.model_copy(update={"sse_ping_interval_s": 0.2}), gated) as test_client:
        yield test_client
        gated.gate.set()


def start(client: TestClient) -> str:
    run_id: str = client.post("/api/v1/runs", json=REQUEST).json()["run_id"]
    return run_id


def test_unchanged_status_answers_304_and_a_change_gives_a_new_etag(
    client: TestClient, gated: GatedPipeline
) -> None:
    run_id = start(client)
    assert gated.started.wait(10)
    # The gated pipeline reports its last step ("wait") just after it starts; after that the
    # status stays put until the gate opens.
    wait_until(lambda: client.get(f"/api/v1/runs/{run_id}/status").json()["progress"]["stage"] == "wait")
    current = client.get(f"/api/v1/runs/{run_id}/status")
    etag = current.headers["etag"]
    assert current.headers["retry-after"] == "2"
    unchanged = client.get(f"/api/v1/runs/{run_id}/status", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == etag and unchanged.headers["retry-after"] == "2"
    gated.gate.set()
    wait_for_status(client, run_id, "completed")
    changed = client.get(f"/api/v1/runs/{run_id}/status", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert "retry-after" not in changed.headers  # nothing more to wait for


def test_output_and_context_send_etag_and_content_length_and_honour_if_none_match(settings: Settings) -> None:
    with running_app(settings, instant_pipeline) as client:
        run_id = start(client)
        wait_for_status(client, run_id, "completed")
        for endpoint in ("output", "context"):
            first = client.get(f"/api/v1/runs/{run_id}/{endpoint}")
            assert int(first.headers["content-length"]) == len(first.content)
            again = client.get(
                f"/api/v1/runs/{run_id}/{endpoint}", headers={"If-None-Match": first.headers["etag"]}
            )
            assert again.status_code == 304


def test_progress_in_the_status_only_moves_forward(client: TestClient, gated: GatedPipeline) -> None:
    run_id = start(client)
    assert gated.started.wait(10)
    observed = [wait_for_status(client, run_id, "running")["progress"]]
    gated.gate.set()
    done = wait_for_status(client, run_id, "completed")
    observed.append(done["progress"])
    assert set(observed[0]) == {"stage", "stage_index", "stage_count", "fraction", "message", "seq"}
    assert observed[0]["stage_count"] == 3
    for before, after in itertools.pairwise(observed):
        assert after["seq"] > before["seq"] and after["fraction"] >= before["fraction"]
        assert after["stage_index"] >= before["stage_index"]
    # A completed run ends at 100 % in its last stage, not where its last report left it.
    assert done["progress"] == {
        "stage": "write",
        "stage_index": 2,
        "stage_count": 3,
        "fraction": 1.0,
        "message": "done",
        "seq": 4,
    }
    for field in ("created_at", "updated_at"):
        assert done[field].endswith("Z")
    assert done["gaps"] == [] and done["expires_at"] is None


def read_events(client: TestClient, url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Parse a whole SSE stream (it ends after the `end` event)."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with client.stream("GET", url, headers=headers or {}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(":"):
                events.append({"comment": line})
            elif not line:
                if current:
                    events.append(current)
                current = {}
            else:
                field, _, value = line.partition(":")
                current[field] = value.lstrip(" ")
    return events


def test_event_stream_sends_status_and_progress_then_end_and_closes(
    client: TestClient, gated: GatedPipeline
) -> None:
    run_id = start(client)
    gated.gate.set()
    wait_for_status(client, run_id, "completed")
    events = [e for e in read_events(client, f"/api/v1/runs/{run_id}/events") if "comment" not in e]
    names = [event["event"] for event in events]
    assert names == ["status", "status", "progress", "progress", "progress", "status", "end"]
    assert [int(event["id"]) for event in events] == list(range(1, 8))  # `end` has the next id
    assert [orjson.loads(e["data"]).get("status") for e in events if e["event"] == "status"] == [
        "queued",
        "running",
        "completed",
    ]
    assert orjson.loads(events[-1]["data"])["status"] == "completed"
    assert events[0]["retry"] == "2000" and all("retry" not in event for event in events[1:])


def test_a_reconnect_after_the_end_is_told_there_is_nothing_more(
    client: TestClient, gated: GatedPipeline
) -> None:
    run_id = start(client)
    gated.gate.set()
    wait_for_status(client, run_id, "completed")
    url = f"/api/v1/runs/{run_id}/events"
    for seen in ("7", "8"):
        after_end = client.get(url, headers={"Last-Event-ID": seen})
        assert (after_end.status_code, after_end.content) == (204, b"")
    before_end = read_events(client, url, {"Last-Event-ID": "6"})
    assert [(e["event"], e["id"]) for e in before_end if "comment" not in e] == [("end", "7")]


def test_event_stream_resumes_after_last_event_id(client: TestClient, gated: GatedPipeline) -> None:
    run_id = start(client)
    gated.gate.set()
    wait_for_status(client, run_id, "completed")
    resumed = read_events(client, f"/api/v1/runs/{run_id}/events", {"Last-Event-ID": "4"})
    assert [(e["event"], e.get("id")) for e in resumed if "comment" not in e] == [
        ("progress", "5"),
        ("status", "6"),
        ("end", "7"),
    ]


def test_event_stream_follows_a_live_run_with_heartbeats(client: TestClient, gated: GatedPipeline) -> None:
    run_id = start(client)
    assert gated.started.wait(10)
    events: list[str] = []
    with client.stream("GET", f"/api/v1/runs/{run_id}/events") as response:
        for line in response.iter_lines():
            events.append(line)
            if line.startswith(": ping") and not gated.gate.is_set():
                gated.gate.set()  # a heartbeat arrived while the run was still going: now finish it
        assert any(line.startswith(": ping") for line in events)
    assert "event: end" in events
    end = events[events.index("event: end") + 1]
    assert orjson.loads(end.removeprefix("data: "))["status"] == "completed"


def test_event_stream_of_an_unknown_run_is_404_and_a_bad_last_event_id_422(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/runs/missing/events"), 404, "RUN_NOT_FOUND")
    run_id = start(client)
    response = client.get(f"/api/v1/runs/{run_id}/events", headers={"Last-Event-ID": "abc"})
    assert_problem(response, 422, "VALIDATION_ERROR")
