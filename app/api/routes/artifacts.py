"""The finished run's artifacts: its answer (`final.md`, with its versions and edits) and its
evidence (`context_bundle.json`)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response, status

from app.api.auth import caller
from app.api.edit_models import (
    OutputEditRequest,
    OutputPreviewRequest,
    OutputPreviewResponse,
    OutputVersionsResponse,
)
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
from app.runs.answer_versions import Answer, evidence_labels
from app.runs.run_artifacts import parse_context, read_artifact
from app.runs.run_service import API_PREFIX
from app.runs.run_store import CONTEXT_FILE, RunStore

router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["artifacts"])

ARTIFACT_ERRORS: Responses = {
    200: {"headers": {"ETag": ETAG}},
    **NOT_FOUND,
    304: {"description": "Unchanged since the ETag in If-None-Match.", "headers": {"ETag": ETAG}},
    409: problem_doc("The run is queued or running, or ended without this artifact."),
    500: problem_doc("The state says the artifact exists, but its file is missing or unreadable."),
}


def _respond(request: Request, etag: str, payload: dict[str, Any]) -> Response:
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(orjson.dumps(payload), media_type="application/json", headers=headers)


PARAMETERS = {"parameters": [IF_NONE_MATCH]}


def _store(request: Request, run_id: str) -> RunStore:
    """The store, once the caller is known to see the run (another key's run is unknown)."""
    runs = service(request)
    runs.view(run_id, caller(request))
    return runs.store


VERSION = Query(ge=1, description="An earlier version of the answer (1 is the pipeline's).")
VERSION_ERRORS: Responses = {
    **ARTIFACT_ERRORS,
    404: problem_doc("Unknown run, or no such version (VERSION_NOT_FOUND)."),
    422: problem_doc("version is not a positive number."),
}


def _answer(request: Request, run_id: str, version: int | None) -> Answer:
    runs = service(request)
    runs.view(run_id, caller(request))  # another key's run is unknown
    return runs.answers.read(run_id, version)


def _evidence(request: Request, answer: Answer) -> set[str] | None:
    """The labels an edited answer may cite (the bundle is read only once people have edited)."""
    if answer.latest == 1 or not answer.state.has_context:
        return None
    return evidence_labels(
        parse_context(read_artifact(service(request).store, answer.state.run_id, CONTEXT_FILE))
    )


def _output(answer: Answer, evidence: set[str] | None = None) -> dict[str, Any]:
    return {
        "run_id": answer.state.run_id,
        "status": answer.state.status.value,
        "content": answer.text,
        "final_output_path": answer.display_path,
        "version": answer.version,
        "has_user_edits": answer.latest > 1,
        "edited_sections": answer.edited_sections,
        "uncited_sentences": answer.uncited(),
        "unknown_citations": answer.unknown_citations(evidence),
        "sections": answer.sections(),
    }


@router.get(
    "/{run_id}/output", response_model=RunOutputResponse, responses=VERSION_ERRORS, openapi_extra=PARAMETERS
)
def get_run_output(run_id: str, request: Request, version: Annotated[int | None, VERSION] = None) -> Response:
    """The final answer (markdown) of a finished run: its latest version, or the one asked for."""
    answer = _answer(request, run_id, version)
    return _respond(request, answer.etag, _output(answer, _evidence(request, answer)))


@router.patch(
    "/{run_id}/output",
    response_model=RunOutputResponse,
    responses={
        200: {"headers": {"ETag": ETAG}},
        **NOT_FOUND,
        409: problem_doc(
            "The edit was made on an older version (VERSION_CONFLICT), or the run has no answer yet."
        ),
        422: problem_doc("Invalid edit, or no such section (SECTION_NOT_FOUND lists the sections)."),
        428: problem_doc("Neither If-Match nor base_version names the version edited."),
        413: problem_doc("Request body too large."),
    },
)
def edit_run_output(
    run_id: str,
    request: Request,
    body: OutputEditRequest,
    if_match: Annotated[
        str | None, Header(description="The ETag of the version the edit was made on.")
    ] = None,
) -> Response:
    """Replace one section of the answer as a new version; every version is kept.  A stale
    If-Match (or base_version) changes nothing and answers 409."""
    runs, key = service(request), caller(request)
    runs.view(run_id, key)
    answer = runs.answers.edit(
        run_id, body.section, body.content, if_match, body.base_version, key.id if key else None
    )
    return _respond(request, answer.etag, _output(answer, _evidence(request, answer)))


@router.post(
    "/{run_id}/output/preview",
    response_model=OutputPreviewResponse,
    responses={
        **NOT_FOUND,
        409: problem_doc("The run has no answer yet (or ended without one)."),
        413: problem_doc("Request body too large."),
        422: problem_doc("Invalid edit, or no such section (SECTION_NOT_FOUND lists the sections)."),
    },
)
def preview_run_output(run_id: str, request: Request, body: OutputPreviewRequest) -> dict[str, Any]:
    """How the answer would read with one section replaced, rendered as the answer is (raw HTML
    never passes), and which of the new sentences cite nothing.  Nothing is saved."""
    runs = service(request)
    runs.view(run_id, caller(request))
    markdown, uncited = runs.answers.preview(run_id, body.section, body.content)
    return {"run_id": run_id, "html": answer_html(markdown), "uncited_sentences": uncited}


@router.get("/{run_id}/output/versions", response_model=OutputVersionsResponse, responses=ARTIFACT_ERRORS)
def list_output_versions(run_id: str, request: Request) -> dict[str, Any]:
    """Every version of the answer, oldest first: when, by which key, and which sections changed."""
    runs = service(request)
    runs.view(run_id, caller(request))
    versions = runs.answers.listing(run_id)
    return {"run_id": run_id, "latest_version": versions[-1]["version"], "versions": versions}


@router.get(
    "/{run_id}/output/html",
    response_model=RunOutputHtmlResponse,
    responses=VERSION_ERRORS,
    openapi_extra=PARAMETERS,
)
def get_run_output_html(
    run_id: str, request: Request, version: Annotated[int | None, VERSION] = None
) -> Response:
    """The answer rendered as HTML (raw HTML in documents is never passed through)."""
    answer = _answer(request, run_id, version)
    payload = {
        "run_id": run_id,
        "status": answer.state.status.value,
        "html": answer_html(answer.text),
        "version": answer.version,
    }
    return _respond(request, answer.etag, payload)


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
    return _respond(request, artifact.etag, payload)
