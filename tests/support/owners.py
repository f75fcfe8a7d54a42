"""Owners for tests: a process that has certainly exited, as a crashed server would be, and
runs claimed for an owner as its process would have left them."""

from __future__ import annotations

import socket
import subprocess
import sys

from app.runs.run_owner import process_start_ticks
from app.runs.run_state import Owner, RunStatus
from app.runs.run_store import RunStore
from tests.conftest import wait_until


def dead_owner() -> Owner:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    started = process_start_ticks(process.pid) or 1.0
    process.wait()
    return Owner(host=socket.gethostname(), pid=process.pid, process_started=started)


def claimed(store: RunStore, run_id: str, owner: Owner) -> None:
    """Claim a run for `owner` and wait for the index to say so, as it would long since for a
    process that died later: a claim's index row goes with the store writer's next batch."""
    assert store.claim(run_id, owner) is not None
    wait_until(
        lambda: run_id in store.index.with_status(RunStatus.RUNNING.value), what="the claim's index row"
    )
