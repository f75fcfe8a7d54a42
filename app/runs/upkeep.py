"""Upkeep: the periodic pass that reaps what others left and picks up queued runs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from app.runs.executor import Executor
from app.runs.run_reaper import RunReaper
from app.runs.run_state import RunStatus

logger = logging.getLogger("runlane.upkeep")

RECONCILE_EVERY_PASSES = 6


class Upkeep:
    def __init__(self, reaper: RunReaper, executor: Executor, interval_s: float) -> None:
        self.reaper = reaper
        self.store = reaper.store
        self.executor = executor
        self.interval_s = interval_s
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._passes = 0

    def start(self) -> None:
        """Recover what earlier processes left (a damaged run never stops this), then keep going."""
        self._guarded(self.reaper.reconcile_index)
        self._guarded(self.run_once)
        self._thread = threading.Thread(target=self._loop, name="runlane-upkeep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._closing.wait(self.interval_s):
            self._guarded(self.run_once)

    @staticmethod
    def _guarded(work: Callable[[], object]) -> None:
        try:
            work()
        except Exception:  # the upkeep thread's boundary: log and carry on at the next pass
            logger.exception("upkeep pass failed")

    def run_once(self) -> None:
        """Reap orphans, overdue and expired runs, then pick up queued runs nobody is running."""
        self._passes += 1
        if self._passes % RECONCILE_EVERY_PASSES == 0:
            # A process that died between creating a run folder and indexing it left a run only
            # the folders know about; live processes find it here, not just at start-up.
            self.reaper.reconcile_index()
        self.reaper.reap()
        self.store.index.expire_idempotency_keys()
        created_before_ns = time.time_ns() - int(self.executor.resend_after_s * 1e9)
        for run_id in self.store.index.with_status(RunStatus.QUEUED.value, created_before_ns):
            self.executor.submit(run_id)
