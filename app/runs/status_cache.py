"""The status cache: each run's public status serialised once, revalidated by one stat(2).

Every process checks the state file on every request, so a write by any process is seen at
once; while that file says queued, the claim file beside it is checked too (see state_file).
A cached entry is trusted only once its files are older than any file-system timestamp
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
from app.runs.state_file import FileKey, claim_key, file_key, load_versioned_state

logger = logging.getLogger("runlane.store")

SETTLE_NS = 100_000_000
MAX_ENTRIES = 20_000

StateLoader = Callable[[str, str], tuple[RunState, os.stat_result, FileKey | None]]


@dataclass(frozen=True, slots=True)
class StatusView:
    """A run's public status, serialised once and reused while the file is unchanged."""

    state: RunState
    body: bytes
    etag: str


class StatusCache:
    def __init__(self, load: StateLoader = load_versioned_state) -> None:
        self._load_state = load
        # run id -> (state file version, claim version or None, view or damage, settled)
        self._entries: dict[
            str, tuple[FileKey, FileKey | None, StatusView | RunStateUnreadableError, bool]
        ] = {}

    def view(self, run_id: str, path: str) -> StatusView:
        """The current view of the state file at `path`; FileNotFoundError if there is none,
        RunStateUnreadableError if it is damaged."""
        try:
            st = os.stat(path)
        except NotADirectoryError:
            raise FileNotFoundError(path) from None
        cached = self._entries.get(run_id)
        if (
            cached is not None
            and cached[3]
            and cached[0] == (st.st_ino, st.st_mtime_ns, st.st_size)
            and (cached[1] is None or cached[1] == claim_key(path))
        ):
            found = cached[2]
            if isinstance(found, RunStateUnreadableError):
                raise found
            return found
        return self._load(run_id, path, st)

    def _load(self, run_id: str, path: str, st: os.stat_result) -> StatusView:
        found: StatusView | RunStateUnreadableError
        claim: FileKey | None = None
        try:
            state, st, claim = self._load_state(run_id, path)
        except RunStateUnreadableError as exc:
            logger.error("damaged run", extra={"run_id": run_id, "path": path, "reason": exc.reason})
            found = exc
        else:
            body = orjson.dumps(state.public_status())
            found = StatusView(state, body, f'"{hashlib.blake2b(body, digest_size=10).hexdigest()}"')
        newest_ns = max(st.st_mtime_ns, claim[1] if claim is not None else 0)
        settled = time.time_ns() - newest_ns > SETTLE_NS
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.pop(next(iter(self._entries)), None)
        self._entries[run_id] = (file_key(st), claim, found, settled)
        if isinstance(found, RunStateUnreadableError):
            raise found
        return found

    def forget(self, run_id: str) -> None:
        self._entries.pop(run_id, None)
