"""The executor: runs pipelines on a thread pool, keeps their heartbeats, and reaps what others left."""

from __future__ import annotations

import importlib
import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

from app.api.services.document_paths import resolve_markdown_path
from app.api.services.errors import RunGoneError, RunNotFoundError
from app.api.services.run_owner import current_owner
from app.api.services.run_reaper import RunReaper
from app.api.services.run_state import RunError, RunState, RunStatus, parse_iso, utc_now
from app.api.services.run_store import Outcome, RunStore
from app.config import Settings
from app.modules.contract import Pipeline, PipelineResult, RunContext, RunOptions, pipeline_stages

logger = logging.getLogger("runlane.executor")

RECONCILE_EVERY_PASSES = 6
RESULT_STATUSES = {RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_GAPS, RunStatus.STOPPED}


class PipelineContractError(Exception):
    """A pipeline returned something the contract does not allow."""


def load_pipeline(spec: str, settings: Settings) -> Pipeline:
    """Import `package.module:function`; a pipeline offering `bind(settings)` is bound to them."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"pipeline must look like 'package.module:function', got {spec!r}")
    target = getattr(importlib.import_module(module_name), attribute)
    if not callable(target):
        raise ValueError(f"pipeline {spec!r} is not callable")
    bind = getattr(target, "bind", None)
    return cast(Pipeline, bind(settings) if callable(bind) else target)


class RunExecutor:
    def __init__(
        self,
        store: RunStore,
        pipeline: Pipeline,
        reaper: RunReaper,
        *,
        documents_root: Path,
        max_workers: int,
        heartbeat_interval_s: float,
        reap_interval_s: float,
        shutdown_grace_s: float,
        on_finished: Callable[[RunState], None] | None = None,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.reaper = reaper
        self.documents_root = documents_root
        self.max_workers = max_workers
        self.heartbeat_interval_s = heartbeat_interval_s
        self.reap_interval_s = reap_interval_s
        self.shutdown_grace_s = shutdown_grace_s
        self.on_finished = on_finished
        self._stages = pipeline_stages(pipeline)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="runlane-run")
        self._pending: set[str] = set()
        self._running: dict[str, RunState] = {}
        self._guard = threading.Lock()
        self._idle = threading.Condition(self._guard)
        self._closing = threading.Event()
        self._stopping_pipelines = threading.Event()
        self._maintainer: threading.Thread | None = None
        self._passes = 0

    # -- lifecycle of the executor itself -------------------------------------------------------

    def start(self) -> None:
        """Recover what earlier processes left, then keep heartbeats and reaping going."""
        self.reaper.reconcile_index()
        self.maintain_once()
        self._maintainer = threading.Thread(target=self._maintain, name="runlane-maintain", daemon=True)
        self._maintainer.start()

    def is_alive(self) -> bool:
        return not self._closing.is_set() and self._maintainer is not None and self._maintainer.is_alive()

    def shutdown(self, stop_wait_s: float = 5.0) -> None:
        """Stop taking work; give running pipelines a grace period to finish, then ask them to
        stop and wait `stop_wait_s` more; runs still going after that end failed/interrupted."""
        self._closing.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._wait_idle(self.shutdown_grace_s)
        self._stopping_pipelines.set()
        self._wait_idle(stop_wait_s)
        with self._guard:
            leftovers = list(self._running)
        for run_id in leftovers:
            self._interrupt(run_id, "The server shut down before the run finished.")
        if self._maintainer is not None:
            self._maintainer.join(timeout=5.0)

    def _wait_idle(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._running and (remaining := deadline - time.monotonic()) > 0:
                self._idle.wait(remaining)

    @property
    def running_count(self) -> int:
        return len(self._running)

    # -- submission and execution ---------------------------------------------------------------

    def submit(self, run_id: str) -> None:
        with self._guard:
            if self._closing.is_set() or run_id in self._pending or run_id in self._running:
                return
            self._pending.add(run_id)
        self._pool.submit(self._execute, run_id)

    def _execute(self, run_id: str) -> None:
        with self._guard:
            self._pending.discard(run_id)
        if self._closing.is_set():
            return
        try:
            state = self.store.claim(run_id, current_owner())
        except (RunNotFoundError, RunGoneError):
            return
        if state is None:
            return
        with self._guard:
            self._running[run_id] = state
        logger.info("run started", extra={"run_id": run_id})
        try:
            self._run_claimed(state)
        finally:
            with self._idle:
                self._running.pop(run_id, None)
                self._idle.notify_all()

    def _run_claimed(self, state: RunState) -> None:
        run_id = state.run_id
        try:
            context = self._context(state)
            outcome = self._outcome(state, self.pipeline(context))
        except Exception as exc:  # noqa: BLE001 -- the thread boundary: any pipeline error ends its run
            error = RunError(type=type(exc).__name__, message=str(exc) or type(exc).__name__)
            finished = self.store.fail(run_id, error, "error", traceback.format_exc())
            logger.error("run failed", extra={"run_id": run_id, "error": error.message})
        else:
            if outcome is None:
                return
            finished = self.store.finish(run_id, outcome)
            if finished is None:
                logger.warning("result discarded: run ended meanwhile", extra={"run_id": run_id})
        if finished is not None:
            logger.info("run finished", extra={"run_id": run_id, "status": finished.status.value})
            if self.on_finished is not None:
                self.on_finished(finished)

    def _context(self, state: RunState) -> RunContext:
        request = self.store.read_request(state.run_id)
        options = RunOptions(
            question=str(request["question"]),
            markdown_path=resolve_markdown_path(self.documents_root, request.get("markdown_path")),
            enable_sql=bool(request.get("enable_sql", False)),
            log_llm_payload=bool(request.get("log_llm_payload", False)),
        )
        run_id = state.run_id
        deadline = parse_iso(state.deadline_at) if state.deadline_at else None

        def report(stage: str, message: str = "", fraction: float | None = None) -> None:
            self.store.record_progress(run_id, stage, message, fraction, self._stages)

        def should_stop() -> bool:
            if self._stopping_pipelines.is_set() or (deadline is not None and utc_now() > deadline):
                return True
            current = self.store.get(run_id)
            return current.cancel_requested_at is not None or current.status is not RunStatus.RUNNING

        return RunContext(
            run_id=run_id,
            run_dir=self.store.root / run_id,
            options=options,
            report=report,
            should_stop=should_stop,
        )

    def _outcome(self, state: RunState, result: object) -> Outcome | None:
        if not isinstance(result, PipelineResult):
            raise PipelineContractError(f"pipeline returned {type(result).__name__}, not PipelineResult")
        try:
            status = RunStatus(result.status)
        except ValueError:
            status = RunStatus.FAILED
        if status not in RESULT_STATUSES:
            raise PipelineContractError(f"pipeline returned status {result.status!r}")
        if status is not RunStatus.STOPPED and (
            result.final_markdown is None or result.context_bundle is None
        ):
            raise PipelineContractError("a completed result must carry final_markdown and context_bundle")
        reason = result.finish_reason
        if status is RunStatus.STOPPED:
            current = self.store.get(state.run_id)
            if current.cancel_requested_at is not None:
                reason = "cancelled"
            elif state.deadline_at and utc_now() > parse_iso(state.deadline_at):
                reason = "timeout"
            elif self._stopping_pipelines.is_set():
                self._interrupt(state.run_id, "The server shut down before the run finished.")
                return None
        gaps = [gap.as_dict() for gap in result.gaps]
        return Outcome(status, reason, result.final_markdown, result.context_bundle, gaps)

    def _interrupt(self, run_id: str, message: str) -> None:
        self.store.fail(run_id, RunError(type="Interrupted", message=message), "interrupted")

    # -- background upkeep --------------------------------------------------------------------

    def _maintain(self) -> None:
        last_reap = time.monotonic()
        while not self._closing.wait(self.heartbeat_interval_s):
            try:
                self.beat()
                if time.monotonic() - last_reap >= self.reap_interval_s:
                    last_reap = time.monotonic()
                    self.maintain_once()
            except Exception:  # the upkeep thread's boundary: log and keep beating
                logger.exception("maintenance pass failed")

    def beat(self) -> None:
        with self._guard:
            running = list(self._running)
        for run_id in running:
            self.store.touch_heartbeat(run_id)

    def maintain_once(self) -> None:
        """Reap orphans, overdue and expired runs, then pick up queued runs nobody is running."""
        self._passes += 1
        if self._passes % RECONCILE_EVERY_PASSES == 0:
            # A process that died between creating a run folder and indexing it left a run only
            # the folders know about; live processes find it here, not just at start-up.
            self.reaper.reconcile_index()
        self.reaper.reap()
        self.store.index.expire_idempotency_keys()
        for run_id in self.store.index.with_status(RunStatus.QUEUED.value):
            self.submit(run_id)
