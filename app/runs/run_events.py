"""Live events of a run, read from its own `run.json`, so any server process can serve any run.

Each event's id is its position in the run's log, so a client that reconnects with
`Last-Event-ID` resumes exactly after the last event it saw.  The stream ends with an `end`
event carrying the final status once the run is terminal; it has the next id, so a browser's
EventSource that reconnects after it is told (204) that nothing more will come.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
import orjson

from app.runs.errors import RunGoneError, RunNotFoundError, RunStateUnreadableError
from app.runs.run_log import RUN_LOG_FILE, catch_up, read_run_log
from app.runs.run_state import RunStatus
from app.runs.run_store import RunStore

POLL_INTERVAL_S = 0.25
RETRY_MS = 2000  # how long a browser waits before reconnecting a dropped stream
# Which process ran a run (host name, pid) stays in run.json for operators, out of client streams.
PRIVATE_FIELDS = ("owner", "previous_owner")


def numbered(log: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """Events with their absolute ids; the log keeps the first event and drops the oldest after it."""
    dropped = int(log.get("dropped_events", 0))
    events = log.get("events", [])
    return [(1 if i == 0 else i + 1 + dropped, event) for i, event in enumerate(events)]


async def end_event_id(store: RunStore, run_id: str) -> int | None:
    """The id of a finished run's `end` event (one past its last logged event); None while the
    run is still going."""
    view = store.status_view(run_id)
    if not view.state.status.is_terminal:
        return None
    log = await anyio.to_thread.run_sync(
        read_run_log, store.run_dir(run_id), view.state.created_at, store.pipeline_name
    )
    catch_up(log, view.state)
    events = numbered(log)
    return (events[-1][0] if events else 0) + 1


async def run_events(store: RunStore, run_id: str, last_event_id: int = 0) -> AsyncIterator[dict[str, Any]]:
    sent = last_event_id
    last_logged = 0
    retry: dict[str, Any] = {"retry": RETRY_MS}  # sent once, with the first event
    log_key: tuple[int, int, int, RunStatus] | None = None
    run_dir = store.run_dir(run_id)
    while True:
        # The state is read before the log, and the log is written before the state, so a
        # terminal state here means its events are already in the log read below.
        try:
            view = store.status_view(run_id)
        except (RunGoneError, RunNotFoundError, RunStateUnreadableError):
            return  # deleted or damaged while followed: nothing more will happen to it
        try:
            st = os.stat(run_dir / RUN_LOG_FILE)
            key = (st.st_ino, st.st_mtime_ns, st.st_size, view.state.status)
        except FileNotFoundError:
            key = (0, 0, 0, view.state.status)
        if key != log_key:
            log_key = key
            log = await anyio.to_thread.run_sync(
                read_run_log, run_dir, view.state.created_at, store.pipeline_name
            )
            catch_up(log, view.state)  # a claim is logged with the run's next write
            for event_id, event in numbered(log):
                last_logged = event_id
                if event_id > sent:
                    sent = event_id
                    yield {
                        "id": str(event_id),
                        "event": event.get("event", "message"),
                        "data": orjson.dumps(_public(event)).decode(),
                        **retry,
                    }
                    retry = {}
        if view.state.status.is_terminal:
            yield {"id": str(last_logged + 1), "event": "end", "data": view.body.decode(), **retry}
            return
        await asyncio.sleep(POLL_INTERVAL_S)


def _public(event: dict[str, Any]) -> dict[str, Any]:
    if not any(field in event for field in PRIVATE_FIELDS):
        return event
    return {key: value for key, value in event.items() if key not in PRIVATE_FIELDS}
