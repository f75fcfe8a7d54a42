"""PostgreSQL for several hosts: the run index, Idempotency-Keys and per-run locks in one schema.

A shared output volume carries the run folders; what a network file system cannot do safely
(SQLite's shared-memory WAL, flock between hosts) lives here instead.  Locks are session
advisory locks: held on a connection of this process, released by the server if the process
or its connection dies, like flock(2).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from app.runs.run_index import MAX_NS, Cursor

logger = logging.getLogger("runlane.postgres")

POOL_MAX = 8
_SCHEMA_LOCK = 0x72756E6C616E65  # serialises schema creation across processes

_TABLES = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_ns BIGINT NOT NULL,
    status TEXT NOT NULL,
    finished_ns BIGINT
);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_ns DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, created_ns DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_finished ON runs (finished_ns) WHERE finished_ns IS NOT NULL;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS key_id TEXT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS webhook_due_ns BIGINT;
CREATE INDEX IF NOT EXISTS runs_by_key ON runs (key_id, status, created_ns DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_webhook_due ON runs (webhook_due_ns) WHERE webhook_due_ns > 0;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS parent_run_id TEXT;
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    body_hash TEXT NOT NULL,
    run_id TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
"""


class Database:
    """A small connection pool whose connections all work in Runlane's schema."""

    def __init__(self, url: str, schema: str) -> None:
        self.schema = schema

        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))

        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_MAX,
            kwargs={"autocommit": True},
            configure=configure,
            check=ConnectionPool.check_connection,
            open=True,
        )
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(_TABLES)

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool.connection() as conn:
            yield conn

    def close(self) -> None:
        self._pool.close()


