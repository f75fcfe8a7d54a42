"""Requests being answered in this process, so that pipelines give them the GIL first.

`pipeline_nice` puts pipeline threads behind requests for the CPU, but the GIL knows no
priorities: a pipeline computing in Python takes it back at every switch, and a POST needs it
dozens of times (each system call of the event loop and the store's writer gives it away).  So
a pipeline waits at its checkpoints (each progress report, each stop check) while requests are
being answered, at most `max_wait_s` each time: requests first, never a pipeline starved.
"""

from __future__ import annotations

import threading


class RequestGate:
    """The event loop enters when a request arrives and leaves when its response starts;
    pipeline threads `wait_quiet` at their checkpoints."""

    def __init__(self, max_wait_s: float) -> None:
        self.max_wait_s = max_wait_s
        # Changed by the event loop only, without a lock: a poll must never wait for a pipeline
        # thread.  Waiters re-check it under the lock, so a wake-up is never lost.
        self._serving = 0
        self._waiters = 0
        self._quiet = threading.Condition(threading.Lock())

    @property
    def serving(self) -> int:
        return self._serving

    def enter(self) -> None:
        self._serving += 1

    def leave(self) -> None:
        self._serving -= 1
        if not self._serving and self._waiters:
            with self._quiet:
                self._quiet.notify_all()

    def wait_quiet(self) -> None:
        """Return once no request is being answered, or after `max_wait_s`."""
        if not self._serving or self.max_wait_s <= 0:
            return
        with self._quiet:
            self._waiters += 1
            try:
                self._quiet.wait_for(lambda: not self._serving, self.max_wait_s)
            finally:
                self._waiters -= 1
