"""Following a run: the status endpoint every open browser tab polls, and its live event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status
from sse_starlette import EventSourceResponse

from app.api.auth import caller
from app.api.models import RunStatusResponse
from app.api.routes.direct_route import DirectRoute
from app.api.routes.responses import (
    ETAG,
    IF_NONE_MATCH,
    NOT_FOUND,
    RETRY_AFTER,
    etag_matches,
    problem_doc,
    service,
)
from app.runs.run_events import end_event_id, run_events
from app.runs.run_service import API_PREFIX

EVENTS_DOC = """Server-Sent Events until the run ends. Each event's `id` is its position in the
run's log (reconnect with `Last-Event-ID` to resume after it); the first event carries `retry:`.

- `status`, data `{"at", "event": "status", "status", "finish_reason"?, "error"?}`: the run
  moved (queued, running, then its final status).
- `progress`, data `{"at", "event": "progress", "stage", "stage_index", "stage_count",
  "message", "fraction", "seq"}`: the same numbers as the status payload's `progress`.
- `cancel_requested`, data `{"at", "event": "cancel_requested"}`: a cancel was asked.
- `attempt`, data `{"at", "event": "attempt", "attempt"}`: the run is being run again after
  its executor died.
- `end`, data: the final status payload (as `GET .../status`). Its id is one past the last
  event; a reconnect with that id answers 204.

Comment lines (`: ping`) keep the connection alive."""

# Served without per-request dependency solving (see DirectRoute): this is the hot path.
status_router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["runs"], route_class=DirectRoute)
router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["runs"])


@status_router.get(
    "/{run_id}/status",
    response_model=RunStatusResponse,
    responses={
        200: {"headers": {"ETag": ETAG, "Retry-After": RETRY_AFTER}},
        304: {"description": "Unchanged since the ETag in If-None-Match.", "headers": {"ETag": ETAG}},
        **NOT_FOUND,
    },
    openapi_extra={"parameters": [IF_NONE_MATCH]},
)
async def get_run_status(request: Request, run_id: str) -> Response:
    """The polling endpoint: cheap, cached against the state file, with ETag and Retry-After."""
    runs = service(request)
    view = runs.view(run_id, caller(request))
    headers = {"ETag": view.etag, "Cache-Control": "no-cache"}
    if not view.state.status.is_terminal:
        headers["Retry-After"] = str(runs.settings.poll_interval_s)
    if etag_matches(request.headers.get("if-none-match"), view.etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(view.body, media_type="application/json", headers=headers)


@router.get(
    "/{run_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": EVENTS_DOC,
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        204: {"description": "Last-Event-ID is at or past the `end` of a finished run: nothing more."},
        **NOT_FOUND,
        422: problem_doc("Last-Event-ID is not a number."),
    },
)
async def stream_run_events(
    run_id: str,
    request: Request,
    last_event_id: Annotated[int, Header(ge=0, description="Resume after this event id.")] = 0,
) -> Response:
    """Live events of a run until it finishes; any server process can serve any run."""
    runs = service(request)
    runs.view(run_id, caller(request))  # 404 / 410 before the stream starts
    if last_event_id:
        end = await end_event_id(runs.store, run_id)
        if end is not None and last_event_id >= end:
            # The client saw the end already: 204 tells an EventSource to stop reconnecting.
            return Response(status_code=status.HTTP_204_NO_CONTENT)
    metrics = request.app.state.metrics

    async def events() -> AsyncIterator[dict[str, Any]]:
        metrics.sse_streams.inc()
        try:
            async for event in run_events(runs.store, run_id, last_event_id):
                yield event
        finally:
            metrics.sse_streams.dec()

    return EventSourceResponse(
        events(), ping=runs.settings.sse_ping_interval_s, headers={"Cache-Control": "no-cache"}
    )
