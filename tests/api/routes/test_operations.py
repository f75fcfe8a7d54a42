"""Idempotent creation, backpressure, CORS, service info, health, readiness, metrics and logs."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient

from app.api.logs import JsonFormatter
from app.config import Settings
from tests.api.routes.test_runs import assert_problem
from tests.conftest import running_app, wait_for_status, wait_until
from tests.support.pipelines import GatedPipeline, instant_pipeline

REQUEST = {"question": "What are main climate initiatives?"}


@pytest.fixture
def one_worker(settings: Settings, gated: GatedPipeline) -> Iterator[TestClient]:
    with running_app(settings.model_copy(update={"max_workers": 1, "max_queued": 1}), gated) as client:
        yield client
        gated.gate.set()


def run_folders(settings: Settings) -> list[str]:
    return sorted(p.name for p in settings.output_dir.iterdir() if not p.name.startswith("."))


def test_repeated_idempotency_key_with_the_same_body_returns_the_same_run(settings: Settings) -> None:
    with running_app(settings, instant_pipeline) as client:
        headers = {"Idempotency-Key": "order-42"}
        first = client.post("/api/v1/runs", json=REQUEST, headers=headers)
        second = client.post("/api/v1/runs", json=REQUEST, headers=headers)
        assert (first.status_code, second.status_code) == (202, 200)
        assert first.json()["run_id"] == second.json()["run_id"]
        assert second.headers["location"] == first.headers["location"]
        assert len(run_folders(settings)) == 1
        changed = client.post("/api/v1/runs", json={**REQUEST, "enable_sql": True}, headers=headers)
        assert_problem(changed, 422, "IDEMPOTENCY_KEY_REUSED")
        other = client.post("/api/v1/runs", json=REQUEST, headers={"Idempotency-Key": "order-43"})
        assert other.status_code == 202 and other.json()["run_id"] != first.json()["run_id"]


def test_idempotency_keys_expire(settings: Settings) -> None:
    with running_app(settings.model_copy(update={"idempotency_ttl_s": 0.05}), instant_pipeline) as client:
        headers = {"Idempotency-Key": "short-lived"}
        first = client.post("/api/v1/runs", json=REQUEST, headers=headers).json()["run_id"]
        wait_for_status(client, first, "completed")

        def answered_with_a_new_run() -> bool:
            response = client.post("/api/v1/runs", json={**REQUEST, "enable_sql": True}, headers=headers)
            return response.status_code == 202

        wait_until(answered_with_a_new_run, what="the key to expire")


def test_queue_limit_answers_429_with_retry_after_and_creates_nothing(
    one_worker: TestClient, gated: GatedPipeline, settings: Settings
) -> None:
    one_worker.post("/api/v1/runs", json=REQUEST)
    assert gated.started.wait(10)
    assert one_worker.post("/api/v1/runs", json=REQUEST).status_code == 202  # queued: the limit is 1
    before = run_folders(settings)
    refused = one_worker.post("/api/v1/runs", json={**REQUEST, "run_id": "one-too-many"})
    assert_problem(refused, 429, "QUEUE_FULL")
    assert refused.headers["retry-after"] == "2"
    assert run_folders(settings) == before


def test_a_place_freed_in_the_queue_is_taken_at_once(one_worker: TestClient, gated: GatedPipeline) -> None:
    one_worker.post("/api/v1/runs", json=REQUEST)
    assert gated.started.wait(10)
    queued = one_worker.post("/api/v1/runs", json=REQUEST).json()["run_id"]
    assert one_worker.post("/api/v1/runs", json=REQUEST).status_code == 429
    assert one_worker.post(f"/api/v1/runs/{queued}/cancel").status_code == 200
    # Within the backpressure count's lifetime too: the cancel is counted where it happened.
    assert one_worker.post("/api/v1/runs", json=REQUEST).status_code == 202
    assert one_worker.post("/api/v1/runs", json=REQUEST).status_code == 429


def test_cors_exposes_location_retry_after_and_etag(settings: Settings) -> None:
    allowed = settings.model_copy(update={"cors_origins": ["http://frontend.test"]})
    with running_app(allowed, instant_pipeline) as client:
        origin = {"Origin": "http://frontend.test"}
        preflight = client.options(
            "/api/v1/runs",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://frontend.test"
        created = client.post("/api/v1/runs", json=REQUEST, headers=origin)
        exposed = {h.strip().lower() for h in created.headers["access-control-expose-headers"].split(",")}
        assert {"location", "retry-after", "etag"} <= exposed
        stranger = client.get("/health", headers={"Origin": "http://evil.test"})
        assert "access-control-allow-origin" not in stranger.headers


def test_service_info_reports_version_limits_and_counts(settings: Settings) -> None:
    with running_app(settings, instant_pipeline) as client:
        run_id = client.post("/api/v1/runs", json=REQUEST).json()["run_id"]
        wait_for_status(client, run_id, "completed")
        info = client.get("/api/v1/service-info").json()
    assert info["name"] == "Runlane" and info["api_version"] == "v1" and info["version"]
    assert info["limits"] == {
        "max_workers": settings.max_workers,
        "max_queued": settings.max_queued,
        "max_body_bytes": settings.max_body_bytes,
        "default_timeout_s": settings.default_timeout_s,
        "max_timeout_s": settings.max_timeout_s,
    }
    assert info["poll_interval_s"] == 2 and info["retention_days"] is None
    assert info["writer"] == "extractive"  # no RUNLANE_LLM_BASE_URL: the console hides LLM options
    assert info["runs"] == {
        "queued": 0,
        "running": 0,
        "completed": 1,
        "completed_with_gaps": 0,
        "failed": 0,
        "stopped": 0,
        "damaged": 0,
    }


def test_health_and_readiness(settings: Settings) -> None:
    with running_app(settings, instant_pipeline) as client:
        assert client.get("/health").json() == {"status": "ok", "checks": {}}
        ready = client.get("/ready")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "checks": {"output_writable": True, "output_free_space": True, "executor_alive": True},
        }
        meta = settings.output_dir / ".runlane"
        meta.rename(settings.output_dir / ".runlane-aside")
        meta.write_text("a file where the folder should be")
        try:
            blocked = client.get("/ready")
            assert blocked.status_code == 503 and blocked.json()["checks"]["output_writable"] is False
        finally:
            meta.unlink()
            (settings.output_dir / ".runlane-aside").rename(meta)
        client.app.state.runs.executor.shutdown()  # type: ignore[attr-defined]
        stopped = client.get("/ready")
        assert stopped.status_code == 503 and stopped.json()["checks"]["executor_alive"] is False


def test_metrics_expose_runs_queue_durations_and_http_latency(settings: Settings) -> None:
    with running_app(settings, instant_pipeline) as client:
        run_id = client.post("/api/v1/runs", json=REQUEST).json()["run_id"]
        wait_for_status(client, run_id, "completed")
        client.get("/api/v1/runs/unknown-run/status")
        text = client.get("/metrics").text
    assert 'runlane_runs{status="completed"} 1.0' in text
    assert "runlane_queue_depth 0.0" in text
    assert 'runlane_run_duration_seconds_count{status="completed"} 1.0' in text
    route = re.escape('route="/api/v1/runs/{run_id}/status"')
    assert re.search(
        rf'runlane_http_request_duration_seconds_count{{method="GET",{route},status="200"}} [1-9]', text
    )
    assert re.search(
        rf'runlane_http_request_duration_seconds_count{{method="GET",{route},status="404"}} 1', text
    )
    assert "runlane_sse_streams_active 0.0" in text


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, object]] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


def test_log_lines_about_a_run_are_json_with_its_run_id(settings: Settings) -> None:
    collected = Collected()
    logging.getLogger("runlane").addHandler(collected)
    try:
        with running_app(settings, instant_pipeline) as client:
            run_id = client.post("/api/v1/runs", json=REQUEST).json()["run_id"]
            wait_for_status(client, run_id, "completed")
    finally:
        logging.getLogger("runlane").removeHandler(collected)
    about_run = [line for line in collected.lines if line.get("run_id") == run_id]
    assert [line["message"] for line in about_run] == ["run started", "run finished"]
    assert about_run[1]["status"] == "completed" and about_run[0]["level"] == "info"
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in collected.lines)
