"""Reading one run's state (`api_state.json`, and its claim while that says queued), telling a
missing run from a damaged one, and why.

A claim (`queued -> running`) is written to `claim.json` rather than over `api_state.json`:
renaming a new file over an old one makes ext4 write the new one's data out at once (so that a
power loss never leaves the name empty) and free the old one, which cost a claim more CPU than
the rest of it.  `claim.json` is read only while `api_state.json` says queued; the run's next
write (progress, cancel, its end) goes to `api_state.json`, after which the claim is history.
The claim is never synced, so a power loss may leave it empty or torn: a claim that cannot be
read, or that does not follow the queued state, never happened, and the run is still queued.
"""

from __future__ import annotations

import errno
import os

from pydantic import ValidationError

from app.runs.errors import RunStateUnreadableError
from app.runs.regular_files import read_regular
from app.runs.run_state import RunState, RunStatus

STATE_FILE = "api_state.json"
CLAIM_FILE = "claim.json"

FileKey = tuple[int, int, int]  # inode, mtime (ns), size: a version of a file
NO_FILE: FileKey = (0, 0, 0)


def file_key(st: os.stat_result) -> FileKey:
    return st.st_ino, st.st_mtime_ns, st.st_size


def claim_path(state_path: str) -> str:
    """The claim file beside the state file at `state_path`."""
    return state_path[: -len(STATE_FILE)] + CLAIM_FILE


def claim_key(state_path: str) -> FileKey:
    """The version of the claim file beside `state_path`, NO_FILE if there is none."""
    try:
        return file_key(os.stat(claim_path(state_path)))
    except (FileNotFoundError, NotADirectoryError):
        return NO_FILE


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
    state, st, _ = load_versioned_state(run_id, path)
    return state, st


def load_versioned_state(
    run_id: str, path: str, own_claim: RunState | None = None
) -> tuple[RunState, os.stat_result, FileKey | None]:
    """As `load_state`, with the version of the claim file read, or None when the state
    file's own status made the claim irrelevant (it is not queued).  `own_claim` is a claim
    this process wrote: while the state file still holds the state it followed, nobody can
    have claimed the run since (a claim needs the run queued, and every other change goes to
    the state file), so the claim file is not read again; its version is then NO_FILE."""
    try:
        data, st = read_regular(path)
    except FileNotFoundError:
        raise
    except NotADirectoryError:  # the run id names a file, not a run folder
        raise FileNotFoundError(errno.ENOENT, "no run folder", path) from None
    except OSError as exc:
        raise RunStateUnreadableError(run_id, f"{STATE_FILE} cannot be read: {exc.strerror or exc}") from None
    state = parse_state(run_id, data)
    if state.status is not RunStatus.QUEUED:
        return state, st, None
    if own_claim is not None and follows(state, own_claim):
        return own_claim, st, NO_FILE
    try:
        claim_data, claim_st = read_regular(claim_path(path))
    except FileNotFoundError:
        return state, st, NO_FILE
    except OSError:  # a claim that cannot be read was never made
        return state, st, claim_key(path)
    try:
        claim = parse_state(run_id, claim_data)
    except RunStateUnreadableError:
        return state, st, file_key(claim_st)
    return (claim if follows(state, claim) else state), st, file_key(claim_st)


def follows(queued: RunState, claim: RunState) -> bool:
    """True when `claim` is this queued run's claim: same run, running, the next attempt."""
    return (
        claim.status is RunStatus.RUNNING
        and claim.attempt == queued.attempt + 1
        and claim.created_at == queued.created_at
    )
