"""HTTP routes of the run lifecycle: translate requests to run-service calls, nothing more."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request, Response, status

from app.api.models import (
    Problem,
    RunContextResponse,
    RunCreatedResponse,
    RunCreateRequest,
    RunOutputResponse,
    RunStatusResponse,
)
from app.api.routes.direct_route import DirectRoute
from app.api.services.run_service import API_PREFIX, RunService, run_links
from app.api.services.run_store import CONTEXT_FILE, FINAL_FILE, Artifact

router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["runs"])
# The polling endpoints, served without per-request dependency solving (see DirectRoute).
polling_router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["runs"], route_class=DirectRoute)


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


Responses = dict[int | str, dict[str, Any]]

NOT_FOUND: Responses = {404: _problem("Unknown run."), 410: _problem("The run was deleted.")}
ARTIFACT_ERRORS: Responses = {
    **NOT_FOUND,
    409: _problem("The run is queued or running, or ended without this artifact."),
    500: _problem("The state says the artifact exists, but its file is missing or unreadable."),
}


def service(request: Request) -> RunService:
    runs: RunService = request.app.state.runs
    return runs


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunCreatedResponse,
    responses={
        200: {"model": RunCreatedResponse, "description": "Repeat of an Idempotency-Key request."},
        409: _problem("run_id already exists."),
        413: _problem("Request body too large."),
        422: _problem("Invalid request."),
        429: _problem("Too many queued runs; see Retry-After."),
    },
)
def create_run(
    body: RunCreateRequest,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> dict[str, Any]:
    """Start a run; answers at once with its id and URLs while the pipeline works in background."""
    accepted = service(request).accept(body.model_dump(), idempotency_key)
    links = run_links(accepted.state.run_id)
    response.headers["Location"] = links["status_url"]
    if not accepted.created:
        response.status_code = status.HTTP_200_OK
    return {"run_id": accepted.state.run_id, "status": accepted.state.status.value, **links}


@polling_router.get(
    "/{run_id}/status",
    response_model=RunStatusResponse,
    responses={**NOT_FOUND, 304: {"description": "Unchanged since the ETag in If-None-Match."}},
)
async def get_run_status(request: Request, run_id: str) -> Response:
    """The polling endpoint: cheap, cached against the state file, with ETag and Retry-After."""
    runs = service(request)
    view = runs.store.status_view(run_id)
    headers = {"ETag": view.etag, "Cache-Control": "no-cache"}
    if not view.state.status.is_terminal:
        headers["Retry-After"] = str(runs.settings.poll_interval_s)
    if request.headers.get("if-none-match") == view.etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(view.body, media_type="application/json", headers=headers)


def _artifact_response(request: Request, artifact: Artifact, payload: dict[str, Any]) -> Response:
    headers = {"ETag": artifact.etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == artifact.etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(orjson.dumps(payload), media_type="application/json", headers=headers)


@router.get("/{run_id}/output", response_model=RunOutputResponse, responses=ARTIFACT_ERRORS)
def get_run_output(run_id: str, request: Request) -> Response:
    """The final answer (markdown) of a finished run."""
    artifact = service(request).store.read_artifact(run_id, FINAL_FILE)
    payload = {
        "run_id": run_id,
        "status": artifact.state.status.value,
        "content": artifact.content.decode("utf-8", errors="replace"),
        "final_output_path": artifact.display_path,
    }
    return _artifact_response(request, artifact, payload)


@router.get("/{run_id}/context", response_model=RunContextResponse, responses=ARTIFACT_ERRORS)
def get_run_context(run_id: str, request: Request) -> Response:
    """The evidence (context bundle) of a finished run."""
    runs = service(request)
    artifact = runs.store.read_artifact(run_id, CONTEXT_FILE)
    bundle = runs.store.parse_context(artifact)
    payload = {
        "run_id": run_id,
        "status": artifact.state.status.value,
        "context_bundle": bundle,
        "context_bundle_path": artifact.display_path,
    }
    return _artifact_response(request, artifact, payload)
