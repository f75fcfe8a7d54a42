"""Apps that break the v1 contract on purpose, to prove the smoke gate notices."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import FastAPI, Response

STARTED = time.monotonic()


def _done() -> bool:
    return time.monotonic() - STARTED > 1.0


def _status(run_id: str) -> dict[str, Any]:
    done = _done()
    return {
        "run_id": run_id,
        "status": "completed" if done else "running",
        "started_at": "2026-01-01T00:00:00Z",
        "finish_reason": "answered" if done else None,
        "error": None,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:01Z",
        "expires_at": None,
        "cancel_requested_at": None,
        "gaps": [],
        "progress": None,
        # completed_at is missing: the contract requires it
    }


missing_field = FastAPI()


@missing_field.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@missing_field.post("/api/v1/runs", status_code=202)
def create(response: Response) -> dict[str, str]:
    response.headers["Location"] = "/api/v1/runs/broken/status"
    base = "/api/v1/runs/broken"
    return {
        "run_id": "broken",
        "status": "queued",
        "status_url": f"{base}/status",
        "output_url": f"{base}/output",
        "context_url": f"{base}/context",
    }


@missing_field.get("/api/v1/runs/{run_id}/status")
def status(run_id: str) -> dict[str, Any]:
    return _status(run_id)


def _copies_runs_and_health(r: object) -> bool:
    return str(getattr(r, "path", "")).endswith(("runs", "health"))


early_output = FastAPI()
early_output.router.routes.extend(r for r in missing_field.router.routes if _copies_runs_and_health(r))


def running_status(run_id: str) -> dict[str, Any]:
    """A contract-correct status of a run that never finishes."""
    return {**_status(run_id), "status": "running", "completed_at": None, "finish_reason": None}


early_output.get("/api/v1/runs/{run_id}/status")(running_status)


@early_output.get("/api/v1/runs/{run_id}/output")
def output_too_early(run_id: str) -> dict[str, str]:
    return {"run_id": run_id, "status": "running", "content": "", "final_output_path": "x"}


never_finishes = FastAPI()
never_finishes.router.routes.extend(r for r in missing_field.router.routes if _copies_runs_and_health(r))


never_finishes.get("/api/v1/runs/{run_id}/status")(running_status)


@never_finishes.get("/api/v1/runs/{run_id}/{artifact}")
def not_finished(run_id: str, artifact: str, response: Response) -> dict[str, str]:
    response.status_code = 409
    return {"code": "RUN_NOT_FINISHED", "message": "still running", "run_status": "running"}


undocumented = FastAPI()
undocumented.router.routes.extend(r for r in missing_field.router.routes if _copies_runs_and_health(r))


@undocumented.get("/api/v1/runs/{run_id}/status")
def keeps_the_contract(run_id: str) -> dict[str, Any]:
    done = _done()
    return {**_status(run_id), "completed_at": "2026-01-01T00:00:02Z" if done else None}


@undocumented.get("/api/v1/runs/{run_id}/{artifact}", responses={200: {"description": "only 200"}})
def answers_what_its_document_does_not_say(run_id: str, artifact: str) -> Response:
    """Right by the contract, but its 409 is in no document: the gate must notice."""
    if not _done():
        body = {"code": "RUN_NOT_FINISHED", "message": "still running", "run_status": "running"}
        return Response(orjson.dumps(body), status_code=409, media_type="application/problem+json")
    path = f"output/{run_id}/" + ("final.md" if artifact == "output" else "context_bundle.json")
    payload: dict[str, Any] = {"run_id": run_id, "status": "completed"}
    if artifact == "output":
        payload |= {"content": "# answer", "final_output_path": path}
    else:
        payload |= {"context_bundle": {}, "context_bundle_path": path}
    return Response(orjson.dumps(payload), media_type="application/json")
