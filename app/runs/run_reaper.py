"""Recovery of runs that nobody will finish: orphans, overdue runs, expired runs, a stale index,
crash leftovers; a damaged run is marked in the index and never stops a pass."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from app import atomic_file
from app.runs.errors import RunGoneError, RunNotFoundError, RunStateUnreadableError
from app.runs.run_ids import is_valid_run_id
from app.runs.run_index import DAMAGED
from app.runs.run_owner import is_orphaned
from app.runs.run_state import RunError, RunState, RunStatus, parse_iso, utc_now
from app.runs.run_store import STAGING_DIR, TOMBSTONE_FILE, RunStore
from app.runs.state_file import STATE_FILE, load_state

logger = logging.getLogger("runlane.reaper")

INTERRUPTED_MESSAGE = "The server stopped before the run finished."
STAGING_MAX_AGE_S = 60.0


@dataclass
class RunReaper:
    store: RunStore
    orphan_after_s: float
    timeout_grace_s: float
    retention: timedelta | None = None
    host_id: str = field(default_factory=socket.gethostname)
    # Hands an orphan with attempts left to the executor (True) instead of failing it.
    retry: Callable[[RunState], bool] | None = None

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
                try:
                    states.append(self.store.get(run_id))
                except RunStateUnreadableError:
                    self.store.index.mark(run_id, DAMAGED)
        return [state for state in states if state.status is RunStatus.RUNNING]

    def is_orphaned(self, state: RunState) -> bool:
        age = self.store.heartbeat_age_s(state.run_id)
        return is_orphaned(state, age, self.orphan_after_s, self.host_id)

    def fail_orphans(self) -> list[str]:
        failed = []
        for state in self._running():
            if not self.is_orphaned(state):
                continue
            if self.retry is not None and self.retry(state):
                continue
            owner = state.owner
            # Clients are told what happened; which process it was is for operators (run.json).
            where = f"owner: process {owner.pid} on {owner.host}" if owner else "owner: unknown"
            error = RunError(type="Interrupted", message=INTERRUPTED_MESSAGE)
            failed_state = self.store.fail(
                state.run_id, error, "interrupted", detail=where, attempt=state.attempt
            )
            if failed_state is not None:
                atomic_file.sweep_temp_files(self.store.root / state.run_id, older_than_s=0)
                logger.warning("run interrupted", extra={"run_id": state.run_id, "owner": where})
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
        self.sweep_staging()
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
                repaired += self._reindex(run_id, known_damaged=False)
        for status in (RunStatus.QUEUED.value, RunStatus.RUNNING.value, DAMAGED):
            for run_id in self.store.index.with_status(status):
                repaired += self._reindex(run_id, known_damaged=status == DAMAGED)
        return repaired

    def _reindex(self, run_id: str, known_damaged: bool) -> int:
        run_dir = self.store.root / run_id
        if (run_dir / TOMBSTONE_FILE).exists():
            if (run_dir / STATE_FILE).exists():
                # A deletion was cut short; finish it.
                RunStore.remove_run_files(run_dir)
            self.store.index.remove(run_id)
            return 1
        try:
            state = load_state(run_id, f"{run_dir}/{STATE_FILE}")[0]
        except (FileNotFoundError, RunStateUnreadableError) as exc:
            if not known_damaged:  # said once, not at every pass
                reason = getattr(exc, "reason", "no state file")
                logger.error("damaged run", extra={"run_id": run_id, "path": str(run_dir), "reason": reason})
                self.store.index.mark(run_id, DAMAGED, created_ns=_created_ns(run_dir))
            return 0
        self.store.index_state(state)
        return 1

    def sweep_staging(self) -> None:
        """Creations that never got renamed into place were never acknowledged: drop them, and
        temp files a crashed writer left in the output root."""
        cutoff = time.time() - STAGING_MAX_AGE_S
        staging = self.store.root / STAGING_DIR
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(staging):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        shutil.rmtree(entry.path, ignore_errors=True)
        atomic_file.sweep_temp_files(self.store.root)


def _created_ns(run_dir: os.PathLike[str]) -> int:
    try:
        return os.stat(run_dir).st_mtime_ns
    except OSError:
        return 0
