"""The WebSocket mirror of a run's live events: the same events as the SSE stream (same ids,
types and JSON data, read by the same `run_events`), for clients that prefer a socket.

`WS /api/v1/runs/{run_id}/ws?last_event_id=N` sends each event as a JSON text frame
`{"id", "event", "data"}` and closes normally (1000) after `end`.  An unknown run (or another
key's) closes with 4404, a deleted one with 4410; with keys on, a missing key closes with 4401
and a wrong one with 4403 (see `app.api.auth`).
"""

from __future__ import annotations

from typing import Any

import anyio
import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from app.api.auth import SCOPE_KEY, SUBPROTOCOL
from app.runs.errors import RunGoneError, RunNotFoundError, RunStateUnreadableError
from app.runs.run_events import end_event_id, run_events
from app.runs.run_service import API_PREFIX, RunService

router = APIRouter(prefix=f"{API_PREFIX}/runs")
CLOSE_UNKNOWN = 4404
CLOSE_GONE = 4410
CLOSE_DAMAGED = 4500


@router.websocket("/{run_id}/ws")
async def mirror_run_events(websocket: WebSocket, run_id: str, last_event_id: int = 0) -> None:
    runs: RunService = websocket.app.state.runs
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    try:
        await run_in_threadpool(runs.view, run_id, websocket.scope.get(SCOPE_KEY))
    except RunGoneError as gone:
        await websocket.close(CLOSE_GONE, gone.message[:120])
        return
    except (RunNotFoundError, RunStateUnreadableError) as unknown:
        code = CLOSE_DAMAGED if isinstance(unknown, RunStateUnreadableError) else CLOSE_UNKNOWN
        await websocket.close(code, unknown.message[:120])
        return
    end = await end_event_id(runs.store, run_id) if last_event_id else None
    connected = True
    if end is None or last_event_id < end:  # else the client saw the end already: nothing more
        streams = websocket.app.state.metrics.ws_streams
        streams.inc()
        try:
            connected = await _forward(websocket, runs, run_id, max(0, last_event_id))
        finally:
            streams.dec()
    if connected:
        await websocket.close(1000)


async def _forward(websocket: WebSocket, runs: RunService, run_id: str, last_event_id: int) -> bool:
    """Events until the run ends, or until the client goes away; whether it is still there."""
    gone = anyio.Event()
    async with anyio.create_task_group() as group:

        async def events() -> None:
            try:
                async for event in run_events(runs.store, run_id, last_event_id):
                    await websocket.send_text(orjson.dumps(_frame(event)).decode())
            except WebSocketDisconnect:
                gone.set()
            group.cancel_scope.cancel()

        async def hang_up() -> None:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass  # a client has nothing to say on this socket
            gone.set()
            group.cancel_scope.cancel()

        group.start_soon(events)
        group.start_soon(hang_up)
    return not gone.is_set()


def _frame(event: dict[str, Any]) -> dict[str, Any]:
    return {"id": event["id"], "event": event["event"], "data": orjson.loads(event["data"])}
