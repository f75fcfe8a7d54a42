"""The embedded executor: pipelines on a thread pool in this process, with their heartbeats."""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from app.config import Settings
from app.modules.contract import Pipeline
from app.runs.cpu_placement import CpuPlacement
from app.runs.pipeline_runner import (
    SHUTDOWN_MESSAGE,
    Attempts,
    PipelineRunner,
    UnrecordedFailureError,
    error_of,
    load_pipeline,
)
from app.runs.request_gate import RequestGate
from app.runs.run_state import RunError, RunState
from app.runs.run_store import RunStore

logger = logging.getLogger("runlane.executor")


# Threads beyond the pipelines' slots: a run whose pipeline has returned gives its slot to the
# next run while its own thread waits for the terminal state to be durable, and queued runs wait
# for a slot on a thread of their own.
_RECORDING_THREADS = 32


class _Once:
    """Calls its function the first time it is called, and never again."""

    __slots__ = ("_function", "_lock")

    def __init__(self, function: Callable[[], None]) -> None:
        self._function: Callable[[], None] | None = function
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            function, self._function = self._function, None
        if function is not None:
            function()


class ThreadExecutor:
    """Executes runs' pipelines, `max_workers` at a time, on a thread pool; a heartbeat thread
    marks them alive meanwhile.  A run holds its slot while it is claimed and while its pipeline
    runs, not while its end is written: the next run starts meanwhile.

    A run whose terminal state could not be written (the disk was full) stays owned here, keeps
    its heartbeat, and its failure is written again on every beat until it sticks: it never
    looks like the run of a dead process.
    """

    resend_after_s = 0.0  # a queued run nobody took is offered to the pool at every upkeep pass

    def __init__(
        self,
        runner: PipelineRunner,
        *,
        max_workers: int,
        heartbeat_interval_s: float,
        shutdown_grace_s: float,
        on_finished: Callable[[RunState], None] | None = None,
        pipeline_nice: int = 0,
        placement: CpuPlacement | None = None,
    ) -> None:
        self.runner = runner
        self.store = runner.store
        self.max_workers = max_workers
        self.heartbeat_interval_s = heartbeat_interval_s
        self.shutdown_grace_s = shutdown_grace_s
        self.on_finished = on_finished
        self.pipeline_nice = pipeline_nice
        self.placement = placement or CpuPlacement(False)
        self._pool = ThreadPoolExecutor(
            max_workers=max_workers + _RECORDING_THREADS,
            thread_name_prefix="runlane-run",
            initializer=self._yield_to_requests,
        )
        self._pending: set[str] = set()  # submitted, waiting for a slot
        self._running: dict[str, int] = {}  # run id -> the attempt this process executes
        self._unsettled: dict[str, RunError] = {}
        self._in_slots = 0  # runs being claimed or in their pipeline
        self._guard = threading.Lock()
        self._idle = threading.Condition(self._guard)
        self._slot_free = threading.Condition(self._guard)
        self._closing = threading.Event()
        self._stopping = threading.Event()
        self._beater: threading.Thread | None = None

    def _yield_to_requests(self) -> None:
        """A pool thread runs `pipeline_nice` steps below the server's other threads (nice(2) is
        per thread on Linux), so that requests get the CPU first while pipelines compute."""
        if not self.pipeline_nice or not sys.platform.startswith("linux"):
            return
        me = threading.get_native_id()
        try:
            os.setpriority(
                os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + self.pipeline_nice)
            )
        except OSError:  # a sandbox that forbids it: pipelines share the CPU evenly instead
            logger.warning("pipeline threads keep the server's CPU priority", exc_info=True)

    def start(self) -> None:
        self._beater = threading.Thread(target=self._beat_forever, name="runlane-heartbeat", daemon=True)
        self._beater.start()

    def is_alive(self) -> bool:
        return not self._closing.is_set() and self._beater is not None and self._beater.is_alive()

    @property
    def running_count(self) -> int:
        return len(self._running)

    def submit(self, run_id: str) -> None:
        with self._guard:
            if self._closing.is_set() or run_id in self._pending or run_id in self._running:
                return
            self._pending.add(run_id)
        self._pool.submit(self._execute, run_id)

    def resubmit(self, run_id: str) -> None:
        self.submit(run_id)

    def request_stop(self, run_id: str) -> None:
        """Nothing to do here: pipelines read the cancel from the store at their next check."""

    def shutdown(self, stop_wait_s: float = 5.0) -> None:
        """Stop taking work; give running pipelines a grace period to finish, then ask them to
        stop and wait `stop_wait_s` more; runs still going after that end failed/interrupted."""
        self._closing.set()
        with self._slot_free:
            self._slot_free.notify_all()  # runs waiting for a slot stay queued
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._wait_idle(self.shutdown_grace_s)
        self._stopping.set()
        self._wait_idle(stop_wait_s)
        with self._guard:
            leftovers = dict(self._running)
        for run_id, attempt in leftovers.items():
            interrupt = functools.partial(self.runner.interrupt, run_id, SHUTDOWN_MESSAGE, attempt)
            self._settle(run_id, interrupt)
        if self._beater is not None:
            self._beater.join(timeout=5.0)

    def _wait_idle(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._running and (remaining := deadline - time.monotonic()) > 0:
                self._idle.wait(remaining)

    def _execute(self, run_id: str) -> None:
        with self._slot_free:
            while self._in_slots >= self.max_workers and not self._closing.is_set():
                self._slot_free.wait()
            self._pending.discard(run_id)
            if self._closing.is_set():
                return
            self._in_slots += 1
        self.placement.enter_slot()
        left = _Once(self._leave_slot)
        try:
            state = self._claim(run_id)
            if state is not None:
                self._execute_claimed(state, left)
        finally:
            left()

    def _leave_slot(self) -> None:
        self.placement.leave_slot()
        with self._slot_free:
            self._in_slots -= 1
            self._slot_free.notify()

    def execute_here(self, run_id: str) -> None:
        """Claim and run one run on the calling thread (a Celery worker's task), with heartbeats."""
        state = self._claim(run_id)
        if state is not None:
            self._execute_claimed(state, lambda: None)

    def _claim(self, run_id: str) -> RunState | None:
        try:
            state = self.runner.claim(run_id)
        except Exception:  # the thread boundary: a claim that could not be written leaves it queued
            logger.exception("run could not be claimed", extra={"run_id": run_id})
            return None
        if state is not None:
            with self._guard:
                self._running[run_id] = state.attempt
        return state

    def _execute_claimed(self, state: RunState, pipeline_done: Callable[[], None]) -> None:
        work = functools.partial(self.runner.execute, state, self._stopping, pipeline_done)
        try:
            self._settle(state.run_id, work)
        finally:
            pipeline_done()
            self._forget(state.run_id)

    def _forget(self, run_id: str) -> None:
        with self._idle:
            self._running.pop(run_id, None)
            self._idle.notify_all()

    def _settle(self, run_id: str, work: Callable[[], RunState | None]) -> None:
        """Do work that ends a run; if even recording its failure fails, keep retrying that."""
        try:
            finished = work()
        except Exception as exc:  # the thread boundary: the run must still end, with this cause
            logger.exception("run could not be recorded as ended", extra={"run_id": run_id})
            cause = exc.error if isinstance(exc, UnrecordedFailureError) else error_of(exc)
            with self._guard:
                self._unsettled[run_id] = cause
            return
        if finished is not None and self.on_finished is not None:
            self.on_finished(finished)

    def _beat_forever(self) -> None:
        while not self._closing.wait(self.heartbeat_interval_s):
            self.beat()
        self.beat()

    def beat(self) -> None:
        with self._guard:
            alive = {**dict.fromkeys(self._unsettled), **self._running}
            unsettled = dict(self._unsettled)
        for run_id, attempt in alive.items():
            try:
                self.store.touch_heartbeat(run_id, attempt)
            except OSError:
                logger.exception("heartbeat failed", extra={"run_id": run_id})
        for run_id, error in unsettled.items():
            try:
                finished = self.store.fail(run_id, error, "error", traceback=None)
            except Exception:  # the heartbeat thread's boundary: try again at the next beat
                logger.exception("run failure still not recorded", extra={"run_id": run_id})
                continue
            with self._guard:
                self._unsettled.pop(run_id, None)
            if finished is not None and self.on_finished is not None:
                self.on_finished(finished)


def thread_executor(
    settings: Settings,
    store: RunStore,
    pipeline: Pipeline | None = None,
    max_workers: int | None = None,
    on_finished: Callable[[RunState], None] | None = None,
    requests: RequestGate | None = None,
    placement: CpuPlacement | None = None,
) -> ThreadExecutor:
    """The executor the settings describe, over `store` (the pipeline loaded unless given);
    with `requests`, pipelines give way to the requests this process answers; with
    `placement`, a pipeline that runs long may leave the server's CPU."""
    attempts = Attempts(settings.host_id, settings.orphan_after_s, settings.max_attempts)
    pipeline = pipeline or load_pipeline(settings.pipeline, settings)
    return ThreadExecutor(
        PipelineRunner(store, pipeline, settings.documents_root, attempts, requests),
        max_workers=max_workers or settings.max_workers,
        heartbeat_interval_s=settings.heartbeat_interval_s,
        shutdown_grace_s=settings.shutdown_grace_s,
        on_finished=on_finished,
        pipeline_nice=settings.pipeline_nice,
        placement=placement,
    )
