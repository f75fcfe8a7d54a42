"""Runtime settings: every knob of the service, read from `RUNLANE_*` environment variables."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_PIPELINE = "app.modules.orchestrator.module:run_pipeline"


class Settings(BaseSettings):
    """One object for all configuration; pass a customised copy to `create_app` in tests."""

    model_config = SettingsConfigDict(env_prefix="RUNLANE_", extra="ignore")

    output_dir: Path = Field(Path("output"), description="Root folder holding one folder per run.")
    documents_root: Path = Field(
        Path(), description="Every request's markdown_path is resolved inside this folder."
    )
    data_dir: Path = Field(
        Path("documents/data"), description="Folder of read-only SQLite databases for enable_sql."
    )
    max_workers: int = Field(4, ge=1, le=256, description="Runs executed at once per process.")
    pipeline_nice: int = Field(
        19,
        ge=0,
        le=19,
        description="How many nice(1) steps below the server's other threads the threads running "
        "pipelines go (Linux): requests get the CPU first and pipelines use what is left; 0 "
        "shares the CPU evenly.",
    )
    pipeline_yield_ms: float = Field(
        5.0,
        ge=0,
        le=1000,
        description="How long at most a pipeline waits at each of its checkpoints (a progress "
        "report, a stop check) while this process is answering a POST, PATCH or DELETE, so that "
        "requests get the GIL first; 0 never waits.",
    )
    pin_cpu: bool | Literal["auto"] = Field(
        "auto",
        description="Keep each server process's threads on one CPU that no other Runlane process "
        "of this host holds (uvicorn --workers spread over CPUs): the GIL runs one of them at a "
        "time anyway, and hand-offs between CPUs cost a wake-up each.  `auto` lets a pipeline "
        "that has run for half a second use every CPU until it returns, and unpins the threads "
        "while other work (another container, which cannot see this host's locks) crowds their "
        "CPU; `true` keeps them on one CPU whatever happens; `false` never pins.",
    )
    pipeline: str = Field(DEFAULT_PIPELINE, description="Pipeline import string module:function.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Larger request bodies get 413.")
    max_header_bytes: int = Field(
        64 * 1024, ge=8 * 1024, description="Larger request heads get 431 (see app.api.http_protocol)."
    )
    min_free_bytes: int = Field(
        256 * 1024 * 1024, ge=0, description="/ready answers 503 while the output disk has less free."
    )
    durable_sync: Literal["filesystem", "files"] = Field(
        "filesystem",
        description="How a batch of writes is made durable: one syncfs(2) of the output file system, "
        "or an fsync of every file and folder (for an output disk that other programs write to heavily).",
    )
    disk_workers: int = Field(
        2,
        ge=0,
        le=8,
        description="Child processes that do the file work of the store's batches of writes (stage, "
        "syncfs, rename, syncfs) on other CPUs than the server's pinned threads (Linux, with "
        "durable_sync=filesystem); 0 leaves that work to the server's own writer threads.",
    )

    executor: Literal["threads", "celery"] = Field(
        "threads",
        description="Who executes runs: a thread pool in each API process, or Celery workers "
        "(`runlane worker`) fed through RUNLANE_BROKER_URL.",
    )
    broker_url: str | None = Field(None, description="Celery broker, e.g. redis://127.0.0.1:6379/0.")
    broker_key_prefix: str = Field(
        "", description="Prefix of every key Runlane's Celery puts in Redis (deployments sharing one)."
    )
    queue: str = Field("runlane", description="The Celery queue runs are sent to.")
    visibility_timeout_s: float = Field(
        3600.0,
        gt=0,
        description="Redis redelivers a message not acknowledged within this; a redelivered run "
        "whose owner is alive is dropped, so this bounds only how soon a lost worker's runs move.",
    )
    requeue_after_s: float = Field(
        300.0,
        gt=0,
        description="A run still queued this long after it was sent is sent again (a broker that "
        "lost its messages); duplicates are harmless, only one claim wins.",
    )
    max_attempts: int = Field(
        1,
        ge=1,
        le=10,
        description="Executions a run may get: 1 fails a run whose executor died `interrupted`; more "
        "runs it again, on another worker, with a new attempt number.",
    )
    database_url: str | None = Field(
        None,
        description="PostgreSQL for the index, idempotency keys and run locks (several hosts); "
        "unset keeps SQLite and file locks under the output root (one host).",
    )
    database_schema: str = Field(
        "runlane", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="PostgreSQL schema of Runlane's tables."
    )
    host_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        description="Names this host in run owners (default: the host name); liveness of an owner "
        "on this host is checked by its pid, elsewhere by its heartbeat.",
    )

    heartbeat_interval_s: float = Field(5.0, gt=0, description="How often a running run is marked alive.")
    orphan_after_s: float = Field(
        30.0, gt=0, description="A running run whose heartbeat is older than this is orphaned."
    )
    reap_interval_s: float = Field(
        10.0, gt=0, description="How often queued runs are picked up and orphans are failed."
    )
    shutdown_grace_s: float = Field(
        10.0, ge=0, description="How long shutdown waits for running pipelines to finish."
    )

    poll_interval_s: int = Field(2, ge=1, le=60, description="Retry-After sent to pollers.")
    sse_ping_interval_s: float = Field(15.0, gt=0, description="Heartbeat comment interval of event streams.")
    default_timeout_s: float = Field(3600.0, gt=0, description="Time limit of a run.")
    max_timeout_s: float = Field(6 * 3600.0, gt=0, description="Largest timeout_s a request may ask.")
    timeout_grace_s: float = Field(
        30.0, ge=0, description="After its limit, how long a pipeline may take to stop by itself."
    )
    max_queued: int = Field(1000, ge=1, description="Queued runs allowed before POST answers 429.")
    retention_days: float | None = Field(
        None, gt=0, description="Terminal runs older than this are deleted; unset keeps all."
    )
    idempotency_ttl_s: float = Field(24 * 3600.0, gt=0, description="Lifetime of Idempotency-Key.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS.")

    auth: Literal["none", "api-key"] = Field(
        "none",
        description="none: anyone who reaches the port may do anything (a laptop); api-key: every "
        "/api/v1 request needs a key made with `runlane keys create`, and sees only its own runs.",
    )
    operations_access: Literal["admin", "key", "open"] = Field(
        "admin",
        description="With keys on, who may read /metrics, /api/v1/service-info and the API docs: "
        "admin keys, any key, or anyone.",
    )
    webhook_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated hosts webhooks may reach over plain http or at private, "
        "loopback or link-local addresses (e.g. 127.0.0.1 for a receiver on this machine).",
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="Signing secret (whsec_...) of webhooks when RUNLANE_AUTH=none; with keys on, "
        "each key's own secret signs its runs' webhooks.",
    )
    webhook_max_attempts: int = Field(8, ge=1, le=50, description="Delivery attempts of one webhook.")
    webhook_backoff_s: float = Field(
        2.0, gt=0, description="Wait before the second attempt; doubles each time, with jitter."
    )
    webhook_backoff_max_s: float = Field(900.0, gt=0, description="Longest wait between two attempts.")
    webhook_timeout_s: float = Field(10.0, gt=0, description="Time limit of one delivery attempt.")

    llm_base_url: str | None = Field(None, description="OpenAI-compatible endpoint; unset = extractive.")
    llm_model: str = Field("gpt-4o-mini", description="Model name sent to the LLM endpoint.")
    llm_api_key: SecretStr = Field(SecretStr("not-needed"), description="API key for the endpoint.")
    llm_timeout_s: float = Field(120.0, gt=0, description="Timeout of one LLM request.")

    log_level: str = Field("INFO", description="Logging level.")
    log_json: bool = Field(True, description="Structured JSON logs (false: plain text).")

    @field_validator("webhook_allow_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [host.strip().lower() for host in value.split(",") if host.strip()]
        return value

    @model_validator(mode="after")
    def _executor_needs_broker(self) -> Self:
        if self.executor == "celery" and not self.broker_url:
            raise ValueError(
                "RUNLANE_EXECUTOR=celery needs RUNLANE_BROKER_URL (e.g. redis://127.0.0.1:6379/0)"
            )
        return self
