"""CPU placement: where a server process's threads run under `pin_cpu` (on, off or auto).

On, a server's threads stay on one CPU for good (see `cpu_affinity` for why that pays).  Auto
pins them the same way and watches, twice a second, for the cases where one CPU costs more
than it saves:

* A pipeline that runs long (an LLM call, C code computing on several CPUs) is let out onto
  every CPU the process may use once it has run `widen_after_s`, and brought back when it
  returns.  Short pipelines never pay for the move.
* Processes that the server's threads start (a pipeline's tool, a local model server) have no
  GIL to share, yet inherit the one CPU: they are given every CPU the process may use at the
  watcher's next tick while their pipeline runs, and at the end of the window otherwise.  A
  thread of theirs that chose its own CPUs keeps them.
* Other work crowding the CPU (another container pinned to the same CPU, which cannot see
  this host's locks; a busy neighbour process): when, over a window, others used a quarter
  of that CPU while another CPU sat a quarter idle, the threads are unpinned.  They try one
  CPU again, the least busy one, after a back-off that doubles each time they are crowded out.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from app.runs import cpu_affinity

logger = logging.getLogger("runlane.cpu")

PinCpu = bool | Literal["auto"]

CROWDED_SHARE = 0.25  # of the window: others' use of our CPU, and the idle time elsewhere
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuSample:
    """CPU time so far: this process's, and each CPU's busy time, whoever ran there."""

    at: float
    own_s: float
    busy_s: dict[int, float] = field(default_factory=dict)


def read_sample(cpus: list[int]) -> CpuSample:
    """From /proc/stat: user, nice and system time per CPU.  Interrupt time is left out, since
    the process's own network and disk work lands there and would look like a neighbour."""
    busy: dict[int, float] = {}
    wanted = {f"cpu{cpu}": cpu for cpu in cpus}
    with open("/proc/stat", "rb") as stat:
        for line in stat:
            name, _, rest = line.decode().partition(" ")
            if name in wanted:
                user, nice, system = (int(value) for value in rest.split()[:3])
                busy[wanted[name]] = (user + nice + system) / TICKS
    return CpuSample(time.monotonic(), time.process_time(), busy)


def crowded(before: CpuSample, after: CpuSample, cpu: int) -> bool:
    """Whether, between the samples, other work took at least a share of `cpu` while another
    CPU had at least that share idle: only then does leaving `cpu` win anything."""
    window = after.at - before.at
    if window <= 0 or cpu not in after.busy_s:
        return False
    busy = {number: after.busy_s[number] - before.busy_s.get(number, 0.0) for number in after.busy_s}
    others = busy[cpu] - (after.own_s - before.own_s)
    idle_elsewhere = max((window - used for number, used in busy.items() if number != cpu), default=0.0)
    return others >= CROWDED_SHARE * window and idle_elsewhere >= CROWDED_SHARE * window


@dataclass
class _Slot:
    since: float
    widened: bool = False


