"""Who executes a run: this process's identity, and whether a recorded owner is still alive."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from app.runs.run_state import Owner, RunState


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
def _own_start_ticks(pid: int) -> float:
    # Keyed by pid, not cached once: a forked worker child is a new owner.
    return process_start_ticks(pid) or 0.0


def current_owner(host_id: str) -> Owner:
    pid = os.getpid()
    return Owner(host=host_id, pid=pid, process_started=_own_start_ticks(pid))


def owner_is_alive_here(owner: Owner, host_id: str) -> bool | None:
    """True/False for an owner on this host; None when it runs elsewhere and only heartbeats tell."""
    if owner.host != host_id:
        return None
    started = process_start_ticks(owner.pid)
    return started is not None and started == owner.process_started


def is_orphaned(state: RunState, heartbeat_age_s: float | None, orphan_after_s: float, host_id: str) -> bool:
    """Orphaned when its owner process is gone, or (owner elsewhere) its heartbeat is stale.
    A live owner on this host is never second-guessed: it settles its own runs."""
    if state.owner is None:
        return True
    alive = owner_is_alive_here(state.owner, host_id)
    if alive is not None:
        return not alive
    return heartbeat_age_s is None or heartbeat_age_s > orphan_after_s
