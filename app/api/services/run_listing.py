"""Listing runs newest first, by pages with an opaque cursor, without scanning the output root."""

from __future__ import annotations

import base64
import binascii
import contextlib
from dataclasses import dataclass

from app.api.services.errors import InvalidRequestError, RunGoneError, RunNotFoundError
from app.api.services.run_index import Cursor
from app.api.services.run_state import RunStatus
from app.api.services.run_store import RunStore
from app.api.services.status_cache import StatusView


@dataclass(frozen=True)
class Page:
    views: list[StatusView]
    next_cursor: str | None


def encode_cursor(cursor: Cursor) -> str:
    raw = f"{cursor[0]}:{cursor[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        created_ns, run_id = raw.split(":", 1)
        return int(created_ns), run_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequestError("cursor is not one this server gave out; start again without it.") from None


def list_page(store: RunStore, status: RunStatus | None, limit: int, cursor: str | None) -> Page:
    """One page; each item is re-read from its run folder, so the index only orders and filters."""
    after = decode_cursor(cursor) if cursor else None
    rows = store.index.page(status.value if status else None, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    views = []
    for _, run_id in rows:
        with contextlib.suppress(RunNotFoundError, RunGoneError):
            view = store.status_view(run_id)
            if status is None or view.state.status is status:
                views.append(view)
            else:
                store.index_state(view.state)  # the index lagged behind the folder: mend it
    return Page(views, encode_cursor(rows[-1]) if more and rows else None)
