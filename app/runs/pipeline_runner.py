"""Running one claimed run's pipeline to its terminal state, whatever executes it."""

from __future__ import annotations

import importlib
import logging
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from app.config import Settings
from app.modules.contract import Pipeline, PipelineResult, RunContext, RunOptions, pipeline_stages
from app.runs.document_paths import resolve_markdown_path
from app.runs.errors import RunGoneError, RunNotFoundError, RunStateUnreadableError
from app.runs.request_gate import RequestGate
from app.runs.run_index import DAMAGED
from app.runs.run_owner import current_owner, is_orphaned
from app.runs.run_state import (
    RunError,
    RunState,
    RunStatus,
    finish_reason_for,
    gap_kind_for,
    parse_iso,
    utc_now,
)
from app.runs.run_store import Outcome, RunStore

logger = logging.getLogger("runlane.executor")

RESULT_STATUSES = {RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_GAPS, RunStatus.STOPPED}
SHUTDOWN_MESSAGE = "The server shut down before the run finished."


class PipelineContractError(Exception):
    """A pipeline returned something the contract does not allow."""


class UnrecordedFailureError(Exception):
    """A run failed, and writing that down failed too; `error` is what it failed of."""

    def __init__(self, run_id: str, error: RunError) -> None:
        super().__init__(f"run {run_id} failed ({error.type}) and the failure could not be saved")
        self.error = error


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


def error_of(exc: BaseException) -> RunError:
    """The real cause, as clients see it: the exception's type and its own words."""
    return RunError(type=type(exc).__name__, message=str(exc) or type(exc).__name__)


@dataclass(frozen=True)
class Attempts:
    """When a running run may be taken over: its owner is gone and it has attempts left."""

    host_id: str
    orphan_after_s: float
    max_attempts: int = 1


class PipelineRunner:
    def __init__(
        self,
        store: RunStore,
        pipeline: Pipeline,
        documents_root: Path,
        attempts: Attempts | None = None,
        requests: RequestGate | None = None,
    ) -> None:
        """With `requests`, the pipeline waits at its checkpoints while requests are answered."""
        self.store = store
        self.pipeline = pipeline
        self.documents_root = documents_root
        self.stages = pipeline_stages(pipeline)
        self.attempts = attempts or Attempts(socket.gethostname(), orphan_after_s=30.0)
        self.requests = requests or RequestGate(0.0)

    def may_retry(self, state: RunState) -> bool:
        return state.attempt < self.attempts.max_attempts

    def may_take_over(self, state: RunState) -> bool:
        attempts = self.attempts
        if not self.may_retry(state):
            return False
        age = self.store.heartbeat_age_s(state.run_id)
        return is_orphaned(state, age, attempts.orphan_after_s, attempts.host_id)

    def claim(self, run_id: str) -> RunState | None:
        """queued -> running for this process, or the next attempt of a run whose owner died;
        None when the run is gone, not queued, or still owned by a live executor."""
        try:
            owner = current_owner(self.attempts.host_id)
            return self.store.claim(run_id, owner, take_over=self.may_take_over)
        except (RunNotFoundError, RunGoneError):
            return None
        except RunStateUnreadableError:
            self.store.index.mark(run_id, DAMAGED)  # reported once, not picked up again
            return None

    def execute(
        self, state: RunState, stopping: threading.Event, pipeline_done: Callable[[], None] = lambda: None
    ) -> RunState | None:
        """Run a claimed run's pipeline and record how it ended; None if it ended otherwise.
        `pipeline_done` is called as soon as the pipeline has returned or raised.

        Any error, the pipeline's or the store's (a full disk while saving artifacts), fails
        the run with its real cause.  Only an error while recording that failure escapes.
        """
        run_id = state.run_id
        logger.info("run started", extra={"run_id": run_id})
        try:
            try:
                result = self.pipeline(self._context(state, stopping))
            finally:
                pipeline_done()
            outcome = self._outcome(state, result, stopping)
            finished = self.store.finish(run_id, outcome, state.attempt) if outcome is not None else None
            if outcome is not None and finished is None:
                logger.warning("result discarded: run ended meanwhile", extra={"run_id": run_id})
        except Exception as exc:  # the thread boundary: any error ends its run, with its cause
            logger.exception("run failed", extra={"run_id": run_id, "error": str(exc)})
            error = error_of(exc)
            try:
                finished = self.store.fail(
                    run_id, error, "error", traceback.format_exc(), attempt=state.attempt
                )
            except Exception as failure:  # the executor keeps the cause and retries the write
                raise UnrecordedFailureError(run_id, error) from failure
        if finished is not None:
            logger.info("run finished", extra={"run_id": run_id, "status": finished.status.value})
        return finished

    def _context(self, state: RunState, stopping: threading.Event) -> RunContext:
        request = self.store.request_of(state)
        options = RunOptions(
            question=str(request["question"]),
            markdown_path=resolve_markdown_path(
                self.documents_root, request.get("markdown_path"), excluded=self.store.root
            ),
            enable_sql=bool(request.get("enable_sql", False)),
            log_llm_payload=bool(request.get("log_llm_payload", False)),
            feedback=str(request["feedback"]) if request.get("feedback") else None,
        )
        run_id, attempt = state.run_id, state.attempt
        deadline = parse_iso(state.deadline_at) if state.deadline_at else None
        stages = self.stages
        requests = self.requests

        def report(stage: str, message: str = "", fraction: float | None = None) -> None:
            requests.wait_quiet()
            self.store.record_progress(run_id, stage, message, fraction, stages, attempt)

        def should_stop() -> bool:
            requests.wait_quiet()
            if stopping.is_set() or (deadline is not None and utc_now() > deadline):
                return True
            current = self.store.get(run_id)
            return (
                current.cancel_requested_at is not None
                or current.status is not RunStatus.RUNNING
                or current.attempt != attempt
            )

        return RunContext(
            run_id=run_id,
            run_dir=self.store.root / run_id,
            options=options,
            report=report,
            should_stop=should_stop,
        )

    def _outcome(self, state: RunState, result: object, stopping: threading.Event) -> Outcome | None:
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
        reason: str = finish_reason_for(status, result.finish_reason)
        if status is RunStatus.STOPPED:
            current = self.store.get(state.run_id)
            if current.cancel_requested_at is not None:
                reason = "cancelled"
            elif state.deadline_at and utc_now() > parse_iso(state.deadline_at):
                reason = "timeout"
            elif stopping.is_set():
                self.interrupt(state.run_id, SHUTDOWN_MESSAGE, state.attempt)
                return None
        gaps = [{**gap.as_dict(), "kind": gap_kind_for(gap.kind).value} for gap in result.gaps]
        said = result.finish_reason if result.finish_reason != reason else None
        return Outcome(status, reason, result.final_markdown, result.context_bundle, gaps, said)

    def interrupt(self, run_id: str, message: str, attempt: int | None = None) -> RunState | None:
        error = RunError(type="Interrupted", message=message)
        return self.store.fail(run_id, error, "interrupted", attempt=attempt)
