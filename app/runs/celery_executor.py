"""The Celery executor's sending side: API processes persist runs and send their ids to workers."""

from __future__ import annotations

import logging
import queue
import threading
import time

from celery import Celery

from app.runs.celery_app import TASK_NAME

logger = logging.getLogger("runlane.executor")

_STOP = ""
PRUNE_EVERY_S = 60.0
RETRY_AFTER_S = 1.0


class CeleryExecutor:
    """Sends run ids to the broker from its own thread, so a POST never waits on the broker
    (and a broker that is down never fails one: the run is durable and stays queued).

    A run id is sent again only after `resend_after_s`: upkeep re-offers queued runs that old,
    which brings back runs whose message a broker lost.  Duplicates are harmless: only one
    claim of a run succeeds, and workers drop the rest.
    """

    def __init__(
        self, app: Celery, queue_name: str, resend_after_s: float, retry_after_s: float | None = None
    ) -> None:
        self.app = app
        self.queue_name = queue_name
        self.resend_after_s = resend_after_s
        self.retry_after_s = resend_after_s if retry_after_s is None else retry_after_s
        self._outbox: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._sent: dict[str, float] = {}
        self._guard = threading.Lock()
        self._sender: threading.Thread | None = None
        self._closing = threading.Event()
        self._pruned_at = time.monotonic()

    def start(self) -> None:
        self._sender = threading.Thread(target=self._send_forever, name="runlane-sender", daemon=True)
        self._sender.start()

    def is_alive(self) -> bool:
        return not self._closing.is_set() and self._sender is not None and self._sender.is_alive()

    def submit(self, run_id: str) -> None:
        self._offer(run_id, self.resend_after_s)

    def resubmit(self, run_id: str) -> None:
        """Offer an orphaned run again, for a worker to take over (again after `retry_after_s`
        if no worker has taken it by then)."""
        self._offer(run_id, self.retry_after_s)

    def _offer(self, run_id: str, unless_sent_within_s: float) -> None:
        now = time.monotonic()
        with self._guard:
            sent_at = self._sent.get(run_id)
            if self._closing.is_set() or (sent_at is not None and now - sent_at < unless_sent_within_s):
                return
            self._sent[run_id] = now
        self._outbox.put(run_id)

    def request_stop(self, run_id: str) -> None:
        """Nothing to send: the worker's pipeline reads the cancel from the shared run store."""

    def shutdown(self) -> None:
        self._closing.set()
        self._outbox.put(_STOP)
        if self._sender is not None:
            self._sender.join(timeout=10.0)

    def _send_forever(self) -> None:
        while (run_id := self._outbox.get()) != _STOP:
            self.send(run_id)
            self._prune()

    def send(self, run_id: str) -> bool:
        try:
            self.app.send_task(TASK_NAME, args=[run_id], queue=self.queue_name)
        except Exception:  # the sender thread's boundary: the run stays queued; try again
            logger.warning(
                "run not sent to the broker; trying again", extra={"run_id": run_id}, exc_info=True
            )
            if not self._closing.wait(RETRY_AFTER_S):
                self._outbox.put(run_id)
            return False
        return True

    def _prune(self) -> None:
        now = time.monotonic()
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        with self._guard:
            keep = max(self.resend_after_s, self.retry_after_s)
            self._sent = {key: at for key, at in self._sent.items() if now - at < keep}
