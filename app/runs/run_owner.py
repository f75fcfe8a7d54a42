"""Who executes a run: this process's identity, and whether a recorded owner is still alive."""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

from app.runs.run_state import Owner


def process_start_ticks(pid: int) -> float | None:
    """The kernel's start time of a process, which tells a live pid from a reused one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; fields resume after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return float(fields[19])


@functools.cache
def current_owner() -> Owner:
    pid = os.getpid()
    return Owner(host=socket.gethostname(), pid=pid, process_started=process_start_ticks(pid) or 0.0)


def owner_is_alive_here(owner: Owner) -> bool | None:
    """True/False for an owner on this host; None when it runs elsewhere and only heartbeats tell."""
    if owner.host != socket.gethostname():
        return None
    started = process_start_ticks(owner.pid)
    return started is not None and started == owner.process_started
