"""Inputs at the edges: idempotency keys, cursors, paths, headers and questions that used to
answer 500 or do the wrong thing."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.api.routes.test_runs import assert_problem
from tests.conftest import running_app, wait_for_status
from tests.support.pipelines import instant_pipeline

REQUEST = {"question": "q", "markdown_path": "documents"}


@pytest.fixture
def client(settings: Settings) -> Any:
    with running_app(settings, instant_pipeline) as client:
        yield client


def test_an_idempotency_key_never_answers_with_a_run_it_did_not_create(client: TestClient) -> None:
    client.post("/api/v1/runs", json={**REQUEST, "run_id": "made-plainly"})
    keyed = {**REQUEST, "run_id": "made-plainly"}
    body = assert_problem(
        client.post("/api/v1/runs", json=keyed, headers={"Idempotency-Key": "k1"}), 409, "RUN_ID_CONFLICT"
    )
    assert "made-plainly" in body["message"]
    # The key was not used up by the refusal: it can create a run of its own.
    fresh = client.post(
        "/api/v1/runs", json={**REQUEST, "run_id": "made-by-k1"}, headers={"Idempotency-Key": "k1"}
    )
    assert fresh.status_code == 202
    again = client.post(
        "/api/v1/runs", json={**REQUEST, "run_id": "made-by-k1"}, headers={"Idempotency-Key": "k1"}
    )
    assert again.status_code == 200 and again.json()["run_id"] == "made-by-k1"


def test_post_with_the_id_of_a_deleted_run_answers_410(client: TestClient) -> None:
    run_id = client.post("/api/v1/runs", json={**REQUEST, "run_id": "short-lived"}).json()["run_id"]
    wait_for_status(client, run_id, "completed")
    assert client.delete(f"/api/v1/runs/{run_id}").status_code == 204
    assert_problem(client.post("/api/v1/runs", json={**REQUEST, "run_id": run_id}), 410, "RUN_GONE")


def cursor_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        cursor_of(b"1" * 23),
        cursor_of(b"9" * 23 + b":run"),
        cursor_of(b"-5:run"),
        cursor_of(b"12:../etc"),
        cursor_of("١٢:run".encode()),
        cursor_of(b"\xff\xfe"),
        "!!!",
        "a",
    ],
)
def test_every_malformed_cursor_is_a_422(client: TestClient, cursor: str) -> None:
    assert_problem(client.get("/api/v1/runs", params={"cursor": cursor}), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("markdown_path", "words"),
    [
        ("d" * 1000, "File name too long"),
        ("x/" * 200 + "y" * 300, "does not exist"),
        ("output", "run outputs"),
        (".", "run outputs"),
        ("documents/.hidden", "hidden"),
        (".runlane", "hidden"),
    ],
)
def test_paths_that_cannot_be_a_documents_folder_are_refused(
    client: TestClient, settings: Settings, markdown_path: str, words: str
) -> None:
    (settings.documents_root / "documents" / ".hidden").mkdir()
    response = client.post("/api/v1/runs", json={**REQUEST, "markdown_path": markdown_path})
    body = assert_problem(response, 422, "VALIDATION_ERROR")
    assert words in body["message"]


def test_the_output_root_is_never_a_documents_folder_even_as_the_default_root(
    tmp_path: Any, settings: Settings
) -> None:
    inside = settings.model_copy(update={"output_dir": settings.documents_root / "documents" / "out"})
    with running_app(inside, instant_pipeline) as client:
        response = client.post("/api/v1/runs", json=REQUEST)
        assert "run outputs" in assert_problem(response, 422, "VALIDATION_ERROR")["message"]


@pytest.mark.parametrize(("header", "value"), [("Idempotency-Key", "k" * 256), ("Last-Event-ID", "1" * 21)])
def test_oversized_bounded_headers_are_refused_before_the_body_is_read(
    client: TestClient, header: str, value: str
) -> None:
    def body() -> Any:
        raise AssertionError("the body was read")
        yield b""

    response = client.post(
        "/api/v1/runs", content=body(), headers={header: value, "content-type": "application/json"}
    )
    assert header.lower() in assert_problem(response, 422, "VALIDATION_ERROR")["message"].lower()


def test_interrupted_runs_tell_clients_what_happened_and_operators_which_process(
    settings: Settings,
) -> None:
    from app.runs.run_store import RunStore
    from tests.support.owners import dead_owner

    store = RunStore(settings.output_dir)
    run_id = store.create(REQUEST, None, 60).run_id
    owner = dead_owner()
    store.claim(run_id, owner)
    with running_app(settings, instant_pipeline) as client:
        status = wait_for_status(client, run_id, "failed")
    assert status["error"] == {
        "type": "Interrupted",
        "message": "The server stopped before the run finished.",
    }
    assert str(owner.pid) not in orjson.dumps(status).decode()
    log = orjson.loads((settings.output_dir / run_id / "run.json").read_bytes())
    assert log["errors"][-1]["detail"] == f"owner: process {owner.pid} on {owner.host}"
