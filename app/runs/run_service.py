"""The run service: what the routes ask for, composed from the store, the executor and upkeep."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import orjson

from app.config import Settings
from app.modules.contract import Pipeline
from app.runs.annotations import Annotations
from app.runs.answer_versions import AnswerVersions
from app.runs.api_keys import ApiKey, KeyRing
from app.runs.cpu_placement import CpuPlacement
from app.runs.document_paths import resolve_markdown_path
from app.runs.errors import (
    EditsWouldBeLostError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    QueueFullError,
    RunGoneError,
    RunIdConflictError,
    RunNotFinishedError,
    RunNotFoundError,
    RunStateUnreadableError,
    WebhookUrlRefusedError,
)
from app.runs.executor import Executor
from app.runs.quotas import QuotaGate, check_rate
from app.runs.request_gate import RequestGate
from app.runs.run_ids import new_run_id
from app.runs.run_index import DAMAGED
from app.runs.run_listing import Page, list_page
from app.runs.run_reaper import RunReaper
from app.runs.run_state import RunState, RunStatus
from app.runs.run_store import META_DIR
from app.runs.status_cache import StatusView
from app.runs.storage import open_rate_log, open_store
from app.runs.store_writer import Change, Prepared
from app.runs.thread_executor import thread_executor
from app.runs.upkeep import Upkeep
from app.runs.webhooks import WebhookDispatcher, read_record

API_PREFIX = "/api/v1"
QUEUE_COUNT_TTL_S = 0.05


def run_links(run_id: str) -> dict[str, str]:
    base = f"{API_PREFIX}/runs/{run_id}"
    return {
        "status_url": f"{base}/status",
        "output_url": f"{base}/output",
        "context_url": f"{base}/context",
    }


def extra_links(run_id: str) -> dict[str, str]:
    base = f"{API_PREFIX}/runs/{run_id}"
    return {"events_url": f"{base}/events", "cancel_url": f"{base}/cancel"}


def scope_of(caller: ApiKey | None) -> str | None:
    """Whose runs a caller sees: one key's, or (no keys, or an admin key) everyone's."""
    return None if caller is None or caller.admin else caller.id


def key_digest(key: str) -> str:
    """What a run records of the Idempotency-Key that created it (never the key itself)."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Accepted:
    state: RunState
    created: bool