class PgRunIndex:
    """The run index of `app.runs.run_index.RunIndex`, shared by every host."""

    def __init__(self, database: Database) -> None:
        self.db = database
        self._local = threading.local()  # the connection of this thread's open batch, if any

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        batch: psycopg.Connection[Any] | None = getattr(self._local, "batch", None)
        if batch is not None:
            yield batch
            return
        with self.db.connection() as conn:
            yield conn

    def _rows(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return conn.execute(query, params).fetchall()

    def _run(self, query: str, params: tuple[Any, ...] = ()) -> int:
        with self._connection() as conn:
            return conn.execute(query, params).rowcount

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group this thread's writes into one transaction."""
        with self.db.connection() as conn, conn.transaction():
            self._local.batch = conn
            try:
                yield
            finally:
                self._local.batch = None

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
        self._run(
            "INSERT INTO runs (run_id, created_ns, status, finished_ns, key_id, webhook_due_ns, "
            "parent_run_id) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, "
            "finished_ns = excluded.finished_ns, key_id = excluded.key_id, "
            "parent_run_id = excluded.parent_run_id, "
            "webhook_due_ns = COALESCE(runs.webhook_due_ns, excluded.webhook_due_ns)",
            (run_id, created_ns, status, finished_ns, key_id, webhook_due_ns, parent_run_id),
        )

    def mark(self, run_id: str, status: str, created_ns: int = 0) -> None:
        self._run(
            "INSERT INTO runs (run_id, created_ns, status) VALUES (%s, %s, %s) "
            "ON CONFLICT (run_id) DO UPDATE SET status = excluded.status",
            (run_id, created_ns, status),
        )

    def count(self, status: str, up_to: int | None = None, key_id: str | None = None) -> int:
        if key_id is None:
            query = "SELECT COUNT(*) FROM (SELECT 1 FROM runs WHERE status = %s LIMIT %s) AS slice"
            return int(self._rows(query, (status, up_to))[0][0])
        query = (
            "SELECT COUNT(*) FROM (SELECT 1 FROM runs WHERE key_id = %s AND status = %s LIMIT %s) AS slice"
        )
        return int(self._rows(query, (key_id, status, up_to))[0][0])

    def remove(self, run_id: str) -> None:
        self._run("DELETE FROM runs WHERE run_id = %s", (run_id,))

    def run_ids(self) -> set[str]:
        return {row[0] for row in self._rows("SELECT run_id FROM runs")}

    def with_status(self, status: str, created_before_ns: int | None = None) -> list[str]:
        rows = self._rows(
            "SELECT run_id FROM runs WHERE status = %s AND created_ns < %s ORDER BY created_ns, run_id",
            (status, MAX_NS if created_before_ns is None else created_before_ns),
        )
        return [row[0] for row in rows]

    def counts(self) -> dict[str, int]:
        return {
            status: int(count)
            for status, count in self._rows("SELECT status, COUNT(*) FROM runs GROUP BY status")
        }

    def finished_before(self, finished_ns: int) -> list[str]:
        rows = self._rows("SELECT run_id FROM runs WHERE finished_ns < %s", (finished_ns,))
        return [row[0] for row in rows]

    def page(
        self, status: str | None, after: Cursor | None, limit: int, hidden: str, key_id: str | None = None
    ) -> list[Cursor]:
        clauses = ["status = %s" if status is not None else "status <> %s"]
        params: list[Any] = [status if status is not None else hidden]
        if key_id is not None:
            clauses.append("key_id = %s")
            params.append(key_id)
        if after is not None:
            clauses.append("(created_ns, run_id) < (%s, %s)")
            params.extend(after)
        query = (
            f"SELECT created_ns, run_id FROM runs WHERE {' AND '.join(clauses)} "
            "ORDER BY created_ns DESC, run_id DESC LIMIT %s"
        )
        return [(int(created), run_id) for created, run_id in self._rows(query, (*params, limit))]

    def webhooks_due(self, now_ns: int, limit: int) -> list[tuple[str, int]]:
        rows = self._rows(
            "SELECT run_id, webhook_due_ns FROM runs WHERE webhook_due_ns > 0 AND webhook_due_ns <= %s "
            "ORDER BY webhook_due_ns LIMIT %s",
            (now_ns, limit),
        )
        return [(run_id, int(due)) for run_id, due in rows]

    def children(self, run_id: str, key_id: str | None = None) -> list[str]:
        query = "SELECT run_id FROM runs WHERE parent_run_id = %s"
        params: tuple[str, ...] = (run_id,)
        if key_id is not None:
            query, params = query + " AND key_id = %s", (run_id, key_id)
        return [row[0] for row in self._rows(query + " ORDER BY created_ns, run_id", params)]

    def reschedule_webhook(self, run_id: str, due_ns: int, next_ns: int) -> bool:
        return (
            self._run(
                "UPDATE runs SET webhook_due_ns = %s WHERE run_id = %s AND webhook_due_ns = %s",
                (next_ns, run_id, due_ns),
            )
            == 1
        )

    def claim_idempotency_key(self, key: str, body_hash: str, run_id: str, ttl_s: float) -> bool:
        now = time.time()
        with self._connection() as conn, conn.transaction():
            conn.execute("DELETE FROM idempotency WHERE key = %s AND expires_at <= %s", (key, now))
            cursor = conn.execute(
                "INSERT INTO idempotency VALUES (%s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
                (key, body_hash, run_id, now + ttl_s),
            )
            return cursor.rowcount == 1

    def release_idempotency_key(self, key: str, run_id: str) -> None:
        self._run("DELETE FROM idempotency WHERE key = %s AND run_id = %s", (key, run_id))

    def idempotency_record(self, key: str) -> tuple[str, str] | None:
        rows = self._rows(
            "SELECT body_hash, run_id FROM idempotency WHERE key = %s AND expires_at > %s", (key, time.time())
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def expire_idempotency_keys(self) -> int:
        return self._run("DELETE FROM idempotency WHERE expires_at <= %s", (time.time(),))

    def close(self) -> None:
        self.db.close()


class PgRunLocks:
    """One lock per run across every host: a session advisory lock keyed by schema and run id."""

    def __init__(self, database: Database) -> None:
        self.db = database

    def key(self, run_id: str) -> int:
        digest = hashlib.blake2b(f"{self.db.schema}:{run_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    @contextlib.contextmanager
    def hold(self, run_id: str) -> Iterator[None]:
        key = self.key(run_id)
        with self.db.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                try:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                except psycopg.OperationalError:  # the connection died, and the lock with it
                    logger.warning("run lock connection lost", extra={"run_id": run_id})
