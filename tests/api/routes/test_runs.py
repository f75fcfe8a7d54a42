from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.config import Settings
from tests.conftest import running_app, wait_for_status
from tests.support.pipelines import (
    GatedPipeline,
    gaps_pipeline,
    instant_pipeline,
    not_a_result_pipeline,
    raising_pipeline,
)

CONTRACT_REQUEST = {
    "question": "What are main climate initiatives?",
    "enable_sql": False,
    "markdown_path": "documents",
    "log_llm_payload": False,
}
V1_STATUS_FIELDS = {"run_id", "status", "started_at", "completed_at", "finish_reason", "error"}


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in response.text
    return body


@pytest.fixture
def client(settings: Settings, gated: GatedPipeline) -> Any:
    with running_app(settings, gated) as test_client:
        yield test_client
        gated.gate.set()


def start(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/runs", json={**CONTRACT_REQUEST, **fields})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def test_post_answers_202_with_the_contract_payload_and_location_while_the_pipeline_blocks(
    client: TestClient, gated: GatedPipeline
) -> None:
    response = client.post("/api/v1/runs", json={**CONTRACT_REQUEST, "run_id": "client-id-1"})
    assert response.status_code == 202
    assert response.json() == {
        "run_id": "client-id-1",
        "status": "queued",
        "status_url": "/api/v1/runs/client-id-1/status",
        "output_url": "/api/v1/runs/client-id-1/output",
        "context_url": "/api/v1/runs/client-id-1/context",
    }
    assert response.headers["location"] == "/api/v1/runs/client-id-1/status"
    assert not gated.gate.is_set()  # the 202 left while the pipeline could not finish


def test_server_generates_a_timestamped_run_id_when_none_is_given(client: TestClient) -> None:
    run_id = start(client)["run_id"]
    assert len(run_id) == len("20260209_120111_a1b2c3d4") and run_id[8] == "_"


def test_status_moves_queued_running_completed_with_timestamps(
    client: TestClient, gated: GatedPipeline
) -> None:
    run_id = start(client)["run_id"]
    assert gated.started.wait(10)
    running = wait_for_status(client, run_id, "running")
    assert running.keys() >= V1_STATUS_FIELDS
    assert running["started_at"].endswith("Z") and running["completed_at"] is None
    assert running["finish_reason"] is None and running["error"] is None
    gated.gate.set()
    done = wait_for_status(client, run_id, "completed")
    assert done["completed_at"].endswith("Z") and done["finish_reason"] == "answered"
    assert done["progress"]["fraction"] == 1.0 and done["progress"]["stage"] == "write"


def test_output_and_context_answer_409_while_running_then_200(
    client: TestClient, gated: GatedPipeline
) -> None:
    run_id = start(client)["run_id"]
    assert gated.started.wait(10)
    for endpoint in ("output", "context"):
        body = assert_problem(client.get(f"/api/v1/runs/{run_id}/{endpoint}"), 409, "RUN_NOT_FINISHED")
        assert body["run_status"] in ("queued", "running")
    gated.gate.set()
    wait_for_status(client, run_id, "completed")
    output = client.get(f"/api/v1/runs/{run_id}/output")
    assert output.status_code == 200
    body = output.json()
    # The contract's fields, and the versions' (issue 13) beside them.
    assert set(body) == {"run_id", "status", "content", "final_output_path"} | {
        "version",
        "has_user_edits",
        "edited_sections",
        "uncited_sentences",
        "unknown_citations",
        "sections",
    }
    assert (body["version"], body["has_user_edits"], body["edited_sections"]) == (1, False, [])
    assert (body["run_id"], body["status"]) == (run_id, "completed")
    assert body["content"] == f"# {CONTRACT_REQUEST['question']}\n\nanswer\n"
    assert output.json()["final_output_path"].endswith(f"/{run_id}/final.md")
    context = client.get(f"/api/v1/runs/{run_id}/context")
    assert context.status_code == 200
    assert context.json()["context_bundle"] == {"question": CONTRACT_REQUEST["question"], "run_id": run_id}
    assert context.json()["context_bundle_path"].endswith(f"/{run_id}/context_bundle.json")
    assert set(context.json()) == {"run_id", "status", "context_bundle", "context_bundle_path"}
    assert output.headers["etag"] and int(output.headers["content-length"]) == len(output.content)


