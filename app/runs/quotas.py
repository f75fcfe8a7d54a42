"""Per-key quotas that hold across server processes: active and queued runs, requests a minute.

Run counts come from the shared index, checked and taken under a lock per key (flock(2) under
the output root, or a PostgreSQL advisory lock), so N+1 concurrent starts from any number of
processes admit exactly N.  Requests are counted in a sliding one-minute log shared the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from app.runs.api_keys import ApiKey
from app.runs.errors import QuotaExceededError
from app.runs.run_index import Index
from app.runs.run_state import RunStatus

WINDOW_S = 60.0
RATES_FILE = "rates.sqlite3"
LOCKS_DIR = "key-locks"


class NamedLocks(Protocol):
    def hold(self, run_id: str) -> contextlib.AbstractContextManager[None]: ...


class RateLog(Protocol):
    def hit(self, key_id: str, limit: int, now: float) -> float | None: ...


class QuotaGate:
    """Admits a key's new run only while its active and queued runs are under its limits."""

    def __init__(self, index: Index, meta_dir: Path, locks: NamedLocks | None, retry_after_s: int) -> None:
        self.index = index
        self._folder = meta_dir / LOCKS_DIR
        self._locks = locks
        self._retry_after_s = retry_after_s

    def limits_runs(self, key: ApiKey | None) -> bool:
        return key is not None and (key.max_active is not None or key.max_queued is not None)

    @contextlib.contextmanager
    def admitting(self, key: ApiKey) -> Iterator[None]:
        """Check the key's limits and hold its lock until the new run is in the index."""
        with self._hold(f"quota:{key.id}"):
            queued = self.index.count(RunStatus.QUEUED.value, key_id=key.id)
            if key.max_queued is not None and queued >= key.max_queued:
                raise QuotaExceededError(
                    "QUOTA_QUEUED_RUNS",
                    f"This API key already has {queued} queued runs (its limit is {key.max_queued}).",
                    self._retry_after_s,
                )
            if key.max_active is not None:
                active = queued + self.index.count(RunStatus.RUNNING.value, key_id=key.id)
                if active >= key.max_active:
                    raise QuotaExceededError(
                        "QUOTA_ACTIVE_RUNS",
                        f"This API key already has {active} active runs (its limit is {key.max_active}).",
                        self._retry_after_s,
                    )
            yield

    @contextlib.contextmanager
    def _hold(self, name: str) -> Iterator[None]:
        if self._locks is not None:
            with self._locks.hold(name):
                yield
            return
        self._folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._folder / f"{name.replace(':', '-')}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def check_rate(log: RateLog, key: ApiKey) -> None:
    """Count one request of the key; QuotaExceededError when it made its N this minute."""
    if key.rate_per_min is None:
        return
    wait = log.hit(key.id, key.rate_per_min, time.time())
    if wait is not None:
        raise QuotaExceededError(
            "RATE_LIMITED",
            f"This API key may make {key.rate_per_min} requests a minute; retry in {math.ceil(wait)} s.",
            max(1, math.ceil(wait)),
        )


_RATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (key_id TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS requests_by_key ON requests (key_id, at);
"""


class SqliteRateLog:
    """The sliding log of one host's processes: a small SQLite file beside the index."""

    def __init__(self, meta_dir: Path) -> None:
        self._path = meta_dir / RATES_FILE
        self._local = threading.local()
        self._connect().executescript(_RATE_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")  # a lost count after a crash costs nothing
            self._local.conn = conn
        return conn

    def hit(self, key_id: str, limit: int, now: float) -> float | None:
        """None if admitted (and counted), else the seconds until the oldest request ages out."""
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM requests WHERE key_id = ? AND at <= ?", (key_id, now - WINDOW_S))
            wait = _over(conn.execute, "?", key_id, limit, now)
            if wait is None:
                conn.execute("INSERT INTO requests VALUES (?, ?)", (key_id, now))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return wait


def _over(execute: Any, mark: str, key_id: str, limit: int, now: float) -> float | None:
    rows = execute(
        f"SELECT at FROM requests WHERE key_id = {mark} ORDER BY at DESC LIMIT 1 OFFSET {mark}",
        (key_id, limit - 1),
    ).fetchall()
    return None if not rows else max(0.0, rows[0][0] + WINDOW_S - now)


class PgRateLog:
    """The sliding log across hosts, in Runlane's PostgreSQL schema."""

    def __init__(self, database: Any) -> None:
        self.db = database
        with database.connection() as conn:
            conn.execute(_RATE_SCHEMA.replace("REAL", "DOUBLE PRECISION"))

    def hit(self, key_id: str, limit: int, now: float) -> float | None:
        with self.db.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"rate:{key_id}",))
            conn.execute("DELETE FROM requests WHERE key_id = %s AND at <= %s", (key_id, now - WINDOW_S))
            wait = _over(conn.execute, "%s", key_id, limit, now)
            if wait is None:
                conn.execute("INSERT INTO requests VALUES (%s, %s)", (key_id, now))
            return wait
