from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from app.api.request_priority import RequestsFirst
from app.config import Settings
from app.modules.contract import PipelineResult, RunContext
from app.runs.request_gate import RequestGate
from tests.conftest import running_app, wait_for_status
from tests.support.pipelines import EVENT_TIMEOUT_S, completed

Counted = tuple[TestClient, RequestGate, list[int]]


@pytest.fixture
def counted() -> Iterator[Counted]:
    """A small app behind the middleware; each route notes how many requests the gate counts."""
    gate = RequestGate(max_wait_s=0)
    seen: list[int] = []
    app = FastAPI()

    @app.get("/read")
    async def read() -> dict[str, int]:
        seen.append(gate.serving)
        return {"ok": 1}

    @app.post("/plain")
    async def plain() -> dict[str, int]:
        seen.append(gate.serving)
        return {"ok": 1}

    @app.delete("/failing")
    async def failing() -> None:
        seen.append(gate.serving)
        raise RuntimeError("boom")

    @app.post("/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            seen.append(gate.serving)  # the response has started: the stream counts no more
            yield b"chunk"

        return StreamingResponse(body())

    app.add_middleware(RequestsFirst, requests=gate)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, gate, seen


@pytest.mark.parametrize(
    ("method", "path", "status", "counted_while_answered"),
    [
        ("POST", "/plain", 200, 1),  # a write counts until its response starts
        ("DELETE", "/failing", 500, 1),  # and counts no more once it failed
        ("GET", "/read", 200, 0),  # a read holds no pipeline back
    ],
)
def test_writes_count_while_they_are_answered_and_reads_never(
    counted: Counted, method: str, path: str, status: int, counted_while_answered: int
) -> None:
    client, gate, seen = counted

    assert client.request(method, path).status_code == status

    assert seen == [counted_while_answered]
    assert gate.serving == 0


def test_a_streamed_body_holds_no_pipeline_back(counted: Counted) -> None:
    client, gate, seen = counted

    assert client.post("/stream").text == "chunk"

    assert seen == [0]
    assert gate.serving == 0


class CheckpointPipeline:
    """Reaches one checkpoint once started (a progress report or a stop check), and notes when
    it got through."""

    def __init__(self, checkpoint: str = "report") -> None:
        self.checkpoint = checkpoint
        self.started = threading.Event()
        self.reported = threading.Event()

    def __call__(self, ctx: RunContext) -> PipelineResult:
        self.started.set()
        if self.checkpoint == "report":
            ctx.report("work", "working", 0.5)
        else:
            ctx.should_stop()
        self.reported.set()
        return completed(ctx)


@pytest.mark.parametrize("checkpoint", ["report", "should_stop"])
def test_a_pipeline_checkpoint_waits_while_the_app_answers_a_request(
    settings: Settings, checkpoint: str
) -> None:
    pipeline = CheckpointPipeline(checkpoint)
    settings = settings.model_copy(update={"pipeline_yield_ms": 3_600_000})
    with running_app(settings, pipeline) as client:
        requests = client.app.state.runs.requests  # type: ignore[attr-defined]
        requests.enter()  # as the app does while it answers a request
        run_id = client.post("/api/v1/runs", json={"question": "q"}).json()["run_id"]
        assert pipeline.started.wait(EVENT_TIMEOUT_S)
        assert not pipeline.reported.wait(0.2)

        requests.leave()

        assert pipeline.reported.wait(EVENT_TIMEOUT_S)
        assert wait_for_status(client, run_id, "completed")["status"] == "completed"


def test_a_pipeline_checkpoint_goes_on_while_requests_are_answered_when_yielding_is_off(
    settings: Settings,
) -> None:
    pipeline = CheckpointPipeline()
    with running_app(settings.model_copy(update={"pipeline_yield_ms": 0}), pipeline) as client:
        client.app.state.runs.requests.enter()  # type: ignore[attr-defined]
        client.post("/api/v1/runs", json={"question": "q"})

        assert pipeline.reported.wait(EVENT_TIMEOUT_S)
