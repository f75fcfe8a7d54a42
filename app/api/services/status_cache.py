"""The status cache: each run's public status serialised once, revalidated by one stat(2).

Every process checks the state file on every request, so a write by any process is seen at
once.  A cached entry is trusted only once its file is older than any file-system timestamp
granularity: a later rewrite then always carries a newer mtime, even on a reused inode.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from app.api.services.run_state import RunState

SETTLE_NS = 100_000_000
MAX_ENTRIES = 20_000

FileKey = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class StatusView:
    """A run's public status, serialised once and reused while the file is unchanged."""

    state: RunState
    body: bytes
    etag: str


class StatusCache:
    def __init__(self, parse: Callable[[str, bytes], RunState]) -> None:
        self._parse = parse
        self._entries: dict[str, tuple[FileKey, StatusView, bool]] = {}

    def view(self, run_id: str, path: str) -> StatusView:
        """The current view of the state file at `path`; FileNotFoundError if there is none."""
        st = os.stat(path)
        cached = self._entries.get(run_id)
        if cached is not None and cached[2] and cached[0] == (st.st_ino, st.st_mtime_ns, st.st_size):
            return cached[1]
        return self._load(run_id, path)

    def _load(self, run_id: str, path: str) -> StatusView:
        fd = os.open(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(fd)  # the key of exactly the bytes read, even if the file is replaced
            data = handle.read()
        state = self._parse(run_id, data)
        body = orjson.dumps(state.public_status())
        view = StatusView(state, body, f'"{hashlib.blake2b(body, digest_size=10).hexdigest()}"')
        settled = time.time_ns() - st.st_mtime_ns > SETTLE_NS
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.pop(next(iter(self._entries)), None)
        self._entries[run_id] = ((st.st_ino, st.st_mtime_ns, st.st_size), view, settled)
        return view

    def forget(self, run_id: str) -> None:
        self._entries.pop(run_id, None)
