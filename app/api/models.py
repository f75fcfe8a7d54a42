"""Request and response models of the HTTP API (the v1 contract plus its additive extensions)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, WithJsonSchema

from app.api.edit_models import AnnotationResponse, AnswerSection, AnswerVersionsInfo
from app.api.model_types import Text, Timestamp, examples
from app.runs.run_ids import RUN_ID_PATTERN, RUN_ID_RULE, is_valid_run_id
from app.runs.run_state import FinishReason, GapKind, RunStatus

# One enum component for every status field (a generated client gets one type, not one each).
StatusValue = RunStatus
RunId = Annotated[
    str,
    WithJsonSchema({"type": "string", "pattern": RUN_ID_PATTERN.pattern, "description": RUN_ID_RULE}),
]


def _safe_run_id(value: str) -> str:
    if not is_valid_run_id(value):
        raise ValueError(f"run_id must be {RUN_ID_RULE}")
    return value


# Run ids a request may choose: safe as folder names.
ClientRunId = Annotated[str, AfterValidator(_safe_run_id)]

EXAMPLE_ID = "20261122_101500_1a2b3c4d"
EXAMPLE_BASE = f"/api/v1/runs/{EXAMPLE_ID}"
EXAMPLE_STATUS: dict[str, Any] = {
    "run_id": EXAMPLE_ID,
    "status": "completed",
    "started_at": "2026-11-22T10:15:00.120Z",
    "completed_at": "2026-11-22T10:15:02.480Z",
    "finish_reason": "answered",
    "error": None,
    "created_at": "2026-11-22T10:15:00.100Z",
    "updated_at": "2026-11-22T10:15:02.480Z",
    "expires_at": None,
    "cancel_requested_at": None,
    "gaps": [],
    "progress": {
        "stage": "save",
        "stage_index": 6,
        "stage_count": 7,
        "fraction": 1.0,
        "message": "done",
        "seq": 9,
    },
}
EXAMPLE_LINKS = {
    "status_url": f"{EXAMPLE_BASE}/status",
    "output_url": f"{EXAMPLE_BASE}/output",
    "context_url": f"{EXAMPLE_BASE}/context",
}


class RunCreateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "question": "What are main climate initiatives?",
                    "enable_sql": False,
                    "markdown_path": "documents",
                    "log_llm_payload": False,
                }
            ]
        },
    )

    question: Text = Field(min_length=1, max_length=4000, description="The question to answer.")
    run_id: ClientRunId | None = Field(None, description=f"Optional client-chosen id: {RUN_ID_RULE}.")
    enable_sql: StrictBool = Field(False, description="Also search the SQLite data folder.")
    markdown_path: str = Field(
        "documents", max_length=1024, description="Documents folder, relative to the documents root."
    )
    log_llm_payload: StrictBool = Field(False, description="Write LLM requests/responses to the run folder.")
    timeout_s: float | None = Field(
        None, gt=0, description="Time limit for this run in seconds (at most the server's maximum)."
    )
    webhook_url: str | None = Field(
        None,
        max_length=2048,
        description="Told when the run ends: a signed POST (Standard Webhooks) of run_id, status, "
        "finish_reason, status_url and occurred_at. https only, never a private address.",
    )


class RunRegenerateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"feedback": "leave out methane; focus on heat pumps"}]},
    )

    feedback: Text = Field(
        min_length=1,
        max_length=2000,
        description="What to change, in words: the extractive writer honours 'leave out <source or "
        "topic>' and 'focus on <terms>'; an LLM writer gets it as is.",
    )
    run_id: ClientRunId | None = Field(None, description=f"Optional id of the new run: {RUN_ID_RULE}.")
    force: StrictBool = Field(
        False,
        description="Regenerate even though people have edited the answer (the new run does not "
        "carry their edits); without it such a run answers 409 EDITS_WOULD_BE_LOST.",
    )


class RunCreatedResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "run_id": "20261122_101500_1a2b3c4d",
                    "status": "queued",
                    "status_url": "/api/v1/runs/20261122_101500_1a2b3c4d/status",
                    "output_url": "/api/v1/runs/20261122_101500_1a2b3c4d/output",
                    "context_url": "/api/v1/runs/20261122_101500_1a2b3c4d/context",
                }
            ]
        }
    )

    run_id: RunId = Field(description="The run's id (generated unless the request chose one).")
    status: StatusValue = Field(description="`queued` for a new run; the current status on a repeat.")
    status_url: str = Field(description="Poll this (also the Location header).")
    output_url: str = Field(description="The answer, once the run is completed.")
    context_url: str = Field(description="The evidence, once the run is completed.")


class RunErrorInfo(BaseModel):
    type: str = Field(description="The kind of error (an exception class name, or Interrupted).")
    message: str = Field(description="What went wrong, for people.")


class GapInfo(BaseModel):
    kind: GapKind = Field(
        description="unanswered_part: no passage covers part of the question; broken_citation: the "
        "answer cites evidence that does not exist; uncited_answer: the answer cites none; "
        "uncited_sentence: one sentence of the answer cites nothing; other: "
        "a plugged-in pipeline's own kind (its context bundle keeps the original)."
    )
    subject: str = Field(description="What is unsupported (a part of the question, a citation).")
    reason: str = Field(description="Why, for people.")


class ProgressInfo(BaseModel):
    stage: str = Field(description="The pipeline stage now (or where the run ended).")
    stage_index: int = Field(ge=0, description="0-based position of the stage; never goes back.")
    stage_count: int | None = Field(description="How many stages the pipeline has, if it says.")
    fraction: float = Field(ge=0, le=1, description="0..1 of the way through; never goes back.")
    message: str = Field(description="What the stage is doing, for people.")
    seq: int = Field(ge=0, description="Increases with every progress report.")


class RunStatusResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "run_id": "20261122_101500_1a2b3c4d",
                    "status": "running",
                    "started_at": "2026-11-22T10:15:00.120Z",
                    "completed_at": None,
                    "finish_reason": None,
                    "error": None,
                    "created_at": "2026-11-22T10:15:00.100Z",
                    "updated_at": "2026-11-22T10:15:01.410Z",
                    "expires_at": None,
                    "cancel_requested_at": None,
                    "gaps": [],
                    "progress": {
                        "stage": "search",
                        "stage_index": 1,
                        "stage_count": 3,
                        "fraction": 0.4,
                        "message": "searching 12 documents",
                        "seq": 3,
                    },
                }
            ]
        }
    )

    run_id: RunId = Field(description="The run's id.")
    status: StatusValue = Field(
        description="queued -> running -> completed | completed_with_gaps | failed | stopped."
    )
    started_at: Timestamp | None = Field(description="When it started running.")
    completed_at: Timestamp | None = Field(description="When it ended.")
    finish_reason: FinishReason | None = Field(
        description="Why it ended; null while it runs. completed: answered; completed_with_gaps: "
        "gaps_found; stopped: cancelled, timeout or stopped (the pipeline stopped itself); failed: "
        "error or interrupted (its executor died)."
    )
    error: RunErrorInfo | None = Field(description="Why a failed run failed; null otherwise.")
    created_at: Timestamp = Field(description="When it was accepted.")
    updated_at: Timestamp = Field(description="When its state last changed.")
    expires_at: Timestamp | None = Field(description="When retention will delete the run, or null.")
    cancel_requested_at: Timestamp | None = Field(description="When a cancel was asked, or null.")
    gaps: list[GapInfo] = Field(description="What a completed_with_gaps answer could not support.")
    progress: ProgressInfo | None = Field(description="How far it got; null until the first report.")
    parent_run_id: RunId | None = Field(
        None, description="The run this one regenerates (POST .../regenerate), or null."
    )


class RunOutputResponse(BaseModel):
    model_config = examples(
        {
            "run_id": EXAMPLE_ID,
            "status": "completed",
            "content": "# What are main climate initiatives?\n\n...",
            "final_output_path": f"output/{EXAMPLE_ID}/final.md",
            "version": 1,
            "has_user_edits": False,
            "edited_sections": [],
            "uncited_sentences": [],
            "unknown_citations": [],
            "sections": [{"index": 0, "heading": "What are main climate initiatives?", "content": "..."}],
        }
    )

    run_id: RunId = Field(description="The run's id.")
    status: StatusValue = Field(description="completed or completed_with_gaps.")
    content: str = Field(description="The answer, markdown (final.md), or the version asked for.")
    final_output_path: str = Field(description="Where that version lies on the server's disk.")
    version: int = Field(description="Which version this is: 1 is the pipeline's answer.")
    has_user_edits: bool = Field(description="Whether people have edited the answer.")
    edited_sections: list[str] = Field(description="The sections people have changed.")
    uncited_sentences: list[str] = Field(
        description="Sentences of edited sections that cite no evidence: a person's, not the evidence's."
    )
    sections: list[AnswerSection] = Field(
        description="The answer's sections, which PATCH edits one at a time."
    )


class RunOutputHtmlResponse(BaseModel):
    model_config = examples(
        {
            "run_id": EXAMPLE_ID,
            "status": "completed",
            "html": "<h1>What are main climate initiatives?</h1>",
            "version": 1,
        }
    )

    run_id: RunId = Field(description="The run's id.")
    status: StatusValue = Field(description="completed or completed_with_gaps.")
    html: str = Field(description="The answer as HTML; citations link to #evidence-<n>.")
    version: int = Field(description="Which version of the answer this is.")


class Passage(BaseModel):
    """A document passage the answer may cite as [id]."""

    model_config = ConfigDict(extra="allow")

    id: int = Field(description="The citation number: the answer cites it as [id].")
    file: str = Field(description="The markdown file, relative to the documents folder.")
    heading: str = Field(description="The heading the passage sits under.")
    lines: list[int] = Field(description="First and last line of the passage in the file.")
    score: float = Field(description="How well it matched (higher is better).")
    question_part: int = Field(description="Which part of the question it answers (0-based).")
    text: str = Field(description="The passage itself.")
    cited: bool | None = Field(None, description="Whether the answer cites it.")


class SqlQuery(BaseModel):
    """One query run on a SQLite database of the data folder, with its rows."""

    model_config = ConfigDict(extra="allow")

    database: str = Field(description="The database file.")
    table: str = Field(description="The table queried.")
    sql: str = Field(description="The query, with ? placeholders.")
    params: list[Any] = Field(description="The values of the placeholders.")
    columns: list[str] = Field(description="Column names of the rows.")
    rows: list[list[Any]] = Field(description="The rows found.")
    label: str | None = Field(None, description="How the answer cites it ([D1], ...); null if it cannot.")
    cited: bool | None = Field(None, description="Whether the answer cites it.")


class SqlEvidence(BaseModel):
    model_config = ConfigDict(extra="allow")

    enabled: bool = Field(description="Whether the request asked for SQL (enable_sql).")
    databases: list[str] = Field(description="The databases searched.")
    queries: list[SqlQuery] = Field(description="Every query run, with its rows.")


class ContextBundle(BaseModel):
    """The evidence of an answer. These are the default pipeline's fields; a plugged-in
    pipeline may write others, so every field is optional and more may appear."""

    model_config = ConfigDict(extra="allow")

    question: str | None = Field(None, description="The question answered.")
    options: dict[str, Any] | None = Field(None, description="The request options the pipeline used.")
    documents: dict[str, Any] | None = Field(None, description="The documents folder and index stats.")
    question_parts: list[dict[str, Any]] | None = Field(
        None, description="The parts of the question, their keywords and whether each was answered."
    )
    passages: list[Passage] | None = Field(None, description="Document passages the answer may cite.")
    sql: SqlEvidence | None = Field(None, description="SQL queries run and their rows.")
    gaps: list[GapInfo] | None = Field(None, description="What the answer could not support.")
    writer: dict[str, Any] | None = Field(None, description="Which writer produced the answer.")
    stage_timings: str | None = Field(None, description="Where the stage timings are: the run's run.json.")
    citations: list[dict[str, Any]] | None = Field(
        None, description="Each answer line that cites evidence, with the labels it cites."
    )
    also_considered: list[int] | None = Field(
        None, description="Passages retrieved but not cited (Sources in final.md lists only the cited)."
    )


class RunContextResponse(BaseModel):
    model_config = examples(
        {
            "run_id": EXAMPLE_ID,
            "status": "completed",
            "context_bundle": {"question": "What are main climate initiatives?", "passages": [], "gaps": []},
            "context_bundle_path": f"output/{EXAMPLE_ID}/context_bundle.json",
        }
    )

    run_id: RunId = Field(description="The run's id.")
    status: StatusValue = Field(description="completed or completed_with_gaps.")
    context_bundle: ContextBundle = Field(description="The evidence (context_bundle.json).")
    context_bundle_path: str = Field(description="Where the evidence lies on the server's disk.")


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable machine-readable `code` and a human `message`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "about:blank",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "No run with run_id '20261122_101500_1a2b3c4d'.",
                    "code": "RUN_NOT_FOUND",
                    "message": "No run with run_id '20261122_101500_1a2b3c4d'.",
                }
            ]
        }
    )

    type: str = Field("about:blank", description="Always about:blank; `code` says what happened.")
    title: str = Field(description="The HTTP status phrase.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="Same as `message` (RFC 9457's member).")
    code: str = Field(description="Stable, machine-readable (the README lists every code).")
    message: str = Field(description="What happened and what to do, for people.")
    run_status: StatusValue | None = Field(None, description="The run's status, for a 409 about it.")
    errors: list[dict[str, Any]] | None = Field(
        None, description="For VALIDATION_ERROR: each problem's `loc`, `msg` and `type`."
    )


class RunListItem(RunStatusResponse):
    question: str | None = Field(description="The run's question (null for runs made before 1.0).")


class RunListResponse(BaseModel):
    model_config = examples(
        {
            "runs": [{**EXAMPLE_STATUS, "question": "What are main climate initiatives?"}],
            "next_cursor": None,
            "damaged_runs": 0,
        }
    )

    runs: list[RunListItem] = Field(description="Newest first; each is the status payload and question.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    damaged_runs: int = Field(
        0, description="Runs left out of every listing because their state cannot be read."
    )


class WebhookAttempt(BaseModel):
    attempt: int = Field(description="1 for the first attempt.")
    at: Timestamp = Field(description="When it was made.")
    delivered: bool = Field(description="The receiver answered 2xx.")
    status_code: int | None = Field(None, description="The receiver's HTTP status, if it answered.")
    error: str | None = Field(None, description="Why it failed without an answer (timeout, refused, ...).")
    duration_ms: float | None = Field(None, description="How long the attempt took.")


class WebhookInfo(BaseModel):
    id: str = Field(description="The webhook-id header of every attempt (receivers dedupe on it).")
    url: str = Field(description="Where the event is sent.")
    status: Literal["waiting", "pending", "delivered", "failed"] = Field(
        description="waiting: the run has not ended; pending: being delivered or retried."
    )
    attempts: list[WebhookAttempt] = Field(description="Every attempt so far, oldest first.")
    next_attempt_at: Timestamp | None = Field(None, description="When the next retry is due.")


class RunDetailResponse(RunStatusResponse):
    model_config = examples(
        {
            **EXAMPLE_STATUS,
            "request": {"question": "What are main climate initiatives?", "markdown_path": "documents"},
            "key_id": None,
            "children": [],
            "webhook": None,
            "answer_versions": {"version": 1, "has_user_edits": False, "edited_sections": []},
            "annotations": [],
            **EXAMPLE_LINKS,
            "events_url": f"{EXAMPLE_BASE}/events",
            "cancel_url": f"{EXAMPLE_BASE}/cancel",
        }
    )

    request: dict[str, Any] = Field(description="The accepted request options.")
    key_id: str | None = Field(description="The id of the API key that started the run, if any.")
    children: list[RunId] = Field(description="Runs that regenerate this one, oldest first.")
    webhook: WebhookInfo | None = Field(description="The run's webhook and its delivery attempts.")
    answer_versions: AnswerVersionsInfo | None = Field(
        description="The answer's latest version and what people edited (null without an answer)."
    )
    annotations: list[AnnotationResponse] = Field(description="Notes people added to the answer.")
    status_url: str = Field(description="The status endpoint.")
    output_url: str = Field(description="The answer endpoint.")
    context_url: str = Field(description="The evidence endpoint.")
    events_url: str = Field(description="The live event stream (Server-Sent Events).")
    cancel_url: str = Field(description="POST here to cancel.")


class ServiceLimits(BaseModel):
    max_workers: int = Field(description="Runs executed at once per server process.")
    max_queued: int = Field(description="Queued runs allowed before POST answers 429.")
    max_body_bytes: int = Field(description="Largest request body.")
    default_timeout_s: float = Field(description="Time limit of a run that asks for none.")
    max_timeout_s: float = Field(description="Largest timeout_s a request may ask.")


class ServiceInfo(BaseModel):
    model_config = examples(
        {
            "name": "Runlane",
            "version": "1.0.0",
            "api_version": "v1",
            "limits": {
                "max_workers": 4,
                "max_queued": 1000,
                "max_body_bytes": 65536,
                "default_timeout_s": 3600,
                "max_timeout_s": 21600,
            },
            "retention_days": None,
            "writer": "extractive",
            "poll_interval_s": 2,
            "runs": {"queued": 0, "running": 1, "completed": 12},
        }
    )

    name: str = Field(description="Runlane.")
    version: str = Field(description="The server's version.")
    api_version: str = Field(description="v1.")
    limits: ServiceLimits = Field(description="What a request may ask.")
    retention_days: float | None = Field(description="Finished runs older than this are deleted.")
    writer: Literal["llm", "extractive"] = Field(
        description="Who writes answers: an LLM (RUNLANE_LLM_BASE_URL is set) or the extractive writer."
    )
    poll_interval_s: int = Field(description="The Retry-After pollers get.")
    runs: dict[str, int] = Field(description="Runs on disk per status (and `damaged`).")


class HealthResponse(BaseModel):
    model_config = examples({"status": "ok", "checks": {}})

    status: str = Field(description="ok / ready / not_ready.")
    checks: dict[str, bool] = Field(default_factory=dict, description="Each readiness check and its result.")
