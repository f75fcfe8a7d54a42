"""HTTP routes of the run lifecycle: start, list, inspect, cancel and delete runs."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Body, Header, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from app.api.auth import caller
from app.api.models import (
    RunCreatedResponse,
    RunCreateRequest,
    RunDetailResponse,
    RunListResponse,
    RunRegenerateRequest,
    RunStatusResponse,
    StatusValue,
)
from app.api.routes.direct_route import DirectRoute
from app.api.routes.responses import LOCATION, NOT_FOUND, RETRY_AFTER, problem_doc, service
from app.runs.run_service import API_PREFIX, run_links
from app.runs.run_state import RunStatus
from app.runs.webhook_targets import check_url, resolve

router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["runs"])
# Creation skips FastAPI's per-request dependency solving (see DirectRoute): it parses and
# validates its body itself, with the same model and the same 422s.
create_router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["runs"], route_class=DirectRoute)
CREATE_BODY = Body(...)
REGENERATE_BODY = Body(...)
Model = TypeVar("Model", bound=BaseModel)


def _parsed(model: type[Model], raw: bytes) -> Model:
    """The body as the model, or the same 422 FastAPI would give (also for a body not JSON)."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None


IDEMPOTENCY_KEY = Header(
    None, max_length=255, description="Repeat-safe creation: same key and body, same run."
)


@create_router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunCreatedResponse,
    responses={
        200: {
            "model": RunCreatedResponse,
            "description": "Repeat of an Idempotency-Key request: the same run.",
            "headers": {"Location": LOCATION},
        },
        202: {"headers": {"Location": LOCATION}},
        409: problem_doc(
            "run_id already exists (RUN_ID_CONFLICT), also when an Idempotency-Key "
            "names a run it did not create."
        ),
        410: problem_doc("run_id belonged to a deleted run; run ids are never reused."),
        413: problem_doc("Request body too large."),
        422: problem_doc("Invalid request, or an Idempotency-Key reused with a different body."),
        429: {
            **problem_doc("Too many queued runs; retry after Retry-After seconds."),
            "headers": {"Retry-After": RETRY_AFTER},
        },
        500: problem_doc("Unexpected server error; no run was created."),
        507: {
            **problem_doc("The output disk is full (INSUFFICIENT_STORAGE); no run was created."),
            "headers": {"Retry-After": RETRY_AFTER},
        },
    },
)
async def create_run(
    request: Request,
    body: RunCreateRequest = CREATE_BODY,
    idempotency_key: str | None = IDEMPOTENCY_KEY,
) -> Response:
    """Start a run; answers at once with its id and URLs while the pipeline works in the background."""
    # `body` and `idempotency_key` document the operation; DirectRoute passes the request only.
    accepted_body = _parsed(RunCreateRequest, await request.body())
    key = request.headers.get("idempotency-key")
    runs, key_of_caller = service(request), caller(request)
    options = accepted_body.model_dump()
    webhook_url = options.pop("webhook_url")
    if webhook_url is not None:
        runs.webhook_allowed(key_of_caller)
        check_url(webhook_url, runs.settings.webhook_allow_hosts)
        await run_in_threadpool(resolve, webhook_url, runs.settings.webhook_allow_hosts)
        options["webhook_url"] = webhook_url
    if runs.quotas.limits_runs(key_of_caller):  # waits on the key's lock: off the event loop
        accepted = await run_in_threadpool(runs.accept, options, key, key_of_caller)
    else:
        # The store's writer thread validates and persists it with whatever else is being
        # written (group commit); the event loop only awaits the outcome, never a disk.
        accepted = await asyncio.wrap_future(runs.submit_accept(options, key, key_of_caller))
    links = run_links(accepted.state.run_id)
    payload = {"run_id": accepted.state.run_id, "status": accepted.state.status.value, **links}
    return Response(
        orjson.dumps(payload),
        status_code=status.HTTP_202_ACCEPTED if accepted.created else status.HTTP_200_OK,
        media_type="application/json",
        headers={"Location": links["status_url"]},
    )


