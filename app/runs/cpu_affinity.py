"""CPU affinity: a server process's threads kept together on one CPU of their own (`pin_cpu`).

The GIL lets one thread of a process run Python at a time, so a server's threads (event loop,
store writers, executor) gain little from several CPUs; what they pay is the hand-off.  Each
time one of them passes the GIL or a result to another that sleeps on a different CPU, the
kernel wakes that CPU, which under a hypervisor costs an exit and an interrupt: on the
benchmark VM those wake-ups were a quarter of a no-op run's CPU.  On one CPU a hand-off is a
plain context switch.  A lock file per CPU spreads the processes of one host (`uvicorn
--workers`) over different CPUs; a process that finds every CPU taken stays unpinned.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
from pathlib import Path

logger = logging.getLogger("runlane.cpu")

_held: list[int] = []  # the lock of the CPU this process holds, open until it exits
_pinned: list[int] = []


def default_lock_dir() -> Path:
    """Per user, so that one user's locks never block another's processes."""
    return Path(tempfile.gettempdir()) / f"runlane-cpu-{os.getuid()}"


def pin_to_one_cpu(lock_dir: Path | None = None) -> int | None:
    """Move every thread of this process, and so every thread they start later, onto one CPU
    no other process holds a lock for in `lock_dir`; returns that CPU.  None, with nothing
    changed, where the platform cannot pin, the process may use one CPU only already, or every
    CPU it may use is taken.  A second call answers the first's CPU."""
    if _pinned:
        return _pinned[0]
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    folder = lock_dir or default_lock_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for cpu in allowed:
        fd = os.open(folder / f"cpu-{cpu}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            # Released by the kernel when the process dies, however it dies.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _held.append(fd)
        _move_threads(cpu)
        _pinned.append(cpu)
        logger.info("threads pinned to one CPU", extra={"cpu": cpu})
        return cpu
    logger.warning("every CPU is held by another Runlane process: threads left unpinned")
    return None


def _move_threads(cpu: int) -> None:
    """Every thread, including one started by a thread that was moved only just now."""
    moved: set[int] = set()
    while pending := {int(name) for name in os.listdir("/proc/self/task")} - moved:
        for thread_id in pending:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.sched_setaffinity(thread_id, {cpu})
        moved |= pending
