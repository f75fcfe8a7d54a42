"""The pipeline contract: what every pipeline receives from Runlane and what it must return.

A pipeline is any callable ``pipeline(ctx: RunContext) -> PipelineResult``, named by the
``RUNLANE_PIPELINE`` setting as ``package.module:function``.  It runs in a worker thread.

It receives a `RunContext`:
  * ``options``: the validated request (question, enable_sql, markdown_path resolved inside
    the documents root, log_llm_payload);
  * ``run_id`` and ``run_dir``, the run's own folder (a pipeline may write extra files there,
    e.g. LLM payload logs; ``final.md`` and ``context_bundle.json`` are written by Runlane);
  * ``report(stage, message, fraction)``: progress of the whole run, fraction in 0..1;
  * ``should_stop()``: True once the run is cancelled, past its time limit or the server is
    shutting down.  Check it between steps and return a ``stopped`` result promptly.
Both calls are checkpoints where the pipeline gives way to requests: while the server is
answering a POST, PATCH or DELETE, they wait for it (a few milliseconds at most,
`pipeline_yield_ms`).

It returns a `PipelineResult` whose status is ``completed``, ``completed_with_gaps`` or
``stopped``, with a ``finish_reason``, the final markdown, the context bundle and any gaps.
A pipeline that raises ends the run ``failed``: ``error`` = {type, message} in the status,
the traceback in ``run.json`` only.  A pipeline may declare ``stages`` (a tuple of stage
names, as an attribute of the callable) so progress can say "stage 2 of 7", and may offer
``bind(settings) -> Pipeline`` (also an attribute), which Runlane calls once at start-up so the
pipeline is configured from the same `Settings` as the service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

ResultStatus = Literal["completed", "completed_with_gaps", "stopped"]


@dataclass(frozen=True)
class RunOptions:
    """The validated request options a pipeline works from."""

    question: str
    markdown_path: Path
    enable_sql: bool = False
    log_llm_payload: bool = False
    feedback: str | None = None  # a regenerated run's feedback on its parent's answer


@dataclass(frozen=True)
class Gap:
    """Something the answer could not support, and why."""

    kind: str
    subject: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "subject": self.subject, "reason": self.reason}


class ProgressReporter(Protocol):
    def __call__(self, stage: str, message: str = "", fraction: float | None = None) -> None: ...


@dataclass(frozen=True)
class RunContext:
    """Everything a pipeline may use; it never needs anything from the API layer."""

    run_id: str
    run_dir: Path
    options: RunOptions
    report: ProgressReporter
    should_stop: Callable[[], bool]


@dataclass
class PipelineResult:
    """The outcome of a pipeline; artifacts are persisted before the run turns terminal."""

    status: ResultStatus
    finish_reason: str
    final_markdown: str | None = None
    context_bundle: dict[str, Any] | None = None
    gaps: list[Gap] = field(default_factory=list)


Pipeline = Callable[[RunContext], PipelineResult]


def pipeline_stages(pipeline: Pipeline) -> tuple[str, ...]:
    """The stage names a pipeline declares, or () when it declares none."""
    stages = getattr(pipeline, "stages", ())
    return tuple(str(stage) for stage in stages)
