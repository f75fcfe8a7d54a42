"""CPU affinity: which CPU a server process holds, and moving its threads onto CPUs.

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
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger("runlane.cpu")

# Affinity is per process, so the CPU locks are too: open until the process exits, or until
# the process moves to another CPU.
_held: dict[int, int] = {}  # CPU -> the open lock file descriptor


def can_pin() -> bool:
    """Whether this platform can pin and this process may use more than one CPU."""
    return hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1


def allowed_cpus() -> list[int]:
    """The CPUs this process may use (its cgroup's cpuset, `taskset`)."""
    return sorted(os.sched_getaffinity(0))


def default_lock_dir() -> Path:
    """Per user, so that one user's locks never block another's processes."""
    return Path(tempfile.gettempdir()) / f"runlane-cpu-{os.getuid()}"


def held_cpu() -> int | None:
    """The CPU whose lock this process holds, if any."""
    return next(iter(_held), None)


def take_cpu(candidates: Iterable[int], lock_dir: Path | None = None) -> int | None:
    """Lock the first of `candidates` no other process holds a lock for in `lock_dir`, and give
    up the lock held before, if any; returns that CPU, or None (keeping the lock held before)
    when every candidate is taken.  A CPU whose lock this process holds is taken at once."""
    folder = lock_dir or default_lock_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for cpu in candidates:
        if cpu in _held:
            return cpu
        fd = os.open(folder / f"cpu-{cpu}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            # Released by the kernel when the process dies, however it dies.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        for old in list(_held):
            os.close(_held.pop(old))
        _held[cpu] = fd
        return cpu
    return None


def pin_to_one_cpu(lock_dir: Path | None = None) -> int | None:
    """Move every thread of this process, and so every thread they start later, onto one CPU
    no other process holds a lock for in `lock_dir`; returns that CPU.  None, with nothing
    changed, where the platform cannot pin, the process may use one CPU only already, or every
    CPU it may use is taken.  A second call answers the first's CPU."""
    if (cpu := held_cpu()) is not None:
        return cpu
    if not can_pin():
        return None
    cpu = take_cpu(allowed_cpus(), lock_dir)
    if cpu is None:
        logger.warning("every CPU is held by another Runlane process: threads left unpinned")
        return None
    move_threads({cpu})
    logger.info("threads pinned to one CPU", extra={"cpu": cpu})
    return cpu


def thread_ids() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/task")}


def move_threads(cpus: set[int], skip: Iterable[int] = ()) -> None:
    """Every thread but those in `skip`, including one started by a thread that was moved only
    just now."""
    moved = set(skip)
    while pending := thread_ids() - moved:
        for thread_id in pending:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.sched_setaffinity(thread_id, cpus)
        moved |= pending


def descendants(thread_ids: Iterable[int]) -> set[int]:
    """The processes these threads of this process started, and the ones those started in
    turn, as the kernel lists them (`/proc/<pid>/task/<tid>/children`); none where it does not."""
    found: set[int] = set()
    pending = [f"/proc/self/task/{thread_id}/children" for thread_id in thread_ids]
    while pending:
        try:
            with open(pending.pop(), "rb") as listing:
                children = [int(pid) for pid in listing.read().split()]
        except (OSError, ValueError):  # the thread or process has ended meanwhile
            continue
        for pid in children:
            if pid in found:
                continue
            found.add(pid)
            with contextlib.suppress(OSError):
                pending += [f"/proc/{pid}/task/{tid}/children" for tid in os.listdir(f"/proc/{pid}/task")]
    return found


def widen_processes(pids: Iterable[int], inherited: set[int], cpus: set[int]) -> None:
    """Move every thread of these processes whose CPUs are still exactly `inherited` onto
    `cpus`; a thread that chose its own CPUs keeps them."""
    for pid in pids:
        try:
            tasks = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
        except OSError:  # it has ended meanwhile
            continue
        for task in tasks:
            # PermissionError: it changed its user; ProcessLookupError: it ended meanwhile.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.sched_getaffinity(task) == inherited:
                    os.sched_setaffinity(task, cpus)