class CpuPlacement:
    """Pins this process's threads as `mode` says, and under auto keeps the pin worth having.

    The executor calls `enter_slot` and `leave_slot` on the thread that runs a pipeline."""

    def __init__(
        self,
        mode: PinCpu,
        lock_dir: Path | None = None,
        *,
        tick_s: float = 0.5,
        widen_after_s: float = 0.5,
        window_ticks: int = 10,
        backoff_s: tuple[float, float] = (30.0, 600.0),
        sample: Callable[[list[int]], CpuSample] = read_sample,
    ) -> None:
        self.mode = mode
        self.lock_dir = lock_dir
        self.tick_s = tick_s
        self.widen_after_s = widen_after_s
        self.window_ticks = window_ticks
        self.first_backoff_s, self.max_backoff_s = backoff_s
        self.sample = sample
        self.cpu: int | None = None
        self.allowed: list[int] = []
        self._slots: dict[int, _Slot] = {}  # thread id -> its pipeline, while one runs
        self._lock = threading.Lock()  # placement changes, and a slot's widening
        self._closing = threading.Event()
        self._watcher: threading.Thread | None = None
        self._backoff_s = self.first_backoff_s
        self._repin_at: float | None = None  # when to try one CPU again, while crowded out
        self._pinned_since = time.monotonic()

    def start(self) -> None:
        """Pin (on or auto), before the service starts its threads, which then stay with them;
        under auto, start watching."""
        if self.mode is False or not cpu_affinity.can_pin():
            return
        self.allowed = cpu_affinity.allowed_cpus()
        self.cpu = cpu_affinity.pin_to_one_cpu(self.lock_dir)
        self._pinned_since = time.monotonic()
        if self.mode == "auto" and self.cpu is not None:
            self._watcher = threading.Thread(target=self._watch, name="runlane-cpu", daemon=True)
            self._watcher.start()

    def stop(self) -> None:
        self._closing.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5.0)

    def enter_slot(self) -> None:
        if self._watcher is not None:
            with self._lock:
                self._slots[threading.get_native_id()] = _Slot(time.monotonic())

    def leave_slot(self) -> None:
        if self._watcher is None:
            return
        with self._lock:
            slot = self._slots.pop(threading.get_native_id(), None)
            if slot is not None and slot.widened:
                os.sched_setaffinity(0, self._home())

    def _home(self) -> set[int]:
        return {self.cpu} if self.cpu is not None else set(self.allowed)

    def _watch(self) -> None:
        before = self._sample()
        ticks = 0
        while not self._closing.wait(self.tick_s):
            try:
                self.widen_long_pipelines()
                ticks += 1
                window_ended = ticks % self.window_ticks == 0
                # Before placing: freed against the CPU they inherited, which a move would forget.
                self.free_child_processes(every_thread=window_ended)
                if before is not None and window_ended:
                    after = self._sample()
                    if after is not None:
                        self.place(before, after)
                    before = after
            except Exception:  # the watcher thread's boundary: placement is an optimisation
                logger.exception("CPU placement check failed")

    def _sample(self) -> CpuSample | None:
        """None, once and for good, where the CPU readings cannot be had (a /proc that hides
        them): long pipelines are still let out, crowding is no longer watched."""
        try:
            return self.sample(self.allowed)
        except OSError:
            logger.warning("CPU readings unavailable: crowding of this process's CPU is not watched")
            return None

    def widen_long_pipelines(self) -> None:
        """Let pipelines that have run `widen_after_s` use every CPU."""
        due = time.monotonic() - self.widen_after_s
        with self._lock:
            if self.cpu is None:
                return  # unpinned: every thread may use every CPU already
            for thread_id, slot in list(self._slots.items()):
                if not slot.widened and slot.since <= due:
                    slot.widened = True
                    try:
                        os.sched_setaffinity(thread_id, set(self.allowed))
                    except ProcessLookupError:  # its thread has ended meanwhile
                        self._slots.pop(thread_id, None)

    def free_child_processes(self, every_thread: bool = False) -> None:
        """Give every CPU to the processes started by running pipelines' threads, or with
        `every_thread` by any thread (one a finished pipeline left behind)."""
        threads = cpu_affinity.thread_ids() if every_thread else None
        with self._lock:
            cpu = self.cpu
            if threads is None:
                threads = set(self._slots)
        if cpu is not None and threads:
            cpu_affinity.widen_processes(cpu_affinity.descendants(threads), {cpu}, set(self.allowed))

    def place(self, before: CpuSample, after: CpuSample) -> None:
        """After a window: leave a crowded CPU, or try one CPU again once the back-off is over;
        in every case put back any thread that strayed (one started by a widened pipeline)."""
        now = after.at
        with self._lock:
            if self.cpu is not None and crowded(before, after, self.cpu):
                logger.warning(
                    "other work crowds this process's CPU: threads unpinned",
                    extra={"cpu": self.cpu, "retry_in_s": self._backoff_s},
                )
                self.cpu = None
                self._repin_at = now + self._backoff_s
                self._backoff_s = min(self._backoff_s * 2, self.max_backoff_s)
            elif self.cpu is None and self._repin_at is not None and now >= self._repin_at:
                self._repin(before, after)
            elif self.cpu is not None and now - self._pinned_since >= self.max_backoff_s:
                self._backoff_s = self.first_backoff_s  # a long quiet spell forgets the crowding
            widened = {thread_id for thread_id, slot in self._slots.items() if slot.widened}
            cpu_affinity.move_threads(self._home(), skip=widened if self.cpu is not None else ())

    def _repin(self, before: CpuSample, after: CpuSample) -> None:
        """One CPU again: the least busy over the last window whose lock is free."""
        busy = {cpu: after.busy_s.get(cpu, 0.0) - before.busy_s.get(cpu, 0.0) for cpu in self.allowed}
        cpu = cpu_affinity.take_cpu(sorted(self.allowed, key=busy.__getitem__), self.lock_dir)
        if cpu is None:
            self._repin_at = after.at + self._backoff_s
            return
        self.cpu = cpu
        self._repin_at = None
        self._pinned_since = after.at
        logger.info("threads pinned to one CPU again", extra={"cpu": cpu})
