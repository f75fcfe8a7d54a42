"""`run.json`: the run's log for people (stages with timings, events, errors with tracebacks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from app.runs.regular_files import read_regular
from app.runs.run_state import RunState, parse_iso

RUN_LOG_FILE = "run.json"
MAX_EVENTS = 2000


def new_run_log(run_id: str, created_at: str, pipeline: str) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "pipeline": pipeline,
        "created_at": created_at,
        "status": "queued",
        "stages": [],
        "events": [{"at": created_at, "event": "status", "status": "queued"}],
        "errors": [],
        "dropped_events": 0,
    }


def read_run_log(run_dir: Path, created_at: str = "", pipeline: str = "") -> dict[str, Any]:
    """The log on disk; a queued run has none yet, and a lost one starts afresh (it is for
    people: it must never stop the run)."""
    try:
        value = orjson.loads(read_regular(f"{run_dir}/{RUN_LOG_FILE}")[0])
    except (OSError, orjson.JSONDecodeError):
        value = None
    if not isinstance(value, dict) or not isinstance(value.get("events"), list):
        return new_run_log(run_dir.name, created_at, pipeline)
    return value


def catch_up(log: dict[str, Any], state: RunState) -> dict[str, Any]:
    """Add the `running` event of a claim, which is not logged when it happens (it would cost
    each run a file write): the state holds when and by whom, so the event is the same whether
    the next write adds it or a live event stream reads it before that."""
    if state.started_at is not None and log.get("status") == "queued":
        running: dict[str, Any] = {"at": state.started_at, "event": "status", "status": "running"}
        if state.owner is not None:
            running["owner"] = state.owner.model_dump()
        add_event(log, running)
    return log


def _close_open_stage(log: dict[str, Any], at: str) -> None:
    stages = log["stages"]
    if stages and stages[-1].get("ended_at") is None:
        stage = stages[-1]
        stage["ended_at"] = at
        elapsed = parse_iso(at) - parse_iso(stage["started_at"])
        stage["duration_s"] = round(elapsed.total_seconds(), 3)


def add_event(
    log: dict[str, Any], event: dict[str, Any], traceback: str | None = None, detail: str | None = None
) -> dict[str, Any]:
    """Append one event, keeping the stage table in step; callers hold the run's lock."""
    at = event["at"]
    if event["event"] == "progress":
        stages = log["stages"]
        if not stages or stages[-1]["name"] != event["stage"]:
            _close_open_stage(log, at)
            stages.append({"name": event["stage"], "started_at": at, "ended_at": None})
    elif event["event"] == "status":
        log["status"] = event["status"]
        if event["status"] not in ("queued", "running"):
            _close_open_stage(log, at)
    if event.get("error"):
        entry = {"at": at, **event["error"], "traceback": traceback}
        if detail is not None:
            entry["detail"] = detail
        log["errors"].append(entry)
    log["events"].append(event)
    if len(log["events"]) > MAX_EVENTS:
        overflow = len(log["events"]) - MAX_EVENTS
        log["events"] = log["events"][:1] + log["events"][1 + overflow :]
        log["dropped_events"] = log.get("dropped_events", 0) + overflow
    return log
