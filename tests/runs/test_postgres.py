"""The PostgreSQL index and run locks, against the machine's real server, one schema per test."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.runs.api_keys import KeyRing
from app.runs.errors import QuotaExceededError
from app.runs.postgres import Database, PgRunIndex, PgRunLocks
from app.runs.quotas import WINDOW_S, PgRateLog, QuotaGate
from app.runs.run_index import DAMAGED, WEBHOOK_DONE, RunIndex
from app.runs.run_state import Owner, RunStatus
from app.runs.run_store import RunStore
from tests.support.services import DATABASE_URL, pg_schema

REQUEST = {"question": "q"}


@pytest.fixture
def database() -> Iterator[Database]:
    with pg_schema() as schema:
        db = Database(DATABASE_URL, schema)
        yield db
        db.close()


@pytest.fixture
def store(tmp_path: Path, database: Database) -> Iterator[RunStore]:
    runs = RunStore(tmp_path / "output", index=PgRunIndex(database), locks=PgRunLocks(database))
    yield runs
    runs.close()


def test_runs_are_indexed_in_postgres_as_they_change(store: RunStore, database: Database) -> None:
    first = store.create(REQUEST, None, 60).run_id
    second = store.create(REQUEST, None, 60).run_id
    store.transition(first, RunStatus.STOPPED, finish_reason="cancelled")
    with database.connection() as conn:
        rows = dict(conn.execute("SELECT run_id, status FROM runs").fetchall())
    assert rows == {first: "stopped", second: "queued"}
    assert store.index.counts() == {"stopped": 1, "queued": 1}
    assert store.index.with_status("queued") == [second]
    assert store.index.finished_before(2**62) == [first]


def test_pages_count_and_damage_behave_as_in_sqlite(store: RunStore) -> None:
    index = store.index
    with index.batch():
        for number in range(30):
            index.upsert(f"run-{number:02}", number, "queued" if number < 25 else "completed", None)
    index.mark("run-00", DAMAGED)
    assert index.count("queued") == 24
    assert index.count("queued", up_to=10) == 10
    first = index.page(None, None, 5, hidden=DAMAGED)
    assert [run_id for _, run_id in first] == [f"run-{n:02}" for n in range(29, 24, -1)]
    rest = index.page("queued", first[-1], 100, hidden=DAMAGED)
    assert [run_id for _, run_id in rest] == [f"run-{n:02}" for n in range(24, 0, -1)]
    assert index.with_status("queued", created_before_ns=3) == ["run-01", "run-02"]


def test_a_failed_batch_leaves_no_row(store: RunStore) -> None:
    with pytest.raises(RuntimeError), store.index.batch():
        store.index.upsert("run-a", 1, "queued", None)
        raise RuntimeError("boom")
    assert store.index.run_ids() == set()


def test_an_idempotency_key_is_claimed_once_across_databases(database: Database) -> None:
    other = Database(DATABASE_URL, database.schema)
    try:
        first, second = PgRunIndex(database), PgRunIndex(other)
        assert first.claim_idempotency_key("k", "hash", "run-a", 60)
        assert not second.claim_idempotency_key("k", "hash", "run-b", 60)
        assert second.idempotency_record("k") == ("hash", "run-a")
        second.release_idempotency_key("k", "run-a")
        assert second.claim_idempotency_key("k", "hash", "run-b", -1)  # already expired
        assert first.expire_idempotency_keys() == 1
    finally:
        other.close()


def test_a_run_lock_excludes_another_process_until_released(database: Database) -> None:
    other = PgRunLocks(Database(DATABASE_URL, database.schema))
    held, tried, acquired = threading.Event(), threading.Event(), threading.Event()
    release = threading.Event()

    def holder() -> None:
        with PgRunLocks(database).hold("run-a"):
            held.set()
            release.wait(30)

    def contender() -> None:
        held.wait(30)
        tried.set()
        with other.hold("run-a"):
            acquired.set()

    threads = [threading.Thread(target=holder), threading.Thread(target=contender)]
    for thread in threads:
        thread.start()
    tried.wait(30)
    assert not acquired.wait(0.3)  # still held by the first connection
    with other.hold("run-b"):  # another run is not blocked
        pass
    release.set()
    assert acquired.wait(30)
    for thread in threads:
        thread.join(30)
    other.db.close()


def test_claims_through_postgres_locks_let_one_of_many_stores_win(tmp_path: Path, database: Database) -> None:
    run_id = RunStore(tmp_path / "output", index=PgRunIndex(database)).create(REQUEST, None, 60).run_id
    stores = [
        RunStore(tmp_path / "output", index=PgRunIndex(database), locks=PgRunLocks(database))
        for _ in range(4)
    ]
    results: list[object] = []

    def claim(number: int) -> None:
        owner = Owner(host=f"host-{number}", pid=1, process_started=1.0)
        results.append(stores[number].claim(run_id, owner))

    threads = [threading.Thread(target=claim, args=(number,)) for number in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(result is not None for result in results) == 1
    assert stores[0].get(run_id).attempt == 1


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_both_indexes_scope_runs_by_key_and_schedule_webhooks_once(
    kind: str, tmp_path: Path, database: Database
) -> None:
    index = PgRunIndex(database) if kind == "postgres" else RunIndex(tmp_path)
    index.upsert("a1", 1, "queued", None, key_id="alice")
    index.upsert("a2", 2, "completed", 5, key_id="alice", webhook_due_ns=100)
    index.upsert("b1", 3, "queued", None, key_id="bob")
    assert [run_id for _, run_id in index.page(None, None, 10, DAMAGED, key_id="alice")] == ["a2", "a1"]
    assert index.count("queued", key_id="alice") == 1 and index.count("queued") == 2
    assert index.webhooks_due(99, 10) == [] and index.webhooks_due(100, 10) == [("a2", 100)]
    assert index.reschedule_webhook("a2", 100, 500)  # one process wins the attempt...
    assert not index.reschedule_webhook("a2", 100, 600)  # ...and no other
    index.upsert("a2", 2, "completed", 5, key_id="alice", webhook_due_ns=900)  # a re-index keeps it
    assert index.webhooks_due(10**6, 10) == [("a2", 500)]
    assert index.reschedule_webhook("a2", 500, WEBHOOK_DONE)
    assert index.webhooks_due(10**18, 10) == []


def test_the_request_rate_log_in_postgres_holds_one_minute_per_key(database: Database) -> None:
    log, other = PgRateLog(database), PgRateLog(database)
    assert [log.hit("k", 2, t) for t in (0.0, 1.0)] == [None, None]
    assert other.hit("k", 2, 2.0) == pytest.approx(WINDOW_S - 2.0)
    assert other.hit("j", 2, 2.0) is None
    assert log.hit("k", 2, WINDOW_S + 0.5) is None


def test_run_quotas_admit_exactly_n_through_postgres_locks(tmp_path: Path, database: Database) -> None:
    index, locks = PgRunIndex(database), PgRunLocks(database)
    key, _ = KeyRing(tmp_path).create("alice", max_active=2)
    admitted: list[int] = []
    barrier = threading.Barrier(6)

    def start(number: int) -> None:
        barrier.wait()
        with contextlib.suppress(QuotaExceededError), QuotaGate(index, tmp_path, locks, 5).admitting(key):
            index.upsert(f"run-{number}", number, "queued", None, key_id=key.id)
            admitted.append(number)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(admitted) == 2 and index.count("queued", key_id=key.id) == 2
