"""A SQLite index of the run folders, for listing, counting and finding queued work fast.

The run folders stay the source of truth: the index is derived from them, repaired by
`RunStore.reconcile_index`, and every page it yields is re-read from the folders.  It also
holds the Idempotency-Key table, whose rows must be unique across processes.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

INDEX_FILE = "index.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    finished_ns INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_ns DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, created_ns DESC, run_id DESC);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    body_hash TEXT NOT NULL,
    run_id TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""

# Columns added after the first release, for indexes made before them.
_ADDED_COLUMNS = {"key_id": "TEXT", "webhook_due_ns": "INTEGER", "parent_run_id": "TEXT"}
_ADDED_INDEXES = """
CREATE INDEX IF NOT EXISTS runs_by_key ON runs (key_id, status, created_ns DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_webhook_due ON runs (webhook_due_ns) WHERE webhook_due_ns > 0;
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
"""

Cursor = tuple[int, str]
# webhook_due_ns: NULL while nothing is due, then when the next delivery attempt is due,
# WEBHOOK_DONE once it was delivered or given up.
WEBHOOK_DONE = 0
# A status only the index knows: the run folder has no readable state (see run_reaper).
DAMAGED = "damaged"
MAX_NS = 2**63 - 1


class Index(Protocol):
    """What the engine needs of an index: SQLite here (one host), PostgreSQL across hosts."""

    def batch(self) -> contextlib.AbstractContextManager[None]: ...
    def upsert(
        self,
        run_id: str,
        created_ns: int,
        status: str,
        finished_ns: int | None,
        key_id: str | None = None,
        webhook_due_ns: int | None = None,
        parent_run_id: str | None = None,
    ) -> None: ...
    def mark(self, run_id: str, status: str, created_ns: int = 0) -> None: ...
    def count(self, status: str, up_to: int | None = None, key_id: str | None = None) -> int: ...
    def remove(self, run_id: str) -> None: ...
    def run_ids(self) -> set[str]: ...
    def with_status(self, status: str, created_before_ns: int | None = None) -> list[str]: ...
    def counts(self) -> dict[str, int]: ...
    def finished_before(self, finished_ns: int) -> list[str]: ...
    def page(
        self, status: str | None, after: Cursor | None, limit: int, hidden: str, key_id: str | None = None
    ) -> list[Cursor]: ...
    def webhooks_due(self, now_ns: int, limit: int) -> list[tuple[str, int]]: ...
    def children(self, run_id: str, key_id: str | None = None) -> list[str]: ...
    def reschedule_webhook(self, run_id: str, due_ns: int, next_ns: int) -> bool: ...
    def claim_idempotency_key(self, key: str, body_hash: str, run_id: str, ttl_s: float) -> bool: ...
    def release_idempotency_key(self, key: str, run_id: str) -> None: ...
    def idempotency_record(self, key: str) -> tuple[str, str] | None: ...
    def expire_idempotency_keys(self) -> int: ...
    def close(self) -> None: ...


class RunIndex:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._path = folder / INDEX_FILE
        self._local = threading.local()
        with self._connect() as conn:
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
            present = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column not in present:
                    conn.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
            conn.execute("COMMIT")
            conn.executescript(_ADDED_INDEXES)

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group many writes into one transaction (a cold rebuild would otherwise commit each)."""
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def upsert(
        self,
        run_id: str,
        created_ns: int,
        status: str,
        finished_ns: int | None,
        key_id: str | None = None,
        webhook_due_ns: int | None = None,
        parent_run_id: str | None = None,
    ) -> None:
        self._connect().execute(
            "INSERT INTO runs (run_id, created_ns, status, finished_ns, key_id, webhook_due_ns, "
            "parent_run_id) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(run_id) DO UPDATE SET status = excluded.status, "
            "finished_ns = excluded.finished_ns, key_id = excluded.key_id, "
            "parent_run_id = excluded.parent_run_id, "
            "webhook_due_ns = COALESCE(runs.webhook_due_ns, excluded.webhook_due_ns)",
            (run_id, created_ns, status, finished_ns, key_id, webhook_due_ns, parent_run_id),
        )

    def mark(self, run_id: str, status: str, created_ns: int = 0) -> None:
        """Set a run's status in the index only (e.g. `damaged`, which no state file says)."""
        self._connect().execute(
            "INSERT INTO runs (run_id, created_ns, status) VALUES (?, ?, ?) "
            "ON CONFLICT(run_id) DO UPDATE SET status = excluded.status",
            (run_id, created_ns, status),
        )

    def count(self, status: str, up_to: int | None = None, key_id: str | None = None) -> int:
        """Runs in one status (of one API key); reads only that slice of the index, and no more
        than `up_to` rows of it (a backpressure check needs to know "at least N", not how many)."""
        limit = -1 if up_to is None else up_to
        if key_id is None:
            query = "SELECT COUNT(*) FROM (SELECT 1 FROM runs WHERE status = ? LIMIT ?)"
            row = self._connect().execute(query, (status, limit)).fetchone()
        else:
            query = "SELECT COUNT(*) FROM (SELECT 1 FROM runs WHERE key_id = ? AND status = ? LIMIT ?)"
            row = self._connect().execute(query, (key_id, status, limit)).fetchone()
        return int(row[0])

    def remove(self, run_id: str) -> None:
        self._connect().execute("DELETE FROM runs WHERE run_id = ?", (run_id,))

    def run_ids(self) -> set[str]:
        return {row[0] for row in self._connect().execute("SELECT run_id FROM runs")}

    def with_status(self, status: str, created_before_ns: int | None = None) -> list[str]:
        """Runs in one status, oldest first; only those created before `created_before_ns`."""
        rows = self._connect().execute(
            "SELECT run_id FROM runs WHERE status = ? AND created_ns < ? ORDER BY created_ns, run_id",
            (status, MAX_NS if created_before_ns is None else created_before_ns),
        )
        return [row[0] for row in rows]

    def counts(self) -> dict[str, int]:
        rows = self._connect().execute("SELECT status, COUNT(*) FROM runs GROUP BY status")
        return {status: count for status, count in rows}

    def finished_before(self, finished_ns: int) -> list[str]:
        rows = self._connect().execute(
            "SELECT run_id FROM runs WHERE finished_ns IS NOT NULL AND finished_ns < ?",
            (finished_ns,),
        )
        return [row[0] for row in rows]

    def page(
        self, status: str | None, after: Cursor | None, limit: int, hidden: str, key_id: str | None = None
    ) -> list[Cursor]:
        """Runs newest first, strictly after the cursor (created_ns, run_id), none in `hidden`;
        with `key_id`, only the runs that key started."""
        clauses: list[str] = []
        params: list[object] = []
        if key_id is not None:
            clauses.append("key_id = ?")
            params.append(key_id)
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        else:
            clauses.append("status != ?")
            params.append(hidden)
        if after is not None:
            clauses.append("(created_ns, run_id) < (?, ?)")
            params.extend(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._connect().execute(
            f"SELECT created_ns, run_id FROM runs {where} ORDER BY created_ns DESC, run_id DESC LIMIT ?",
            (*params, limit),
        )
        return [(created_ns, run_id) for created_ns, run_id in rows]

    def webhooks_due(self, now_ns: int, limit: int) -> list[tuple[str, int]]:
        """Runs whose webhook delivery attempt is due, with the due time that claims it."""
        rows = self._connect().execute(
            "SELECT run_id, webhook_due_ns FROM runs WHERE webhook_due_ns > 0 AND webhook_due_ns <= ? "
            "ORDER BY webhook_due_ns LIMIT ?",
            (now_ns, limit),
        )
        return [(run_id, due) for run_id, due in rows]

    def children(self, run_id: str, key_id: str | None = None) -> list[str]:
        """Runs that regenerate this one, oldest first (of one API key, with `key_id`)."""
        query = "SELECT run_id FROM runs WHERE parent_run_id = ?"
        params: tuple[str, ...] = (run_id,)
        if key_id is not None:
            query, params = query + " AND key_id = ?", (run_id, key_id)
        rows = self._connect().execute(query + " ORDER BY created_ns, run_id", params)
        return [row[0] for row in rows]

    def reschedule_webhook(self, run_id: str, due_ns: int, next_ns: int) -> bool:
        """Compare-and-set of a run's next delivery time: only one process wins an attempt."""
        cursor = self._connect().execute(
            "UPDATE runs SET webhook_due_ns = ? WHERE run_id = ? AND webhook_due_ns = ?",
            (next_ns, run_id, due_ns),
        )
        return cursor.rowcount == 1

    def claim_idempotency_key(self, key: str, body_hash: str, run_id: str, ttl_s: float) -> bool:
        """Record the key for this run; False when a live record for the key already exists."""
        conn = self._connect()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM idempotency WHERE key = ? AND expires_at <= ?", (key, now))
            cursor = conn.execute(
                "INSERT OR IGNORE INTO idempotency VALUES (?, ?, ?, ?)",
                (key, body_hash, run_id, now + ttl_s),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return cursor.rowcount == 1

    def release_idempotency_key(self, key: str, run_id: str) -> None:
        """Forget a key whose run could not be created, so that it can be used again."""
        self._connect().execute("DELETE FROM idempotency WHERE key = ? AND run_id = ?", (key, run_id))

    def idempotency_record(self, key: str) -> tuple[str, str] | None:
        row = (
            self._connect()
            .execute(
                "SELECT body_hash, run_id FROM idempotency WHERE key = ? AND expires_at > ?",
                (key, time.time()),
            )
            .fetchone()
        )
        return (row[0], row[1]) if row else None

    def expire_idempotency_keys(self) -> int:
        cursor = self._connect().execute("DELETE FROM idempotency WHERE expires_at <= ?", (time.time(),))
        return cursor.rowcount

    def close(self) -> None:
        """Connections are per thread and close with their threads."""
