from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from app.runs.run_owner import current_owner, process_start_ticks
from app.runs.run_reaper import RunReaper
from app.runs.run_state import Owner, RunStatus
from app.runs.run_store import STAGING_DIR, RunStore
from tests.support.owners import claimed, dead_owner

REQUEST = {"question": "q"}


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "output")


@pytest.fixture
def reaper(store: RunStore) -> RunReaper:
    return RunReaper(store, orphan_after_s=30.0, timeout_grace_s=0.0)


@pytest.fixture
def live_process() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def running_with(store: RunStore, owner: Owner) -> str:
    run_id = store.create(REQUEST, None, 60).run_id
    claimed(store, run_id, owner)
    return run_id


def owner_of(process: subprocess.Popen[bytes]) -> Owner:
    started = process_start_ticks(process.pid)
    assert started is not None
    return Owner(host=socket.gethostname(), pid=process.pid, process_started=started)


def age_heartbeat(store: RunStore, run_id: str, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(store.root / run_id, (old, old))


def test_run_of_a_dead_process_is_failed_as_interrupted(store: RunStore, reaper: RunReaper) -> None:
    run_id = running_with(store, dead_owner())
    assert reaper.fail_orphans() == [run_id]
    state = store.get(run_id)
    assert state.status is RunStatus.FAILED
    assert state.finish_reason == "interrupted"
    assert state.error is not None and "stopped before the run finished" in state.error.message


def test_pid_reused_by_another_process_counts_as_dead(
    store: RunStore, reaper: RunReaper, live_process: subprocess.Popen[bytes]
) -> None:
    impostor = Owner(host=socket.gethostname(), pid=live_process.pid, process_started=1.0)
    run_id = running_with(store, impostor)
    assert reaper.fail_orphans() == [run_id]


def test_live_owner_with_a_fresh_heartbeat_is_left_alone(
    store: RunStore, reaper: RunReaper, live_process: subprocess.Popen[bytes]
) -> None:
    run_id = running_with(store, owner_of(live_process))
    assert reaper.fail_orphans() == []
    assert store.get(run_id).status is RunStatus.RUNNING


def test_a_live_owner_here_is_never_judged_orphaned_by_a_stale_heartbeat(
    store: RunStore, reaper: RunReaper, live_process: subprocess.Popen[bytes]
) -> None:
    # A live owner settles its own runs (it retries a failure it could not write); calling its
    # run "interrupted" would tell a lie about why it ended.
    run_id = running_with(store, owner_of(live_process))
    age_heartbeat(store, run_id, 60)
    assert reaper.fail_orphans() == []
    assert store.get(run_id).status is RunStatus.RUNNING


def test_owner_on_another_host_is_judged_by_its_heartbeat(store: RunStore, reaper: RunReaper) -> None:
    remote = Owner(host="another-host.invalid", pid=1, process_started=1.0)
    fresh = running_with(store, remote)
    stale = running_with(store, remote)
    age_heartbeat(store, stale, 60)
    assert reaper.fail_orphans() == [stale]
    assert store.get(fresh).status is RunStatus.RUNNING


def test_this_process_is_never_its_own_orphan(store: RunStore, reaper: RunReaper) -> None:
    run_id = running_with(store, current_owner(socket.gethostname()))
    assert reaper.fail_orphans() == []
    assert store.get(run_id).status is RunStatus.RUNNING


def test_run_past_its_deadline_and_grace_is_stopped_for_timeout(store: RunStore) -> None:
    run_id = store.create(REQUEST, None, timeout_s=60).run_id
    store.claim(run_id, current_owner(socket.gethostname()))
    with store.exclusive(run_id) as (run_dir, state):
        store.commit(run_dir, state, deadline_at="2026-01-01T00:00:00.000Z")  # long past
    not_yet = RunReaper(store, orphan_after_s=30, timeout_grace_s=10 * 365 * 86400)
    assert not_yet.stop_overdue() == []  # still within its grace period
    reaper = RunReaper(store, orphan_after_s=30, timeout_grace_s=0)
    assert reaper.stop_overdue() == [run_id]
    state = store.get(run_id)
    assert state.status is RunStatus.STOPPED and state.finish_reason == "timeout"


def test_reconcile_adds_runs_the_index_missed_and_drops_vanished_ones(
    store: RunStore, reaper: RunReaper
) -> None:
    kept = store.create(REQUEST, "kept", 60).run_id
    store.index.remove(kept)
    store.index.upsert("vanished", 1, "queued", None)
    reaper.reconcile_index()
    assert store.index.run_ids() == {"kept"}
    assert store.index.with_status("queued") == ["kept"]


def test_reconcile_sweeps_abandoned_staging_folders(store: RunStore, reaper: RunReaper) -> None:
    abandoned = store.root / STAGING_DIR / "half-created.abc"
    abandoned.mkdir()
    old = time.time() - 3600
    os.utime(abandoned, (old, old))
    reaper.reconcile_index()
    assert not abandoned.exists()


def test_retention_deletes_only_terminal_runs_older_than_the_limit(store: RunStore) -> None:
    store.retention = timedelta(days=1)
    old_done = store.create(REQUEST, "old-done", 60).run_id
    store.transition(old_done, RunStatus.STOPPED)
    store.index.upsert(old_done, 1, "stopped", 1)  # finished in 1970
    new_done = store.create(REQUEST, "new-done", 60).run_id
    store.transition(new_done, RunStatus.STOPPED)
    queued = store.create(REQUEST, "still-queued", 60).run_id
    reaper = RunReaper(store, 30, 0, retention=timedelta(days=1))
    assert reaper.delete_expired() == [old_done]
    assert store.get(new_done).expires_at is not None
    assert store.get(queued).status is RunStatus.QUEUED


def test_every_index_check_sweeps_staging_not_only_the_first(store: RunStore, reaper: RunReaper) -> None:
    reaper.reconcile_index()
    abandoned = store.root / STAGING_DIR / "123.0.crashed-run"
    abandoned.mkdir()
    (abandoned / "api_state.json").write_text("{}")
    old = time.time() - 3600
    os.utime(abandoned, (old, old))
    reaper.reconcile_index()
    assert not abandoned.exists()


def test_heartbeats_leave_no_temp_files(store: RunStore) -> None:
    run_id = running_with(store, current_owner(socket.gethostname()))
    for _ in range(3):
        store.touch_heartbeat(run_id)
    assert [p.name for p in (store.root / run_id).iterdir() if p.name.endswith(".tmp")] == []
