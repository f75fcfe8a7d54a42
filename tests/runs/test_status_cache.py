from __future__ import annotations

import os
import time
from pathlib import Path

from app.runs.run_state import RunState, RunStatus
from app.runs.state_file import CLAIM_FILE, FileKey, load_versioned_state
from app.runs.status_cache import StatusCache


def state_bytes(status: RunStatus, attempt: int = 0) -> bytes:
    stamp = "2026-01-01T00:00:00.000Z"
    state = RunState(
        run_id="r", status=status, created_at=stamp, updated_at=stamp, timeout_s=60, attempt=attempt
    )
    return state.model_dump_json().encode()


def settle(path: Path) -> None:
    old = time.time_ns() - 10**10
    os.utime(path, ns=(old, old))


def counting_cache() -> tuple[StatusCache, list[str]]:
    """A cache over the real loader, and the run ids it has loaded from disk, in order."""
    reads: list[str] = []

    def counting_load(run_id: str, path: str) -> tuple[RunState, os.stat_result, FileKey | None]:
        reads.append(run_id)
        return load_versioned_state(run_id, path)

    return StatusCache(counting_load), reads


def rewrite_in_place_keeping_the_key(path: Path, data: bytes) -> None:
    """The worst case for a stat-keyed cache: same inode, same size, same mtime."""
    before = path.stat()
    with path.open("r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )


def test_a_view_read_while_its_file_was_fresh_is_revalidated(tmp_path: Path) -> None:
    path = tmp_path / "api_state.json"
    running, stopped = state_bytes(RunStatus.RUNNING), state_bytes(RunStatus.STOPPED)
    assert len(running) == len(stopped)
    path.write_bytes(running)
    cache = StatusCache()
    assert cache.view("r", str(path)).state.status is RunStatus.RUNNING
    rewrite_in_place_keeping_the_key(path, stopped)
    assert cache.view("r", str(path)).state.status is RunStatus.STOPPED


def test_a_settled_file_is_served_from_the_cache_until_its_key_changes(tmp_path: Path) -> None:
    path = tmp_path / "api_state.json"
    path.write_bytes(state_bytes(RunStatus.QUEUED))
    settle(path)
    cache, reads = counting_cache()
    first = cache.view("r", str(path))
    assert cache.view("r", str(path)) is first and reads == ["r"]
    path.write_bytes(state_bytes(RunStatus.STOPPED))  # a real write: new mtime
    assert cache.view("r", str(path)).state.status is RunStatus.STOPPED and reads == ["r", "r"]


def test_a_claim_beside_a_cached_queued_state_is_seen_at_the_next_view(tmp_path: Path) -> None:
    path = tmp_path / "api_state.json"
    path.write_bytes(state_bytes(RunStatus.QUEUED))
    settle(path)
    cache = StatusCache()
    assert cache.view("r", str(path)).state.status is RunStatus.QUEUED
    claim = tmp_path / CLAIM_FILE
    claim.write_bytes(state_bytes(RunStatus.RUNNING, attempt=1))  # another process claimed it
    settle(claim)
    assert cache.view("r", str(path)).state.status is RunStatus.RUNNING
    claim.unlink()  # only a power loss undoes a claim, but the cache must follow the files
    assert cache.view("r", str(path)).state.status is RunStatus.QUEUED


def test_a_settled_claim_is_served_from_the_cache_until_the_state_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "api_state.json"
    path.write_bytes(state_bytes(RunStatus.QUEUED))
    (tmp_path / CLAIM_FILE).write_bytes(state_bytes(RunStatus.RUNNING, attempt=1))
    settle(path)
    settle(tmp_path / CLAIM_FILE)
    cache, reads = counting_cache()
    first = cache.view("r", str(path))
    assert first.state.status is RunStatus.RUNNING
    assert cache.view("r", str(path)) is first and reads == ["r"]
    path.write_bytes(state_bytes(RunStatus.COMPLETED, attempt=1))  # the run's end supersedes it
    assert cache.view("r", str(path)).state.status is RunStatus.COMPLETED and reads == ["r", "r"]
