"""The executor interface: what the engine needs from whatever executes runs (threads here)."""

from __future__ import annotations

from typing import Protocol


class Executor(Protocol):
    # How long a run must have been queued before upkeep offers it again (0: at every pass).
    resend_after_s: float

    def start(self) -> None:
        """Begin accepting runs."""

    def submit(self, run_id: str) -> None:
        """Execute a queued run some time soon; a run that is not queued by then is skipped."""

    def resubmit(self, run_id: str) -> None:
        """Execute a running run whose owner died as its next attempt (see PipelineRunner.claim)."""

    def request_stop(self, run_id: str) -> None:
        """Ask a running run to stop promptly (its cancel is already recorded in the store)."""

    def shutdown(self) -> None:
        """Stop taking runs and settle the ones in flight."""

    def is_alive(self) -> bool:
        """Whether runs submitted now would be executed."""
