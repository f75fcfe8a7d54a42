"""Opening the run store a deployment asks for: local files alone, or with PostgreSQL beside."""

from __future__ import annotations

from datetime import timedelta

from app.config import Settings
from app.runs.quotas import PgRateLog, RateLog, SqliteRateLog
from app.runs.run_store import META_DIR, RunStore
from app.runs.store_writer import DEFAULT_SYNC


def open_store(settings: Settings) -> RunStore:
    """SQLite and flock(2) under the output root by default; with RUNLANE_DATABASE_URL, the
    index, Idempotency-Keys and run locks in PostgreSQL, for processes on several hosts."""
    retention = timedelta(days=settings.retention_days) if settings.retention_days else None
    index = locks = None
    if settings.database_url:
        from app.runs.postgres import Database, PgRunIndex, PgRunLocks

        database = Database(settings.database_url, settings.database_schema)
        index, locks = PgRunIndex(database), PgRunLocks(database)
    return RunStore(
        settings.output_dir,
        settings.pipeline,
        retention,
        sync=DEFAULT_SYNC if settings.durable_sync == "filesystem" else None,
        index=index,
        locks=locks,
        disk_workers=settings.disk_workers,
    )


def open_rate_log(settings: Settings, store: RunStore) -> RateLog:
    """Where keys' requests are counted: beside the index, so every process sees every count."""
    database = getattr(store.index, "db", None)
    if settings.database_url and database is not None:
        return PgRateLog(database)
    return SqliteRateLog(store.root / META_DIR)