@router.get("", response_model=RunListResponse, responses={422: problem_doc("Invalid filter or cursor.")})
def list_runs(
    request: Request,
    status_filter: Annotated[
        StatusValue | None, Query(alias="status", description="Only runs in this status.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Runs per page (1-200).")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=400, description="next_cursor of the previous page.")
    ] = None,
) -> Response:
    """Runs newest first, by pages; each item is the status payload plus the question."""
    status = RunStatus(status_filter) if status_filter else None
    page = service(request).list_runs(status, limit, cursor, caller(request))
    items = (_with_question(view.body, view.state.request) for view in page.views)
    body = b'{"runs":[' + b",".join(items) + b'],"next_cursor":'
    body += orjson.dumps(page.next_cursor) + b',"damaged_runs":' + str(page.damaged).encode() + b"}"
    return Response(body, media_type="application/json")


def _with_question(status_body: bytes, request: dict[str, Any] | None) -> bytes:
    """A listing item: the status payload (serialised once, in the status cache) plus the
    question, so that a list can label runs by what they ask."""
    question = request.get("question") if request else None
    return status_body[:-1] + b',"question":' + orjson.dumps(question) + b"}"


@router.get("/{run_id}", response_model=RunDetailResponse, responses=NOT_FOUND)
def get_run(run_id: str, request: Request) -> dict[str, Any]:
    """The status payload plus the request options and every URL of the run."""
    return service(request).detail(run_id, caller(request))


@create_router.post(
    "/{run_id}/regenerate",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunCreatedResponse,
    responses={
        202: {"headers": {"Location": LOCATION}},
        **NOT_FOUND,
        409: problem_doc(
            "The run is not finished (RUN_NOT_FINISHED), its answer has edits and force is not true "
            "(EDITS_WOULD_BE_LOST, with edited_sections), or run_id is taken."
        ),
        422: problem_doc("Invalid feedback or run_id."),
        429: {
            **problem_doc("Too many queued runs, or a quota of the API key; retry after Retry-After."),
            "headers": {"Retry-After": RETRY_AFTER},
        },
    },
)
async def regenerate_run(
    request: Request, run_id: str, body: RunRegenerateRequest = REGENERATE_BODY
) -> Response:
    """Answer a finished run's question again, with feedback: a new run, linked both ways
    (`parent_run_id` on the new run, `children` in this run's detail)."""
    # Parsed here, as for POST /runs (DirectRoute): a body that is not JSON is a 422 too.
    asked = _parsed(RunRegenerateRequest, await request.body())
    runs, key_of_caller = service(request), caller(request)
    options = await run_in_threadpool(
        runs.regeneration, run_id, asked.feedback, asked.run_id, key_of_caller, asked.force
    )
    accepted = await run_in_threadpool(runs.accept, options, None, key_of_caller, run_id)
    links = run_links(accepted.state.run_id)
    payload = {"run_id": accepted.state.run_id, "status": accepted.state.status.value, **links}
    return Response(
        orjson.dumps(payload),
        status_code=status.HTTP_202_ACCEPTED,
        media_type="application/json",
        headers={"Location": links["status_url"]},
    )


@router.post(
    "/{run_id}/cancel",
    response_model=RunStatusResponse,
    responses={
        202: {
            "model": RunStatusResponse,
            "description": "Cancel requested; the run stops at its next check.",
        },
        **NOT_FOUND,
        409: problem_doc("The run already ended otherwise."),
    },
)
def cancel_run(run_id: str, request: Request, response: Response) -> dict[str, Any]:
    """Stop a queued run now, or ask a running one to stop; repeating it answers the current status."""
    state = service(request).cancel(run_id, caller(request))
    if state.status is RunStatus.RUNNING:
        response.status_code = status.HTTP_202_ACCEPTED
    return state.public_status()


@router.delete(
    "/{run_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, 409: problem_doc("The run is queued or running: cancel it first.")},
)
def delete_run(run_id: str, request: Request) -> Response:
    """Remove a finished run's files; later requests for it answer 410 Gone."""
    service(request).delete(run_id, caller(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
