"""The run's state: its status enum, the one table of legal transitions, and the record on disk."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_GAPS = "completed_with_gaps"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def is_terminal(self) -> bool:
        return not TRANSITIONS[self]


class FinishReason(StrEnum):
    """Why a run ended: the API's closed set, whatever a pipeline says in its own words."""

    ANSWERED = "answered"
    GAPS_FOUND = "gaps_found"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    STOPPED = "stopped"
    ERROR = "error"
    INTERRUPTED = "interrupted"


FINISH_REASONS: dict[RunStatus, tuple[FinishReason, ...]] = {
    RunStatus.COMPLETED: (FinishReason.ANSWERED,),
    RunStatus.COMPLETED_WITH_GAPS: (FinishReason.GAPS_FOUND,),
    RunStatus.STOPPED: (FinishReason.STOPPED, FinishReason.CANCELLED, FinishReason.TIMEOUT),
    RunStatus.FAILED: (FinishReason.ERROR, FinishReason.INTERRUPTED),
}


class GapKind(StrEnum):
    """What an answer could not support; a pipeline's other kinds are reported as `other`."""

    UNANSWERED_PART = "unanswered_part"
    BROKEN_CITATION = "broken_citation"
    UNCITED_ANSWER = "uncited_answer"
    UNCITED_SENTENCE = "uncited_sentence"
    OTHER = "other"


def gap_kind_for(said: str) -> GapKind:
    return next((kind for kind in GapKind if kind == said), GapKind.OTHER)


def finish_reason_for(status: RunStatus, said: str) -> FinishReason:
    """The reason a pipeline gave if it is one of its status's, else that status's first."""
    allowed = FINISH_REASONS[status]
    return next((reason for reason in allowed if reason == said), allowed[0])


TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.STOPPED}),
    RunStatus.RUNNING: frozenset(
        {
            RunStatus.COMPLETED,
            RunStatus.COMPLETED_WITH_GAPS,
            RunStatus.FAILED,
            RunStatus.STOPPED,
        }
    ),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.COMPLETED_WITH_GAPS: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.STOPPED: frozenset(),
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with a `Z`, millisecond precision (what browsers parse natively)."""
    if moment is None:
        return None
    # isoformat is C all the way; strftime cost 3 % of a no-op run's CPU.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class RunError(BaseModel):
    type: str
    message: str


class Progress(BaseModel):
    """How far a run got; a finished run's progress says where it ended."""

    stage: str
    stage_index: int = Field(ge=0)
    stage_count: int | None = None
    fraction: float = Field(ge=0.0, le=1.0)
    message: str = ""
    seq: int = Field(ge=0)

    def ended(self, status: RunStatus) -> Progress:
        """Completed runs end at 1.0; stopped and failed ones keep their fraction and stage."""
        if status in (RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_GAPS):
            last = self.stage_count - 1 if self.stage_count else self.stage_index
            index = max(self.stage_index, last)
            return self.model_copy(
                update={"stage_index": index, "fraction": 1.0, "message": "done", "seq": self.seq + 1}
            )
        return self.model_copy(update={"message": f"{status.value} during {self.stage}", "seq": self.seq + 1})


class Owner(BaseModel):
    """The process executing a run; a run is orphaned once its owner is gone."""

    host: str
    pid: int
    process_started: float


class RunState(BaseModel):
    """Everything `api_state.json` holds; `public_status` is the slice clients see."""

    run_id: str
    status: RunStatus
    created_at: str
    updated_at: str
    started_at: str | None = None
    completed_at: str | None = None
    finish_reason: str | None = None
    error: RunError | None = None
    progress: Progress | None = None
    gaps: list[dict[str, str]] = Field(default_factory=list)
    cancel_requested_at: str | None = None
    timeout_s: float
    deadline_at: str | None = None
    expires_at: str | None = None
    owner: Owner | None = None
    attempt: int = Field(0, ge=0, description="How many times the run was claimed; fences old executors.")
    has_output: bool = False
    has_context: bool = False
    request: dict[str, Any] | None = Field(None, description="The accepted request options.")
    idempotency_key: str | None = Field(None, description="Hash of the Idempotency-Key that made it.")
    key_id: str | None = Field(None, description="The API key that started it (its id, never the key).")
    parent_run_id: str | None = Field(None, description="The run this one regenerates, if any.")

    @property
    def webhook_url(self) -> str | None:
        url = (self.request or {}).get("webhook_url")
        return url if isinstance(url, str) else None

    def public_status(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status.value,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "finish_reason": self.finish_reason,
            "error": self.error.model_dump() if self.error else None,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "expires_at": self.expires_at,
            "cancel_requested_at": self.cancel_requested_at,
            "gaps": self.gaps,
            "progress": self.progress.model_dump() if self.progress else None,
            "parent_run_id": self.parent_run_id,
        }