def test_paths_in_payloads_are_relative_to_the_configured_output_root(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = settings.model_copy(update={"output_dir": Path("output")})
    with running_app(relative, instant_pipeline) as client:
        run_id = start(client)["run_id"]
        wait_for_status(client, run_id, "completed")
        path = client.get(f"/api/v1/runs/{run_id}/output").json()["final_output_path"]
    assert path == f"output/{run_id}/final.md"


def test_failed_run_reports_the_error_without_a_traceback(settings: Settings) -> None:
    with running_app(settings, raising_pipeline) as client:
        run_id = start(client)["run_id"]
        failed = wait_for_status(client, run_id, "failed")
        assert failed["error"] == {"type": "ValueError", "message": "the pipeline broke on purpose"}
        assert failed["finish_reason"] == "error"
        body = assert_problem(client.get(f"/api/v1/runs/{run_id}/output"), 409, "ARTIFACT_NOT_PRODUCED")
        assert body["run_status"] == "failed"


def test_pipeline_breaking_the_contract_fails_its_run(settings: Settings) -> None:
    with running_app(settings, not_a_result_pipeline) as client:
        run_id = start(client)["run_id"]
        failed = wait_for_status(client, run_id, "failed")
        assert failed["error"]["type"] == "PipelineContractError"


def test_gaps_end_the_run_completed_with_gaps_listing_them(settings: Settings) -> None:
    with running_app(settings, gaps_pipeline) as client:
        run_id = start(client)["run_id"]
        done = wait_for_status(client, run_id, "completed_with_gaps")
        assert done["finish_reason"] == "gaps_found"  # the API's word; the pipeline's is in run.json
        events = orjson.loads((settings.output_dir / run_id / "run.json").read_bytes())["events"]
        assert events[-1]["pipeline_reason"] == "unsupported parts"
        assert done["gaps"] == [  # a kind of the pipeline's own is reported as `other`
            {"kind": "other", "subject": "funding in 1850", "reason": "no document mentions it"}
        ]
        assert client.get(f"/api/v1/runs/{run_id}/output").status_code == 200


def test_duplicate_run_id_gets_409(client: TestClient) -> None:
    start(client, run_id="twice")
    assert_problem(
        client.post("/api/v1/runs", json={**CONTRACT_REQUEST, "run_id": "twice"}), 409, "RUN_ID_CONFLICT"
    )


@pytest.mark.parametrize("run_id", ["..", "../etc", "a/b", "%2e%2e", "a\x00b", "a b", "", "x" * 129])
def test_unsafe_client_run_ids_get_422_saying_what_is_allowed(client: TestClient, run_id: str) -> None:
    body = assert_problem(
        client.post("/api/v1/runs", json={**CONTRACT_REQUEST, "run_id": run_id}), 422, "VALIDATION_ERROR"
    )
    assert "letters, digits" in body["message"]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"question": ""},
        {"question": "   "},
        {"question": "q", "enable_sql": "yes"},
        {"question": "q", "unknown": 1},
        {"question": "q", "timeout_s": -1},
    ],
)
def test_invalid_payloads_get_422(client: TestClient, payload: dict[str, Any]) -> None:
    assert_problem(client.post("/api/v1/runs", json=payload), 422, "VALIDATION_ERROR")


def test_malformed_json_gets_422(client: TestClient) -> None:
    response = client.post("/api/v1/runs", content=b"{", headers={"content-type": "application/json"})
    assert_problem(response, 422, "VALIDATION_ERROR")


def test_oversized_body_gets_413_with_the_error_body(settings: Settings) -> None:
    small = settings.model_copy(update={"max_body_bytes": 2048})
    with running_app(small, instant_pipeline) as client:
        big = {**CONTRACT_REQUEST, "question": "x" * 3000}
        assert_problem(client.post("/api/v1/runs", json=big), 413, "PAYLOAD_TOO_LARGE")

        def chunks():  # type: ignore[no-untyped-def]
            yield b'{"question": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}'

        streamed = client.post("/api/v1/runs", content=chunks(), headers={"content-type": "application/json"})
        assert_problem(streamed, 413, "PAYLOAD_TOO_LARGE")
        assert [p for p in small.output_dir.iterdir() if not p.name.startswith(".")] == []


def test_unknown_run_gets_404_on_every_endpoint(client: TestClient) -> None:
    for endpoint in ("status", "output", "context"):
        assert_problem(client.get(f"/api/v1/runs/never-made/{endpoint}"), 404, "RUN_NOT_FOUND")
    assert_problem(client.get("/api/v1/runs/%2e%2e/status"), 404, "RUN_NOT_FOUND")
    assert_problem(client.get("/api/v1/runs/..%2F..%2Fetc/status"), 404, "NOT_FOUND")


