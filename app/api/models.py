"""Request and response models of the HTTP API (the v1 contract plus its additive extensions)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from app.runs.run_ids import RUN_ID_RULE, is_valid_run_id

StatusValue = Literal["queued", "running", "completed", "completed_with_gaps", "failed", "stopped"]


class RunCreateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "question": "What are main climate initiatives?",
                    "run_id": "optional-client-id",
                    "enable_sql": False,
                    "markdown_path": "documents",
                    "log_llm_payload": False,
                }
            ]
        },
    )

    question: str = Field(min_length=1, max_length=4000, description="The question to answer.")
    run_id: str | None = Field(None, description=f"Optional client-chosen id: {RUN_ID_RULE}.")
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

    @field_validator("question")
    @classmethod
    def _question_has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question must contain text")
        return value

    @field_validator("run_id")
    @classmethod
    def _run_id_is_safe(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_run_id(value):
            raise ValueError(f"run_id must be {RUN_ID_RULE}")
        return value


class RunCreatedResponse(BaseModel):
    run_id: str
    status: StatusValue
    status_url: str
    output_url: str
    context_url: str


class RunErrorInfo(BaseModel):
    type: str
    message: str


class GapInfo(BaseModel):
    kind: str
    subject: str
    reason: str


class ProgressInfo(BaseModel):
    stage: str
    stage_index: int
    stage_count: int | None
    fraction: float = Field(ge=0, le=1)
    message: str
    seq: int


class RunStatusResponse(BaseModel):
    run_id: str
    status: StatusValue
    started_at: str | None
    completed_at: str | None
    finish_reason: str | None
    error: RunErrorInfo | None
    created_at: str
    updated_at: str
    expires_at: str | None = Field(description="When retention will delete the run, or null.")
    cancel_requested_at: str | None
    gaps: list[GapInfo]
    progress: ProgressInfo | None


class RunOutputResponse(BaseModel):
    run_id: str
    status: StatusValue
    content: str
    final_output_path: str


class RunOutputHtmlResponse(BaseModel):
    run_id: str
    status: StatusValue
    html: str = Field(description="The answer as HTML; citations link to #evidence-<n>.")


class RunContextResponse(BaseModel):
    run_id: str
    status: StatusValue
    context_bundle: dict[str, Any]
    context_bundle_path: str


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable machine-readable `code` and a human `message`."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    message: str
    run_status: StatusValue | None = None
    errors: list[dict[str, Any]] | None = None


class RunListResponse(BaseModel):
    runs: list[RunStatusResponse]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    damaged_runs: int = Field(
        0, description="Runs left out of every listing because their state cannot be read."
    )


class WebhookAttempt(BaseModel):
    attempt: int
    at: str
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: float | None = None


class WebhookInfo(BaseModel):
    id: str = Field(description="The webhook-id header of every attempt (receivers dedupe on it).")
    url: str
    status: Literal["waiting", "pending", "delivered", "failed"] = Field(
        description="waiting: the run has not ended; pending: being delivered or retried."
    )
    attempts: list[WebhookAttempt]
    next_attempt_at: str | None = None


class RunDetailResponse(RunStatusResponse):
    request: dict[str, Any] = Field(description="The accepted request options.")
    key_id: str | None = Field(description="The id of the API key that started the run, if any.")
    webhook: WebhookInfo | None = Field(description="The run's webhook and its delivery attempts.")
    status_url: str
    output_url: str
    context_url: str
    events_url: str
    cancel_url: str


class ServiceLimits(BaseModel):
    max_workers: int
    max_queued: int
    max_body_bytes: int
    default_timeout_s: float
    max_timeout_s: float


class ServiceInfo(BaseModel):
    name: str
    version: str
    api_version: str
    limits: ServiceLimits
    retention_days: float | None
    poll_interval_s: int
    runs: dict[str, int] = Field(description="Runs on disk per status.")


class HealthResponse(BaseModel):
    status: str
    checks: dict[str, bool] = Field(default_factory=dict)
