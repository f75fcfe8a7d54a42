"""The status cache: each run's public status serialised once, revalidated by one stat(2).

Every process checks the state file on every request, so a write by any process is seen at
once.  A cached entry is trusted only once its file is older than any file-system timestamp
granularity: a later rewrite then always carries a newer mtime, even on a reused inode.  A
damaged state is cached the same way, so it is parsed (and logged) once per version of the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from app.runs.errors import RunStateUnreadableError
from app.runs.run_state import RunState
from app.runs.state_file import load_state

logger = logging.getLogger("runlane.store")

SETTLE_NS = 100_000_000
MAX_ENTRIES = 20_000

FileKey = tuple[int, int, int]
StateLoader = Callable[[str, str], tuple[RunState, os.stat_result]]


@dataclass(frozen=True, slots=True)
class StatusView:
    """A run's public status, serialised once and reused while the file is unchanged."""

    state: RunState
    body: bytes
    etag: str


class StatusCache:
    def __init__(self, load: StateLoader = load_state) -> None:
        self._load_state = load
        self._entries: dict[str, tuple[FileKey, StatusView | RunStateUnreadableError, bool]] = {}

    def view(self, run_id: str, path: str) -> StatusView:
        """The current view of the state file at `path`; FileNotFoundError if there is none,
        RunStateUnreadableError if it is damaged."""
        try:
            st = os.stat(path)
        except NotADirectoryError:
            raise FileNotFoundError(path) from None
        cached = self._entries.get(run_id)
        if cached is not None and cached[2] and cached[0] == (st.st_ino, st.st_mtime_ns, st.st_size):
            found = cached[1]
            if isinstance(found, RunStateUnreadableError):
                raise found
            return found
        return self._load(run_id, path, st)

    def _load(self, run_id: str, path: str, st: os.stat_result) -> StatusView:
        found: StatusView | RunStateUnreadableError
        try:
            state, st = self._load_state(run_id, path)
        except RunStateUnreadableError as exc:
            logger.error("damaged run", extra={"run_id": run_id, "path": path, "reason": exc.reason})
            found = exc
        else:
            body = orjson.dumps(state.public_status())
            found = StatusView(state, body, f'"{hashlib.blake2b(body, digest_size=10).hexdigest()}"')
        settled = time.time_ns() - st.st_mtime_ns > SETTLE_NS
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.pop(next(iter(self._entries)), None)
        self._entries[run_id] = ((st.st_ino, st.st_mtime_ns, st.st_size), found, settled)
        if isinstance(found, RunStateUnreadableError):
            raise found
        return found

    def forget(self, run_id: str) -> None:
        self._entries.pop(run_id, None)
