"""Reading one run's `api_state.json`, telling a missing run from a damaged one, and why."""

from __future__ import annotations

import errno
import os

from pydantic import ValidationError

from app.runs.errors import RunStateUnreadableError
from app.runs.regular_files import read_regular
from app.runs.run_state import RunState

STATE_FILE = "api_state.json"


def _why(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "the document"
    if first.get("type") == "json_invalid":
        return f"{STATE_FILE} is not valid JSON (truncated?)"
    return f"{STATE_FILE} field '{where}': {first.get('msg', 'invalid')}"


def parse_state(run_id: str, data: bytes) -> RunState:
    """The state, or RunStateUnreadableError saying what is wrong with it."""
    try:
        state = RunState.model_validate_json(data)
    except ValidationError as exc:
        raise RunStateUnreadableError(run_id, _why(exc)) from None
    if state.run_id != run_id:
        raise RunStateUnreadableError(run_id, f"{STATE_FILE} names another run, '{state.run_id}'")
    return state


def load_state(run_id: str, path: str) -> tuple[RunState, os.stat_result]:
    """FileNotFoundError when there is no state (no such run, or deleted); any other trouble is
    RunStateUnreadableError, never a hang: only a regular file is read."""
    try:
        data, st = read_regular(path)
    except FileNotFoundError:
        raise
    except NotADirectoryError:  # the run id names a file, not a run folder
        raise FileNotFoundError(errno.ENOENT, "no run folder", path) from None
    except OSError as exc:
        raise RunStateUnreadableError(run_id, f"{STATE_FILE} cannot be read: {exc.strerror or exc}") from None
    return parse_state(run_id, data), st
