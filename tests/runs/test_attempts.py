"""Attempt numbers: a run's owner can be taken over only when it died, and never written over."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from app.config import Settings
from app.runs.pipeline_runner import Attempts, PipelineRunner
from app.runs.run_owner import current_owner
from app.runs.run_reaper import RunReaper
from app.runs.run_service import RunService
from app.runs.run_state import Owner, RunError, RunStatus
from app.runs.run_store import FINAL_FILE, Outcome, RunStore
from tests.conftest import wait_until
from tests.runs.test_run_reaper import age_heartbeat
from tests.support.owners import claimed, dead_owner
from tests.support.pipelines import instant_pipeline

REQUEST = {"question": "q", "markdown_path": "documents"}
HOST = socket.gethostname()
DONE = Outcome(RunStatus.COMPLETED, "answered", "# new\n", {"a": 1}, [])


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    (tmp_path / "documents").mkdir()
    return RunStore(tmp_path / "output")


def runner(store: RunStore, max_attempts: int, host: str = HOST) -> PipelineRunner:
    return PipelineRunner(store, instant_pipeline, store.root.parent, Attempts(host, 5.0, max_attempts))


def orphaned_run(store: RunStore) -> str:
    run_id = store.create(REQUEST, None, 60).run_id
    claimed(store, run_id, dead_owner())
    assert store.get(run_id).attempt == 1
    return run_id


def test_each_claim_numbers_its_attempt(store: RunStore) -> None:
    run_id = store.create(REQUEST, None, 60).run_id
    assert store.get(run_id).attempt == 0
    claimed = store.claim(run_id, current_owner(HOST))
    assert claimed is not None and claimed.attempt == 1
    assert store.get(run_id).attempt == 1


def test_a_dead_owners_run_is_taken_over_when_attempts_are_left(store: RunStore) -> None:
    run_id = orphaned_run(store)
    taken = runner(store, max_attempts=2).claim(run_id)
    assert taken is not None and taken.attempt == 2 and taken.status is RunStatus.RUNNING
    assert taken.owner == current_owner(HOST)


def test_a_dead_owners_run_is_not_taken_over_without_attempts_left(store: RunStore) -> None:
    run_id = orphaned_run(store)
    assert runner(store, max_attempts=1).claim(run_id) is None
    assert store.get(run_id).attempt == 1


def test_a_live_owners_run_is_never_taken_over(store: RunStore) -> None:
    run_id = store.create(REQUEST, None, 60).run_id
    store.claim(run_id, current_owner(HOST))
    assert runner(store, max_attempts=5).claim(run_id) is None
    assert store.get(run_id).attempt == 1


def test_an_owner_elsewhere_is_taken_over_only_once_its_heartbeat_is_stale(store: RunStore) -> None:
    run_id = store.create(REQUEST, None, 60).run_id
    store.claim(run_id, Owner(host="worker-a", pid=1, process_started=1.0))
    other_host = runner(store, max_attempts=2, host="worker-b")
    assert other_host.claim(run_id) is None
    age_heartbeat(store, run_id, 60)
    taken = other_host.claim(run_id)
    assert taken is not None and taken.attempt == 2 and taken.owner is not None
    assert taken.owner.host == "worker-b"


def test_writes_of_an_attempt_that_was_taken_over_are_refused(store: RunStore) -> None:
    run_id = orphaned_run(store)
    assert runner(store, max_attempts=2).claim(run_id) is not None
    store.record_progress(run_id, "search", "old attempt", 0.9, (), attempt=1)
    assert store.get(run_id).progress is None
    assert store.finish(run_id, DONE, attempt=1) is None
    assert not (store.root / run_id / FINAL_FILE).exists()
    assert store.fail(run_id, RunError(type="X", message="old"), "error", attempt=1) is None
    before = store.heartbeat_age_s(run_id)
    age_heartbeat(store, run_id, 60)
    store.touch_heartbeat(run_id, attempt=1)
    assert (store.heartbeat_age_s(run_id) or 0) >= 59 > (before or 0)
    assert store.get(run_id).status is RunStatus.RUNNING
    finished = store.finish(run_id, DONE, attempt=2)
    assert finished is not None and finished.status is RunStatus.COMPLETED


def test_the_reaper_hands_an_orphan_with_attempts_left_to_its_retry(store: RunStore) -> None:
    run_id = orphaned_run(store)
    retried: list[str] = []
    reaper = RunReaper(store, 30.0, 0.0, retry=lambda state: retried.append(state.run_id) or True)
    assert reaper.fail_orphans() == []
    assert retried == [run_id] and store.get(run_id).status is RunStatus.RUNNING
    refusing = RunReaper(store, 30.0, 0.0, retry=lambda state: False)
    assert refusing.fail_orphans() == [run_id]
    assert store.get(run_id).finish_reason == "interrupted"


def test_with_two_attempts_a_dead_servers_run_is_run_again_to_completion(settings: Settings) -> None:
    dead = RunStore(settings.output_dir)
    run_id = orphaned_run(dead)
    dead.close()
    service = RunService(settings.model_copy(update={"max_attempts": 2}), instant_pipeline)
    service.start()
    try:
        wait_until(lambda: service.store.get(run_id).status is RunStatus.COMPLETED, what="the retry")
        state = service.store.get(run_id)
        assert state.attempt == 2 and state.owner == current_owner(settings.host_id)
    finally:
        service.shutdown()


def test_with_one_attempt_a_dead_servers_run_fails_interrupted(settings: Settings) -> None:
    dead = RunStore(settings.output_dir)
    run_id = orphaned_run(dead)
    dead.close()
    service = RunService(settings, instant_pipeline)
    service.start()
    try:
        wait_until(lambda: service.store.get(run_id).status is RunStatus.FAILED, what="the reaper")
        assert service.store.get(run_id).finish_reason == "interrupted"
    finally:
        service.shutdown()