def test_unknown_route_and_method_use_the_error_body(client: TestClient) -> None:
    assert_problem(client.get("/api/v2/nothing"), 404, "NOT_FOUND")
    assert_problem(client.put("/api/v1/runs"), 405, "METHOD_NOT_ALLOWED")


def test_missing_artifact_of_a_completed_run_gets_500_artifact_missing(settings: Settings) -> None:
    with running_app(settings, instant_pipeline) as client:
        run_id = start(client)["run_id"]
        wait_for_status(client, run_id, "completed")
        (settings.output_dir / run_id / "final.md").unlink()
        (settings.output_dir / run_id / "context_bundle.json").write_text("{broken")
        assert_problem(client.get(f"/api/v1/runs/{run_id}/output"), 500, "ARTIFACT_MISSING")
        assert_problem(client.get(f"/api/v1/runs/{run_id}/context"), 500, "ARTIFACT_MISSING")


def test_corrupt_state_gives_a_500_without_a_traceback(settings: Settings) -> None:
    with running_app(settings, instant_pipeline) as client:
        run_id = start(client)["run_id"]
        wait_for_status(client, run_id, "completed")
        (settings.output_dir / run_id / "api_state.json").write_text("{half a fi")
        assert_problem(client.get(f"/api/v1/runs/{run_id}/status"), 500, "RUN_STATE_UNREADABLE")


def test_unexpected_errors_get_a_generic_500_without_a_traceback(settings: Settings) -> None:
    app = create_app(settings, instant_pipeline)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        body = assert_problem(client.get("/boom"), 500, "INTERNAL_ERROR")
    assert "secret internals" not in body["message"]


@pytest.mark.parametrize(
    ("markdown_path", "reason"),
    [
        ("/etc", "absolute"),
        ("../outside", ".."),
        ("documents/../..", ".."),
        ("missing-folder", "does not exist"),
        ("escape", "outside the documents root"),
        ("documents/note.md", "not a folder"),
    ],
)
def test_markdown_path_outside_or_missing_is_rejected_at_post_time(
    settings: Settings, client: TestClient, markdown_path: str, reason: str
) -> None:
    (settings.documents_root / "escape").symlink_to("/etc")
    body = assert_problem(
        client.post("/api/v1/runs", json={**CONTRACT_REQUEST, "markdown_path": markdown_path}),
        422,
        "VALIDATION_ERROR",
    )
    assert reason in body["message"]


def test_openapi_documents_every_endpoint_with_models_and_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths["/api/v1/runs"]["post"]["responses"]) >= {"202", "409", "413", "422", "429"}
    for endpoint in ("status", "output", "context"):
        responses = paths[f"/api/v1/runs/{{run_id}}/{endpoint}"]["get"]["responses"]
        assert "404" in responses and "200" in responses
        assert responses["200"]["content"]["application/json"]["schema"]["$ref"]
    assert "Problem" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 200


def test_openapi_documents_the_new_endpoints_headers_and_errors(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        ("/api/v1/runs", "get"),
        ("/api/v1/runs/{run_id}", "get"),
        ("/api/v1/runs/{run_id}", "delete"),
        ("/api/v1/runs/{run_id}/cancel", "post"),
        ("/api/v1/runs/{run_id}/events", "get"),
        ("/api/v1/runs/{run_id}/output/html", "get"),
        ("/api/v1/service-info", "get"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
    }
    assert expected <= {(path, method) for path, methods in paths.items() for method in methods}
    post = paths["/api/v1/runs"]["post"]
    assert "Location" in post["responses"]["202"]["headers"]
    assert "Retry-After" in post["responses"]["429"]["headers"]
    assert "idempotency-key" in {p["name"].lower() for p in post["parameters"]}
    status = paths["/api/v1/runs/{run_id}/status"]["get"]
    assert {"ETag", "Retry-After"} <= set(status["responses"]["200"]["headers"])
    assert "If-None-Match" in {p["name"] for p in status["parameters"]}
    assert "last-event-id" in {
        p["name"].lower() for p in paths["/api/v1/runs/{run_id}/events"]["get"]["parameters"]
    }
    assert {"404", "409", "410"} <= set(paths["/api/v1/runs/{run_id}/cancel"]["post"]["responses"])
    assert {"204", "409", "410"} <= set(paths["/api/v1/runs/{run_id}"]["delete"]["responses"])
