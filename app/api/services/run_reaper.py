"""Recovery of runs that nobody will finish: orphans, overdue runs, expired runs, a stale index."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import timedelta

from app import atomic_file
from app.api.services.errors import RunGoneError, RunNotFoundError
from app.api.services.run_ids import is_valid_run_id
from app.api.services.run_owner import owner_is_alive_here
from app.api.services.run_state import RunError, RunState, RunStatus, parse_iso, utc_now
from app.api.services.run_store import STAGING_DIR, STATE_FILE, TOMBSTONE_FILE, RunStore

logger = logging.getLogger("runlane.reaper")


@dataclass
class RunReaper:
    store: RunStore
    orphan_after_s: float
    timeout_grace_s: float
    retention: timedelta | None = None
    swept_staging: bool = field(default=False, init=False)

    def reap(self) -> dict[str, list[str]]:
        """One pass of every check; each run is re-read under its lock before it is changed."""
        return {
            "interrupted": self.fail_orphans(),
            "timed_out": self.stop_overdue(),
            "expired": self.delete_expired(),
        }

    def _running(self) -> list[RunState]:
        states = []
        for run_id in self.store.index.with_status(RunStatus.RUNNING.value):
            with contextlib.suppress(RunNotFoundError, RunGoneError):
                states.append(self.store.get(run_id))
        return [state for state in states if state.status is RunStatus.RUNNING]

    def is_orphaned(self, state: RunState) -> bool:
        """Orphaned when its owner process is gone, or (owner elsewhere) its heartbeat is stale."""
        if state.owner is None:
            return True
        alive = owner_is_alive_here(state.owner)
        if alive is False:
            return True
        age = self.store.heartbeat_age_s(state.run_id)
        return age is None or age > self.orphan_after_s

    def fail_orphans(self) -> list[str]:
        failed = []
        for state in self._running():
            if not self.is_orphaned(state):
                continue
            owner = state.owner
            where = f"process {owner.pid} on {owner.host}" if owner else "an unknown process"
            error = RunError(
                type="Interrupted",
                message=f"The server {where} stopped before the run finished.",
            )
            if self.store.fail(state.run_id, error, "interrupted") is not None:
                atomic_file.sweep_temp_files(self.store.root / state.run_id, older_than_s=0)
                logger.warning("run interrupted", extra={"run_id": state.run_id})
                failed.append(state.run_id)
        return failed

    def stop_overdue(self) -> list[str]:
        """Stop runs whose pipeline ignored its time limit for longer than the grace period."""
        stopped = []
        now = utc_now()
        for state in self._running():
            if state.deadline_at is None:
                continue
            overdue = now - parse_iso(state.deadline_at)
            if overdue.total_seconds() <= self.timeout_grace_s:
                continue
            if self.store.stop(state.run_id, "timeout", only_if=RunStatus.RUNNING) is not None:
                logger.warning("run stopped past its time limit", extra={"run_id": state.run_id})
                stopped.append(state.run_id)
        return stopped

    def delete_expired(self) -> list[str]:
        if self.retention is None:
            return []
        cutoff_ns = int((utc_now() - self.retention).timestamp() * 1e9)
        deleted = []
        for run_id in self.store.index.finished_before(cutoff_ns):
            with contextlib.suppress(RunNotFoundError, RunGoneError):
                self.store.delete(run_id)
                deleted.append(run_id)
        return deleted

    def reconcile_index(self) -> int:
        """Bring the index in line with the run folders (after a crash between the two writes)."""
        if not self.swept_staging:
            self._sweep_staging()
        on_disk = {
            entry.name
            for entry in os.scandir(self.store.root)
            if is_valid_run_id(entry.name) and entry.is_dir(follow_symlinks=False)
        }
        indexed = self.store.index.run_ids()
        for run_id in indexed - on_disk:
            self.store.index.remove(run_id)
        repaired = 0
        with self.store.index.batch():
            for run_id in sorted(on_disk - indexed):
                repaired += self._reindex(run_id)
        for status in (RunStatus.QUEUED, RunStatus.RUNNING):
            for run_id in self.store.index.with_status(status.value):
                repaired += self._reindex(run_id)
        return repaired

    def _reindex(self, run_id: str) -> int:
        run_dir = self.store.root / run_id
        if (run_dir / TOMBSTONE_FILE).exists():
            if (run_dir / STATE_FILE).exists():
                # A deletion was cut short; finish it.
                RunStore.remove_run_files(run_dir)
            self.store.index.remove(run_id)
            return 1
        try:
            state = RunState.model_validate_json((run_dir / STATE_FILE).read_bytes())
        except (OSError, ValueError):
            logger.error("run folder without a readable state", extra={"run_id": run_id})
            return 0
        self.store.index_state(state)
        return 1

    def _sweep_staging(self) -> None:
        """Creations that never got renamed into place were never acknowledged: drop them."""
        cutoff = time.time() - 60
        staging = self.store.root / STAGING_DIR
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(staging):
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    shutil.rmtree(entry.path, ignore_errors=True)
        atomic_file.sweep_temp_files(self.store.root)
        self.swept_staging = True
