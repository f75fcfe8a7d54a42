"""The machine's real Redis and PostgreSQL for tests: each test gets its own key prefix or
schema, removed after it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import redis
from psycopg import sql

REDIS_URL = os.environ.get("RUNLANE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("RUNLANE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def redis_prefix() -> Iterator[str]:
    prefix = f"runlane-test-{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@contextmanager
def pg_schema() -> Iterator[str]:
    schema = f"runlane_test_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
