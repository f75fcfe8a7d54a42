"""Regenerate with feedback: a finished run's question answered again by a new, linked run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.modules.contract import PipelineResult, RunContext
from tests.api.routes.test_runs import assert_problem
from tests.conftest import running_app, wait_for_status
from tests.support.pipelines import GatedPipeline

REQUEST = {"question": "What are main climate initiatives?", "enable_sql": True, "markdown_path": "documents"}


class FeedbackRecorder(GatedPipeline):
    """The gated pipeline, remembering the feedback each run was given."""

    def __init__(self) -> None:
        super().__init__()
        self.feedback: dict[str, str | None] = {}

    def __call__(self, ctx: RunContext) -> PipelineResult:
        self.feedback[ctx.run_id] = ctx.options.feedback
        return super().__call__(ctx)


@pytest.fixture
def recorder() -> FeedbackRecorder:
    return FeedbackRecorder()


@pytest.fixture
def client(settings: Settings, recorder: FeedbackRecorder) -> Iterator[TestClient]:
    with running_app(settings, recorder) as test_client:
        yield test_client
        recorder.gate.set()


def finished_run(client: TestClient, recorder: FeedbackRecorder) -> str:
    run_id: str = client.post("/api/v1/runs", json=REQUEST).json()["run_id"]
    recorder.gate.set()
    wait_for_status(client, run_id, "completed")
    return run_id


def test_a_finished_run_is_regenerated_as_a_new_run_linked_both_ways(
    client: TestClient, recorder: FeedbackRecorder
) -> None:
    parent = finished_run(client, recorder)
    made = client.post(f"/api/v1/runs/{parent}/regenerate", json={"feedback": "leave out methane"})
    assert made.status_code == 202, made.text
    child = made.json()["run_id"]
    assert child != parent and made.headers["location"] == f"/api/v1/runs/{child}/status"
    done = wait_for_status(client, child, "completed")
    assert done["parent_run_id"] == parent
    detail: dict[str, Any] = client.get(f"/api/v1/runs/{child}").json()
    assert detail["request"] == {
        **REQUEST,
        "log_llm_payload": False,
        "timeout_s": None,
        "feedback": "leave out methane",
    }
    assert detail["parent_run_id"] == parent and detail["children"] == []
    assert recorder.feedback[child] == "leave out methane" and recorder.feedback[parent] is None
    again = client.post(
        f"/api/v1/runs/{parent}/regenerate", json={"feedback": "focus on heat pumps", "run_id": "mine-2"}
    )
    assert again.json()["run_id"] == "mine-2"
    parent_detail = client.get(f"/api/v1/runs/{parent}").json()
    assert parent_detail["children"] == [child, "mine-2"] and parent_detail["parent_run_id"] is None
    assert client.get(f"/api/v1/runs/{parent}/status").json()["parent_run_id"] is None


def test_regenerating_an_unfinished_unknown_or_misaddressed_run_is_refused(
    client: TestClient, recorder: FeedbackRecorder
) -> None:
    running = client.post("/api/v1/runs", json=REQUEST).json()["run_id"]
    assert recorder.started.wait(10)
    body = assert_problem(
        client.post(f"/api/v1/runs/{running}/regenerate", json={"feedback": "x"}), 409, "RUN_NOT_FINISHED"
    )
    assert body["run_status"] == "running"
    assert_problem(
        client.post("/api/v1/runs/no-such-run/regenerate", json={"feedback": "x"}), 404, "RUN_NOT_FOUND"
    )
    recorder.gate.set()
    wait_for_status(client, running, "completed")
    assert_problem(
        client.post(f"/api/v1/runs/{running}/regenerate", json={"feedback": " "}), 422, "VALIDATION_ERROR"
    )
    taken = client.post(f"/api/v1/runs/{running}/regenerate", json={"feedback": "x", "run_id": running})
    assert_problem(taken, 409, "RUN_ID_CONFLICT")
    assert client.get(f"/api/v1/runs/{running}").json()["children"] == []
