"""The finished run's artifacts: its answer (`final.md`) and its evidence (`context_bundle.json`)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response, status

from app.api.auth import caller
from app.api.markdown_html import answer_html
from app.api.models import RunContextResponse, RunOutputHtmlResponse, RunOutputResponse
from app.api.routes.responses import (
    ETAG,
    IF_NONE_MATCH,
    NOT_FOUND,
    Responses,
    etag_matches,
    problem_doc,
    service,
)
from app.runs.run_artifacts import Artifact, parse_context, read_artifact
from app.runs.run_service import API_PREFIX
from app.runs.run_store import CONTEXT_FILE, FINAL_FILE, RunStore

router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["artifacts"])

ARTIFACT_ERRORS: Responses = {
    200: {"headers": {"ETag": ETAG}},
    **NOT_FOUND,
    304: {"description": "Unchanged since the ETag in If-None-Match.", "headers": {"ETag": ETAG}},
    409: problem_doc("The run is queued or running, or ended without this artifact."),
    500: problem_doc("The state says the artifact exists, but its file is missing or unreadable."),
}


def _respond(request: Request, artifact: Artifact, payload: dict[str, Any]) -> Response:
    headers = {"ETag": artifact.etag, "Cache-Control": "no-cache"}
    if etag_matches(request.headers.get("if-none-match"), artifact.etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(orjson.dumps(payload), media_type="application/json", headers=headers)


PARAMETERS = {"parameters": [IF_NONE_MATCH]}


def _store(request: Request, run_id: str) -> RunStore:
    """The store, once the caller is known to see the run (another key's run is unknown)."""
    runs = service(request)
    runs.view(run_id, caller(request))
    return runs.store


@router.get(
    "/{run_id}/output", response_model=RunOutputResponse, responses=ARTIFACT_ERRORS, openapi_extra=PARAMETERS
)
def get_run_output(run_id: str, request: Request) -> Response:
    """The final answer (markdown) of a finished run."""
    artifact = read_artifact(_store(request, run_id), run_id, FINAL_FILE)
    payload = {
        "run_id": run_id,
        "status": artifact.state.status.value,
        "content": artifact.content.decode("utf-8", errors="replace"),
        "final_output_path": artifact.display_path,
    }
    return _respond(request, artifact, payload)


@router.get(
    "/{run_id}/output/html",
    response_model=RunOutputHtmlResponse,
    responses=ARTIFACT_ERRORS,
    openapi_extra=PARAMETERS,
)
def get_run_output_html(run_id: str, request: Request) -> Response:
    """The final answer rendered as HTML (raw HTML in documents is never passed through)."""
    artifact = read_artifact(_store(request, run_id), run_id, FINAL_FILE)
    markdown = artifact.content.decode("utf-8", errors="replace")
    payload = {"run_id": run_id, "status": artifact.state.status.value, "html": answer_html(markdown)}
    return _respond(request, artifact, payload)


@router.get(
    "/{run_id}/context",
    response_model=RunContextResponse,
    responses=ARTIFACT_ERRORS,
    openapi_extra=PARAMETERS,
)
def get_run_context(run_id: str, request: Request) -> Response:
    """The evidence (context bundle) of a finished run."""
    artifact = read_artifact(_store(request, run_id), run_id, CONTEXT_FILE)
    payload = {
        "run_id": run_id,
        "status": artifact.state.status.value,
        "context_bundle": parse_context(artifact),
        "context_bundle_path": artifact.display_path,
    }
    return _respond(request, artifact, payload)
