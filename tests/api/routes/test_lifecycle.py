"""Cancel, time limits, listing, run detail, deletion and retention, through the real app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.api.routes.test_runs import assert_problem
from tests.conftest import running_app, wait_for_status, wait_until
from tests.support.pipelines import GatedPipeline, instant_pipeline

REQUEST = {"question": "What are main climate initiatives?"}


@pytest.fixture
def one_worker(settings: Settings, gated: GatedPipeline) -> Iterator[TestClient]:
    """One worker whose pipeline blocks: the first run runs, later ones stay queued."""
    with running_app(settings.model_copy(update={"max_workers": 1}), gated) as client:
        yield client
        gated.gate.set()


def start(client: TestClient, **fields: Any) -> str:
    response = client.post("/api/v1/runs", json={**REQUEST, **fields})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    return run_id


def test_cancel_of_a_queued_run_stops_it_at_once_and_repeats_answer_the_same(
    one_worker: TestClient, gated: GatedPipeline
) -> None:
    start(one_worker)
    assert gated.started.wait(10)
    queued = start(one_worker)
    first = one_worker.post(f"/api/v1/runs/{queued}/cancel")
    assert first.status_code == 200
    assert first.json()["status"] == "stopped" and first.json()["finish_reason"] == "cancelled"
    assert first.json()["cancel_requested_at"] is not None
    again = one_worker.post(f"/api/v1/runs/{queued}/cancel")
    assert again.status_code == 200 and again.json() == first.json()
    gated.gate.set()
    assert one_worker.get(f"/api/v1/runs/{queued}/status").json()["status"] == "stopped"
    assert gated.calls == [gated.calls[0]]  # the cancelled run never ran


def test_cancel_of_a_running_run_flags_it_then_it_stops_when_the_pipeline_checks(
    one_worker: TestClient, gated: GatedPipeline
) -> None:
    run_id = start(one_worker)
    assert gated.started.wait(10)
    flagged = one_worker.post(f"/api/v1/runs/{run_id}/cancel")
    assert flagged.status_code == 202
    assert flagged.json()["status"] == "running" and flagged.json()["cancel_requested_at"]
    stopped = wait_for_status(one_worker, run_id, "stopped")
    assert stopped["finish_reason"] == "cancelled"
    assert one_worker.post(f"/api/v1/runs/{run_id}/cancel").status_code == 200
    output = one_worker.get(f"/api/v1/runs/{run_id}/output")
    assert output.status_code == 200 and output.json()["content"] == "partial answer\n"


def test_cancel_of_a_run_that_ended_otherwise_is_409_naming_its_status(settings: Settings) -> None:
    with running_app(settings, instant_pipeline) as client:
        run_id = start(client)
        wait_for_status(client, run_id, "completed")
        body = assert_problem(client.post(f"/api/v1/runs/{run_id}/cancel"), 409, "RUN_ALREADY_FINISHED")
        assert body["run_status"] == "completed"
        assert_problem(client.post("/api/v1/runs/nope/cancel"), 404, "RUN_NOT_FOUND")


def test_time_limit_from_the_request_stops_the_run_with_reason_timeout(
    one_worker: TestClient, gated: GatedPipeline
) -> None:
    run_id = start(one_worker, timeout_s=0.3)
    stopped = wait_for_status(one_worker, run_id, "stopped")
    assert stopped["finish_reason"] == "timeout"
    assert gated.saw_stop.is_set()


def test_time_limit_above_the_maximum_is_rejected(settings: Settings) -> None:
    capped = settings.model_copy(update={"max_timeout_s": 60})
    with running_app(capped, instant_pipeline) as client:
        body = assert_problem(
            client.post("/api/v1/runs", json={**REQUEST, "timeout_s": 61}), 422, "VALIDATION_ERROR"
        )
        assert "at most 60" in body["message"]


def test_listing_pages_newest_first_with_cursor_and_status_filter(settings: Settings) -> None:
    with running_app(settings, instant_pipeline) as client:
        created = [start(client, run_id=f"run-{i:02d}") for i in range(7)]
        for run_id in created:
            wait_for_status(client, run_id, "completed")
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = client.get("/api/v1/runs", params=params).json()
            seen += [item["run_id"] for item in page["runs"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == list(reversed(created)) and pages == 3
        item = client.get("/api/v1/runs", params={"limit": 1}).json()["runs"][0]
        question = item.pop("question")  # each item is the status payload plus its question
        assert item == client.get(f"/api/v1/runs/{item['run_id']}/status").json()
        assert question == client.get(f"/api/v1/runs/{item['run_id']}").json()["request"]["question"]
        assert client.get("/api/v1/runs", params={"status": "queued"}).json() == {
            "runs": [],
            "next_cursor": None,
            "damaged_runs": 0,
        }
        assert len(client.get("/api/v1/runs", params={"status": "completed"}).json()["runs"]) == 7
        assert_problem(client.get("/api/v1/runs", params={"status": "done"}), 422, "VALIDATION_ERROR")
        assert_problem(client.get("/api/v1/runs", params={"cursor": "garbage!"}), 422, "VALIDATION_ERROR")
        assert_problem(client.get("/api/v1/runs", params={"limit": 0}), 422, "VALIDATION_ERROR")


def test_listing_across_pages_while_runs_are_being_created_skips_and_repeats_nothing(
    settings: Settings,
) -> None:
    with running_app(settings, instant_pipeline) as client:
        created = [start(client, run_id=f"old-{i}") for i in range(6)]
        first = client.get("/api/v1/runs", params={"limit": 2}).json()
        created += [start(client, run_id=f"new-{i}") for i in range(4)]
        seen = [item["run_id"] for item in first["runs"]]
        cursor = first["next_cursor"]
        while cursor:
            page = client.get("/api/v1/runs", params={"limit": 2, "cursor": cursor}).json()
            seen += [item["run_id"] for item in page["runs"]]
            cursor = page["next_cursor"]
            created.append(start(client, run_id=f"during-{len(seen)}"))
        assert seen == [f"old-{i}" for i in reversed(range(6))]  # the first listing's runs, each once
        everything = [
            item["run_id"] for item in client.get("/api/v1/runs", params={"limit": 200}).json()["runs"]
        ]
        assert everything == list(reversed(created))


def test_run_detail_has_the_status_the_request_and_every_url(settings: Settings) -> None:
    with running_app(settings, instant_pipeline) as client:
        run_id = start(client, enable_sql=True)
        status = wait_for_status(client, run_id, "completed")
        detail = client.get(f"/api/v1/runs/{run_id}").json()
    assert {key: detail[key] for key in status} == status
    assert detail["request"]["enable_sql"] is True and detail["request"]["question"] == REQUEST["question"]
    base = f"/api/v1/runs/{run_id}"
    assert (detail["events_url"], detail["cancel_url"], detail["output_url"]) == (
        f"{base}/events",
        f"{base}/cancel",
        f"{base}/output",
    )


def test_delete_removes_a_finished_run_and_later_requests_answer_410(settings: Settings) -> None:
    with running_app(settings, instant_pipeline) as client:
        run_id = start(client)
        wait_for_status(client, run_id, "completed")
        assert client.delete(f"/api/v1/runs/{run_id}").status_code == 204
        for method, path in [
            ("GET", "status"),
            ("GET", "output"),
            ("GET", "context"),
            ("GET", "events"),
            ("POST", "cancel"),
        ]:
            assert_problem(client.request(method, f"/api/v1/runs/{run_id}/{path}"), 410, "RUN_GONE")
        assert_problem(client.get(f"/api/v1/runs/{run_id}"), 410, "RUN_GONE")
        assert_problem(client.delete(f"/api/v1/runs/{run_id}"), 410, "RUN_GONE")
        assert client.get("/api/v1/runs").json()["runs"] == []
        assert sorted(p.name for p in (settings.output_dir / run_id).iterdir()) == ["tombstone.json"]


def test_delete_of_a_queued_or_running_run_is_409(one_worker: TestClient, gated: GatedPipeline) -> None:
    running = start(one_worker)
    assert gated.started.wait(10)
    queued = start(one_worker)
    for run_id, status in ((running, "running"), (queued, "queued")):
        body = assert_problem(one_worker.delete(f"/api/v1/runs/{run_id}"), 409, "RUN_ACTIVE")
        assert body["run_status"] == status


def test_retention_deletes_finished_runs_in_the_background_and_keeps_active_ones(
    settings: Settings, gated: GatedPipeline
) -> None:
    kept = settings.model_copy(update={"retention_days": 0.5 / 86400, "max_workers": 2})
    with running_app(kept, gated) as client:
        running = start(client)
        assert gated.started.wait(10)
        gated.started.clear()
        finished = start(client)
        assert gated.started.wait(10)
        client.post(f"/api/v1/runs/{finished}/cancel")
        stopped = wait_for_status(client, finished, "stopped")
        assert stopped["expires_at"] is not None
        wait_until(lambda: client.get(f"/api/v1/runs/{finished}/status").status_code == 410, what="retention")
        assert client.get(f"/api/v1/runs/{running}/status").json()["status"] == "running"
        gated.gate.set()
