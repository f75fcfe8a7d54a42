"""Listing runs newest first, by pages with an opaque cursor, without scanning the output root.

Damaged runs are left out of listings; each page says how many runs are damaged in all, and
they stay reachable (500 RUN_STATE_UNREADABLE) and deletable by id.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from dataclasses import dataclass

from app.runs.errors import InvalidRequestError, RunGoneError, RunNotFoundError, RunStateUnreadableError
from app.runs.run_ids import is_valid_run_id
from app.runs.run_index import DAMAGED, Cursor
from app.runs.run_state import RunStatus
from app.runs.run_store import RunStore
from app.runs.status_cache import StatusView

MAX_CREATED_NS = 2**63 - 1
BAD_CURSOR = "cursor is not one this server gave out; start again without it."


@dataclass(frozen=True)
class Page:
    views: list[StatusView]
    next_cursor: str | None
    damaged: int


def encode_cursor(cursor: Cursor) -> str:
    raw = f"{cursor[0]}:{cursor[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor:
    """The position a cursor names; anything this server did not give out is a 422."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequestError(BAD_CURSOR) from None
    created, _, run_id = raw.partition(":")
    if not (created.isascii() and created.isdigit() and is_valid_run_id(run_id)):
        raise InvalidRequestError(BAD_CURSOR)
    created_ns = int(created)
    if created_ns > MAX_CREATED_NS:
        raise InvalidRequestError(BAD_CURSOR)
    return created_ns, run_id


def list_page(
    store: RunStore, status: RunStatus | None, limit: int, cursor: str | None, key_id: str | None = None
) -> Page:
    """One page (of one API key's runs, with `key_id`); each item is re-read from its run folder,
    so the index only orders and filters."""
    after = decode_cursor(cursor) if cursor else None
    rows = store.index.page(status.value if status else None, after, limit + 1, hidden=DAMAGED, key_id=key_id)
    more = len(rows) > limit
    rows = rows[:limit]
    views = []
    for _, run_id in rows:
        with contextlib.suppress(RunNotFoundError, RunGoneError):
            try:
                view = store.status_view(run_id)
            except RunStateUnreadableError:
                store.index.mark(run_id, DAMAGED)
                continue
            if key_id is not None and view.state.key_id != key_id:
                continue  # the folder, not the index, says whose a run is
            if status is None or view.state.status is status:
                views.append(view)
            else:
                store.index_state(view.state)  # the index lagged behind the folder: mend it
    damaged = store.index.count(DAMAGED) if key_id is None else 0
    return Page(views, encode_cursor(rows[-1]) if more and rows else None, damaged)