class RunService:
    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline | None = None,
        on_finished: Callable[[RunState], None] | None = None,
        requests: RequestGate | None = None,
    ) -> None:
        """`requests` counts the requests this process answers (see request_gate)."""
        self.settings = settings
        self.requests = requests
        self.placement = CpuPlacement(settings.pin_cpu)
        self.store = open_store(settings)
        self.keys = KeyRing(self.store.root / META_DIR)
        self.answers = AnswerVersions(self.store)
        self.annotations = Annotations(self.answers)
        self.rates = open_rate_log(settings, self.store)
        self.quotas = QuotaGate(self.store.index, self.store.root / META_DIR, self.store.locks, 5)
        self.webhooks = WebhookDispatcher(
            self.store, settings, self._webhook_secret, lambda run_id: run_links(run_id)["status_url"]
        )

        def finished(state: RunState) -> None:
            if state.webhook_url:
                self.webhooks.wake()
            if on_finished is not None:
                on_finished(state)

        self.executor = self._executor(pipeline, finished)
        self.reaper = RunReaper(
            self.store,
            settings.orphan_after_s,
            settings.timeout_grace_s,
            self.store.retention,
            host_id=settings.host_id,
            retry=self._retry,
        )
        self.upkeep = Upkeep(self.reaper, self.executor, settings.reap_interval_s)
        self._queue_guard = threading.Lock()
        self._queued = (float("-inf"), 0, 0)

    def _executor(
        self, pipeline: Pipeline | None, on_finished: Callable[[RunState], None] | None
    ) -> Executor:
        """Threads in this process, or Celery workers elsewhere (which load the pipeline)."""
        settings = self.settings
        if settings.executor == "celery":
            from app.runs.celery_app import celery_app
            from app.runs.celery_executor import CeleryExecutor

            return CeleryExecutor(
                celery_app(settings), settings.queue, settings.requeue_after_s, settings.orphan_after_s
            )
        return thread_executor(
            settings,
            self.store,
            pipeline,
            on_finished=on_finished,
            requests=self.requests,
            placement=self.placement,
        )

    def _retry(self, orphan: RunState) -> bool:
        """An orphan with attempts left goes back to the executor, which takes it over."""
        if orphan.attempt >= self.settings.max_attempts:
            return False
        self.executor.resubmit(orphan.run_id)
        return True

    def _webhook_secret(self, key_id: str | None) -> str | None:
        """Each key signs its own runs' webhooks; runs made without a key use the setting's."""
        if key_id is not None:
            key = self.keys.load(key_id)
            if key is not None:
                return key.webhook_secret
        secret = self.settings.webhook_secret
        return secret.get_secret_value() if secret is not None else None

    def start(self) -> None:
        self.placement.start()  # first: the threads started below stay with the pinned ones
        self.executor.start()
        self.upkeep.start()
        self.webhooks.start()

    def shutdown(self) -> None:
        self.upkeep.stop()
        self.webhooks.stop()
        self.executor.shutdown()
        self.placement.stop()
        self.store.close()

    def is_alive(self) -> bool:
        return self.executor.is_alive() and self.upkeep.is_alive()

    def accept(
        self,
        request: dict[str, Any],
        idempotency_key: str | None = None,
        caller: ApiKey | None = None,
        parent_run_id: str | None = None,
    ) -> Accepted:
        """Validate, persist durably, queue for execution; never waits for the pipeline."""
        if self.quotas.limits_runs(caller):
            assert caller is not None
            with self.quotas.admitting(caller):  # held until the run is in the index
                return self.submit_accept(request, idempotency_key, caller, parent_run_id).result()
        return self.submit_accept(request, idempotency_key, caller, parent_run_id).result()

    def submit_accept(
        self,
        request: dict[str, Any],
        idempotency_key: str | None = None,
        caller: ApiKey | None = None,
        parent_run_id: str | None = None,
    ) -> Future[Accepted]:
        """`accept` on the store's writer thread, so that creations share its group commits.
        A key with run quotas goes through `accept` instead (it waits on a lock)."""
        return self.store.writer.submit(
            lambda: self._prepare_accept(request, idempotency_key, caller, parent_run_id)
        )

    def regeneration(
        self,
        run_id: str,
        feedback: str,
        new_run_id: str | None,
        caller: ApiKey | None,
        force: bool = False,
    ) -> dict[str, Any]:
        """The request of a new run that answers a finished run's question again, with feedback.
        An answer people have edited is regenerated only when `force` says to: the new run does
        not carry the edits."""
        view = self.view(run_id, caller)
        if not view.state.status.is_terminal:
            raise RunNotFinishedError(run_id, view.state.status.value, "answer (and so its regeneration)")
        edited = self.answers.summary(run_id)["edited_sections"] if view.state.has_output else []
        if edited and not force:
            raise EditsWouldBeLostError(run_id, edited)
        request = {k: v for k, v in self.store.request_of(view.state).items() if k != "run_id"}
        request["feedback"] = feedback
        if new_run_id is not None:
            request["run_id"] = new_run_id
        return request

    def webhook_allowed(self, caller: ApiKey | None) -> None:
        """A webhook needs a secret to be signed with: the caller's key's, or the setting's."""
        if caller is None and self.settings.webhook_secret is None:
            raise WebhookUrlRefusedError(
                "webhook_url needs a signing secret: turn on API keys (RUNLANE_AUTH=api-key) "
                "or set RUNLANE_WEBHOOK_SECRET."
            )

    def _prepare_accept(
        self, request: dict[str, Any], key: str | None, caller: ApiKey | None, parent: str | None = None
    ) -> Prepared[Accepted]:
        resolve_markdown_path(
            self.settings.documents_root,
            request.get("markdown_path"),
            excluded=self.store.root,
            allowed=caller.documents if caller is not None else None,
        )
        timeout_s = self._timeout(request.get("timeout_s"))
        key_id = caller.id if caller is not None else None
        if key is not None:
            # Idempotency-Keys are per API key: two owners may pick the same one.
            scoped = key if key_id is None else f"{key_id}:{key}"
            return self._prepare_idempotent(request, scoped, timeout_s, key_id, parent)
        self._check_queue()
        state = self.store.new_state(
            request, request.get("run_id"), timeout_s, key_id=key_id, parent_run_id=parent
        )

        def created(change: Change | None) -> Accepted:
            if change is not None and change.published:
                self.executor.submit(state.run_id)
                return Accepted(state, created=True)
            if request.get("run_id") is not None:
                raise self._conflict(state.run_id, key_id)
            # A generated id collided: try another.
            retried = self.store.create(request, None, timeout_s, key_id=key_id, parent_run_id=parent)
            self.executor.submit(retried.run_id)
            return Accepted(retried, created=True)

        return self.store.creation(state), created

    def _conflict(self, run_id: str, key_id: str | None) -> Exception:
        """Why a chosen run_id is taken.  Ids are one namespace across keys; to another key's
        caller the answer is the same 409 whoever holds the id, alive or deleted, so that it
        tells nothing of that run but that its id is taken."""
        error = self.store.conflict_error(run_id)
        if key_id is not None and isinstance(error, RunGoneError) and error.key_id != key_id:
            return RunIdConflictError(run_id)
        return error

    def _prepare_idempotent(
        self,
        request: dict[str, Any],
        key: str,
        timeout_s: float,
        key_id: str | None = None,
        parent: str | None = None,
    ) -> Prepared[Accepted]:
        """A key only ever answers with the run it created itself."""
        body_hash = hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()
        digest = key_digest(key)
        run_id = request.get("run_id") or new_run_id()
        index = self.store.index
        if not index.claim_idempotency_key(key, body_hash, run_id, self.settings.idempotency_ttl_s):
            record = index.idempotency_record(key)
            if record is None:  # expired between the two reads: treat as a fresh key
                return self._prepare_idempotent(request, key, timeout_s, key_id, parent)
            if record[0] != body_hash:
                raise IdempotencyKeyReusedError(key)
            run_id = record[1]
            existing = self._made_by(run_id, digest)
            if existing is not None:
                return None, lambda _: Accepted(existing, created=False)
        self._check_queue()
        state = self.store.new_state(
            request, run_id, timeout_s, idempotency_key=digest, key_id=key_id, parent_run_id=parent
        )

        def created(change: Change | None) -> Accepted:
            if change is not None and change.published:
                self.executor.submit(run_id)
                return Accepted(state, created=True)
            try:
                existing = self._made_by(run_id, digest)
            except RunIdConflictError:
                index.release_idempotency_key(key, run_id)  # it made nothing: free it again
                raise self._conflict(run_id, key_id) from None
            if existing is None:
                raise self._conflict(run_id, key_id)
            return Accepted(existing, created=False)

        return self.store.creation(state), created

    def _made_by(self, run_id: str, digest: str) -> RunState | None:
        """The run, if this key created it; None while it does not exist yet.  A run of the
        same id made otherwise is a conflict, never an answer to this key."""
        try:
            state = self.store.get(run_id)
        except RunNotFoundError:
            return None  # the first request died before creating its run: create it now
        if state.idempotency_key != digest:
            raise RunIdConflictError(run_id)
        return state

    def view(self, run_id: str, caller: ApiKey | None) -> StatusView:
        """The run's status, if the caller may see it; another key's run is unknown to it,
        with the very error an unknown run gets (deleted, damaged or not)."""
        scope = scope_of(caller)
        if scope is None:
            return self.store.status_view(run_id)
        try:
            view = self.store.status_view(run_id)
        except RunGoneError as exc:
            if exc.key_id != scope:
                raise RunNotFoundError(run_id) from None
            raise
        except RunStateUnreadableError:
            raise RunNotFoundError(run_id) from None  # whose it is cannot be told: an admin's to mend
        if view.state.key_id != scope:
            raise RunNotFoundError(run_id)
        return view

    def _check_owner(self, run_id: str, caller: ApiKey | None) -> None:
        """Before acting on a run: a key that may not see it gets what an unknown run gets."""
        if scope_of(caller) is not None:
            self.view(run_id, caller)

    def cancel(self, run_id: str, caller: ApiKey | None = None) -> RunState:
        self._check_owner(run_id, caller)
        state = self.store.request_cancel(run_id)
        if state.status is RunStatus.RUNNING:
            self.executor.request_stop(run_id)
        return state

    def delete(self, run_id: str, caller: ApiKey | None = None) -> None:
        self._check_owner(run_id, caller)
        self.store.delete(run_id)

    def detail(self, run_id: str, caller: ApiKey | None = None) -> dict[str, Any]:
        view = self.view(run_id, caller)
        request = self.store.request_of(view.state)
        return {
            **view.state.public_status(),
            "request": request,
            "key_id": view.state.key_id,
            "children": self.store.index.children(run_id, scope_of(caller)),
            "webhook": read_record(self.store, view.state),
            "answer_versions": self.answers.summary(run_id) if view.state.has_output else None,
            "annotations": self.annotations.listing(run_id),
            **run_links(run_id),
            **extra_links(run_id),
        }

    def list_runs(
        self, status: RunStatus | None, limit: int, cursor: str | None, caller: ApiKey | None = None
    ) -> Page:
        return list_page(self.store, status, limit, cursor, key_id=scope_of(caller))

    def counts(self, caller: ApiKey | None = None) -> dict[str, int]:
        scope = scope_of(caller)
        if scope is None:
            counted = self.store.index.counts()
            return {status: counted.get(status, 0) for status in [*RunStatus, DAMAGED]}
        # A key's own runs; damaged runs have no readable owner, so they count for admins only.
        return {**{s.value: self.store.index.count(s.value, key_id=scope) for s in RunStatus}, DAMAGED: 0}

    def check_rate(self, caller: ApiKey) -> None:
        check_rate(self.rates, caller)

    def _timeout(self, requested: object) -> float:
        if requested is None:
            return min(self.settings.default_timeout_s, self.settings.max_timeout_s)
        value = float(requested)  # type: ignore[arg-type]
        if value > self.settings.max_timeout_s:
            raise InvalidRequestError(f"timeout_s must be at most {self.settings.max_timeout_s:g} seconds.")
        return value

    def _check_queue(self) -> None:
        """Backpressure.  Far from the limit, the index is counted at most every
        QUEUE_COUNT_TTL_S and in between the count follows what this process accepted and
        dequeued, so a burst costs one count; past half the limit, every POST counts."""
        limit = self.settings.max_queued
        with self._queue_guard:
            counted_at, queued, dequeued = self._queued
            now, moved_on = time.monotonic(), self.store.dequeued
            queued = max(0, queued - (moved_on - dequeued))
            # Other processes (API replicas) accept runs too: near the limit, every POST counts.
            if now - counted_at > QUEUE_COUNT_TTL_S or 2 * (queued + 1) > limit:
                counted_at, queued = now, self.store.index.count(RunStatus.QUEUED.value, up_to=limit)
            self._queued = (counted_at, queued, moved_on)
            if queued >= limit:
                raise QueueFullError(self.settings.max_queued, self.settings.poll_interval_s)
            self._queued = (counted_at, queued + 1, moved_on)
