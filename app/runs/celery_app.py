"""The Celery application both sides share: broker settings tuned for long runs, one task name."""

from __future__ import annotations

from typing import Any

from celery import Celery

from app.config import Settings

TASK_NAME = "runlane.execute_run"
RESTORE_INTERVAL_MAX_S = 10.0


def transport_options(settings: Settings) -> dict[str, Any]:
    """Redis redelivers what was not acknowledged within the visibility timeout; the sweep that
    does it runs often enough to honour a short one."""
    visibility = settings.visibility_timeout_s
    options: dict[str, Any] = {
        "visibility_timeout": visibility,
        "unacked_restore_interval": max(1.0, min(RESTORE_INTERVAL_MAX_S, visibility / 2)),
        "unacked_restore_throttle": 1,
        # A broker that vanishes without closing the socket must not hang a publish for ever.
        "socket_timeout": 10.0,
        "socket_connect_timeout": 5.0,
    }
    if settings.broker_key_prefix:
        options["global_keyprefix"] = settings.broker_key_prefix
    return options


def celery_app(settings: Settings) -> Celery:
    """A message carries a run id only: the run store stays the one truth about a run."""
    app = Celery("runlane", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=settings.queue,
        task_serializer="json",
        accept_content=["json"],
        # Acknowledge after the run, take one message at a time, hand a message back when its
        # worker process dies: a run is lost by no crash; a duplicate is refused by the claim.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # The lifecycle lives in the run store; Celery keeps no results and no task events.
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        worker_send_task_events=False,
        worker_enable_remote_control=False,
        # A lost broker connection must not kill running pipelines: their redelivered messages
        # find the run claimed by a live owner and are dropped.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options(settings),
    )
    return app
