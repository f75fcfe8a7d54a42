"""Webhooks: the signed event a finished run sends to its `webhook_url`, retried with backoff.

The index holds when each delivery is due; any server process may deliver it, and takes it by a
compare-and-set of that time to a lease, so one attempt is made at a time and an attempt cut
short by a crash is made again once its lease runs out.  Every attempt is recorded in the run's
folder (`webhook.json`) before the next is scheduled, so a restart neither loses a pending
delivery nor repeats a finished one.  Signatures follow the Standard Webhooks specification.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import orjson

from app import atomic_file
from app.config import Settings
from app.runs.errors import RunGoneError, RunNotFoundError, RunStateUnreadableError, WebhookUrlRefusedError
from app.runs.regular_files import read_regular
from app.runs.run_index import WEBHOOK_DONE
from app.runs.run_state import RunState, iso, utc_now
from app.runs.run_store import RunStore
from app.runs.state_file import STATE_FILE
from app.runs.webhook_targets import post, resolve

WEBHOOK_FILE = "webhook.json"
EVENT_TYPE = "run.finished"
POLL_S = 0.5
BATCH = 16
LEASE_EXTRA_S = 30.0

logger = logging.getLogger("runlane.webhooks")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: v1, then base64 HMAC-SHA256 of `id.timestamp.body`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.digest(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac).decode()


def event_body(state: RunState, status_url: str) -> bytes:
    return orjson.dumps(
        {
            "type": EVENT_TYPE,
            "run_id": state.run_id,
            "status": state.status.value,
            "finish_reason": state.finish_reason,
            "status_url": status_url,
            "occurred_at": state.completed_at,
        }
    )


def read_record(store: RunStore, state: RunState) -> dict[str, Any] | None:
    """The run's delivery record (what the run detail shows); None for a run without webhook."""
    url = state.webhook_url
    if url is None:
        return None
    try:
        record = orjson.loads(read_regular(f"{store.root}/{state.run_id}/{WEBHOOK_FILE}")[0])
    except (OSError, orjson.JSONDecodeError):
        record = None
    if not isinstance(record, dict):
        status = "pending" if state.status.is_terminal else "waiting"
        record = {"id": f"msg_{state.run_id}", "url": url, "status": status, "attempts": []}
    return record


class WebhookDispatcher:
    """Delivers due webhooks from a polling thread, each attempt on a small pool of its own so a
    slow receiver never holds up another run's delivery, nor any run."""

    def __init__(
        self,
        store: RunStore,
        settings: Settings,
        secret_of: Callable[[str | None], str | None],
        status_url: Callable[[str], str],
    ) -> None:
        self.store = store
        self.settings = settings
        self._secret_of = secret_of
        self._status_url = status_url
        self._lease_ns = int((settings.webhook_timeout_s + LEASE_EXTRA_S) * 1e9)
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="runlane-webhook")
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runlane-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.dispatch_due()
            except Exception:  # a thread boundary: an index hiccup must not end deliveries
                logger.exception("webhook dispatch failed")
            self._wake.wait(POLL_S)
            self._wake.clear()

    def dispatch_due(self) -> int:
        """Take every due delivery this process can win; returns how many it started."""
        now = time.time_ns()
        started = 0
        for run_id, due in self.store.index.webhooks_due(now, BATCH):
            lease = now + self._lease_ns
            if self.store.index.reschedule_webhook(run_id, due, lease):
                self._pool.submit(self._guarded_attempt, run_id, lease)
                started += 1
        return started

    def _guarded_attempt(self, run_id: str, lease: int) -> None:
        try:
            self.attempt(run_id, lease)
        except Exception:  # a thread boundary: log it with the run; the lease brings it back
            logger.exception("webhook attempt failed", extra={"run_id": run_id})

    def attempt(self, run_id: str, lease: int) -> None:
        """One delivery attempt of a run's webhook, recorded, then the next one scheduled."""
        try:
            state = self.store.get(run_id)
        except (RunNotFoundError, RunGoneError, RunStateUnreadableError):
            self.store.index.reschedule_webhook(run_id, lease, WEBHOOK_DONE)  # nothing left to tell
            return
        record = read_record(self.store, state)
        if record is None or record["status"] in ("delivered", "failed"):
            self.store.index.reschedule_webhook(run_id, lease, WEBHOOK_DONE)
            return
        number = len(record["attempts"]) + 1
        outcome, retry = self._deliver(state, record)
        outcome = {"attempt": number, "at": iso(utc_now()), **outcome}
        record["attempts"].append(outcome)
        next_ns = WEBHOOK_DONE
        if outcome.get("delivered"):
            record["status"] = "delivered"
        elif retry and number < self.settings.webhook_max_attempts:
            delay = self._backoff(number)
            next_ns = time.time_ns() + int(delay * 1e9)
            record["next_attempt_at"] = iso(utc_now() + timedelta(seconds=delay))
        else:
            record["status"] = "failed"
        if record["status"] != "pending":
            record.pop("next_attempt_at", None)
        with contextlib.suppress(RunNotFoundError), self.store.locked(run_id) as run_dir:
            if (run_dir / STATE_FILE).exists():
                atomic_file.write_json(run_dir / WEBHOOK_FILE, record)
        self.store.index.reschedule_webhook(run_id, lease, next_ns)

    def _deliver(self, state: RunState, record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """(what happened, whether trying again may help)."""
        secret = self._secret_of(state.key_id)
        if secret is None:
            return {"delivered": False, "error": "no signing secret for this run's API key"}, False
        body = event_body(state, self._status_url(state.run_id))
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Runlane-Webhooks",
            "webhook-id": record["id"],
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, record["id"], timestamp, body),
        }
        started = time.monotonic()
        try:
            target = resolve(record["url"], self.settings.webhook_allow_hosts)
            status = post(target, body, headers, self.settings.webhook_timeout_s)
        except WebhookUrlRefusedError as exc:
            return {"delivered": False, "error": exc.message}, False
        except (OSError, http.client.HTTPException) as exc:
            took = round((time.monotonic() - started) * 1000, 1)
            return {"delivered": False, "error": f"{type(exc).__name__}: {exc}", "duration_ms": took}, True
        took = round((time.monotonic() - started) * 1000, 1)
        outcome = {"delivered": 200 <= status < 300, "status_code": status, "duration_ms": took}
        return outcome, status >= 500

    def _backoff(self, attempts_made: int) -> float:
        """Exponential, capped, with full jitter on the upper half so retries spread out."""
        settings = self.settings
        ceiling = min(settings.webhook_backoff_max_s, settings.webhook_backoff_s * 2 ** (attempts_made - 1))
        return float(ceiling * random.uniform(0.5, 1.0))
