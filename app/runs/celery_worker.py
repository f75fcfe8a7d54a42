"""The Celery executor's working side: `runlane worker` processes claim and execute runs.

Each worker process (a Celery pool child) opens the shared run store once and executes every
delivered run id on the task's own thread, with heartbeats, through the same claim as the
embedded executor: a delivery runs only if its claim succeeds, so a broker's redelivery of a
run that a live worker owns is dropped, and one whose owner died is taken over or left to the
reaper, by RUNLANE_MAX_ATTEMPTS.
"""

from __future__ import annotations

import os
from typing import Any

from celery import signals

from app.config import Settings
from app.runs.celery_app import TASK_NAME, celery_app
from app.runs.storage import open_store
from app.runs.thread_executor import ThreadExecutor, thread_executor

_settings: Settings | None = None
_executors: dict[int, ThreadExecutor] = {}  # by pid: a forked child opens its own


def process_executor() -> ThreadExecutor:
    """This process's store and executor, opened at its first run (never before a fork)."""
    pid = os.getpid()
    executor = _executors.get(pid)
    if executor is None:
        assert _settings is not None, "run_worker sets the settings before the pool starts"
        # One run at a time, on no pinned CPU: a disk worker process would only add a hop.
        store = open_store(_settings.model_copy(update={"disk_workers": 0}))
        executor = thread_executor(_settings, store, max_workers=1)
        executor.start()
        _executors[pid] = executor
    return executor


def execute_run(run_id: str) -> None:
    """The task: run one run here if this process wins its claim; anything else is dropped."""
    process_executor().execute_here(run_id)


def _open_process(**_: Any) -> None:
    process_executor()


def _close_process(**_: Any) -> None:
    executor = _executors.pop(os.getpid(), None)
    if executor is not None:
        executor.shutdown(stop_wait_s=0.0)
        executor.store.close()


def run_worker(settings: Settings, concurrency: int, queues: list[str], loglevel: str = "INFO") -> None:
    """A real Celery worker (prefork pool) consuming `queues`; blocks until it is stopped."""
    global _settings
    _settings = settings
    app = celery_app(settings)
    app.task(name=TASK_NAME, ignore_result=True)(execute_run)
    signals.worker_process_init.connect(_open_process, weak=False)
    signals.worker_process_shutdown.connect(_close_process, weak=False)
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--queues={','.join(queues)}",
            f"--hostname=runlane-{os.getpid()}@{settings.host_id}",
            f"--loglevel={loglevel}",
            # Nothing here needs worker-to-worker chatter: the run store is the one truth.
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ]
    )
