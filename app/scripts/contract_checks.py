"""Checks of HTTP payloads against the v1 contract, used by the smoke-test gate."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

STATUSES = ("queued", "running", "completed", "completed_with_gaps", "failed", "stopped")
ACTIVE = ("queued", "running")
ORDER = {"queued": 0, "running": 1, **{status: 2 for status in STATUSES[2:]}}
_ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

CREATED_FIELDS: Mapping[str, type] = {
    "run_id": str,
    "status": str,
    "status_url": str,
    "output_url": str,
    "context_url": str,
}
STATUS_FIELDS: Mapping[str, type] = {
    "run_id": str,
    "status": str,
    "created_at": str,
    "updated_at": str,
    "gaps": list,
}
STATUS_NULLABLE = (
    "started_at",
    "completed_at",
    "finish_reason",
    "error",
    "expires_at",
    "cancel_requested_at",
    "progress",
)
TIMESTAMPS = ("created_at", "updated_at", "started_at", "completed_at", "expires_at", "cancel_requested_at")
FINISH_REASONS = {
    "completed": ("answered",),
    "completed_with_gaps": ("gaps_found",),
    "stopped": ("stopped", "cancelled", "timeout"),
    "failed": ("error", "interrupted"),
}
OUTPUT_FIELDS: Mapping[str, type] = {"run_id": str, "status": str, "content": str, "final_output_path": str}
CONTEXT_FIELDS: Mapping[str, type] = {
    "run_id": str,
    "status": str,
    "context_bundle": dict,
    "context_bundle_path": str,
}


class ContractBrokenError(Exception):
    """A payload broke the contract; `check` names the rule and `payload` shows what came."""

    def __init__(self, check: str, payload: object) -> None:
        super().__init__(check)
        self.check = check
        self.payload = payload


def require(condition: bool, check: str, payload: object) -> None:
    if not condition:
        raise ContractBrokenError(check, payload)


def _fields(payload: Any, fields: Mapping[str, type], what: str) -> None:
    require(isinstance(payload, dict), f"{what}: the body is a JSON object", payload)
    for name, kind in fields.items():
        require(name in payload, f"{what}: field '{name}' is present", payload)
        require(isinstance(payload[name], kind), f"{what}: '{name}' is a {kind.__name__}", payload)
    require(payload["status"] in STATUSES, f"{what}: 'status' is one of {', '.join(STATUSES)}", payload)


def check_created(payload: Any, run_id: str | None) -> None:
    _fields(payload, CREATED_FIELDS, "POST /runs")
    require(payload["status"] == "queued", "POST /runs: a new run is 'queued'", payload)
    if run_id is not None:
        require(payload["run_id"] == run_id, "POST /runs: the given run_id is kept", payload)
    for name, suffix in (("status_url", "status"), ("output_url", "output"), ("context_url", "context")):
        expected = f"/api/v1/runs/{payload['run_id']}/{suffix}"
        require(payload[name] == expected, f"POST /runs: {name} is {expected}", payload)


def check_status(payload: Any, run_id: str, previous: str | None) -> None:
    _fields(payload, STATUS_FIELDS, "GET status")
    require(payload["run_id"] == run_id, "GET status: run_id matches", payload)
    for name in STATUS_NULLABLE:
        require(name in payload, f"GET status: field '{name}' is present", payload)
    for name in TIMESTAMPS:
        value = payload[name]
        require(
            value is None or (isinstance(value, str) and _ISO_Z.match(value) is not None),
            f"GET status: '{name}' is null or ISO 8601 UTC with Z",
            payload,
        )
    status = payload["status"]
    terminal = status not in ACTIVE
    reasons = FINISH_REASONS.get(status, (None,))
    require(
        payload["finish_reason"] in reasons,
        f"GET status: finish_reason of a {status} run is {' or '.join(map(str, reasons))}",
        payload,
    )
    _check_gaps(payload)
    _check_progress(payload)
    require(
        (payload["completed_at"] is not None) == terminal,
        "GET status: completed_at is set exactly when the run is terminal",
        payload,
    )
    if status == "running":
        require(payload["started_at"] is not None, "GET status: a running run has started_at", payload)
    error = payload["error"]
    if status == "failed":
        require(
            isinstance(error, dict)
            and isinstance(error.get("type"), str)
            and isinstance(error.get("message"), str),
            "GET status: a failed run has error {type, message}",
            payload,
        )
    else:
        require(error is None, "GET status: error is null unless the run failed", payload)
    if previous is not None:
        require(
            ORDER[status] >= ORDER[previous],
            f"GET status: status moves forward only ({previous} -> {status})",
            payload,
        )
        if previous not in ACTIVE:
            require(status == previous, "GET status: a terminal status never changes", payload)


def _check_gaps(payload: dict[str, Any]) -> None:
    for gap in payload["gaps"]:
        require(
            isinstance(gap, dict) and all(isinstance(gap.get(k), str) for k in ("kind", "subject", "reason")),
            "GET status: each gap is {kind, subject, reason}",
            payload,
        )
    if payload["status"] == "completed_with_gaps":
        require(bool(payload["gaps"]), "GET status: a completed_with_gaps run lists its gaps", payload)


def _check_progress(payload: dict[str, Any]) -> None:
    progress = payload["progress"]
    if progress is None:
        return
    count = progress.get("stage_count") if isinstance(progress, dict) else None
    require(
        isinstance(progress, dict)
        and isinstance(progress.get("stage"), str)
        and isinstance(progress.get("message"), str)
        and isinstance(progress.get("stage_index"), int)
        and progress["stage_index"] >= 0
        and (count is None or isinstance(count, int))
        and isinstance(progress.get("fraction"), int | float)
        and 0 <= progress["fraction"] <= 1
        and isinstance(progress.get("seq"), int),
        "GET status: progress is {stage, stage_index, stage_count, fraction 0..1, message, seq}",
        payload,
    )


def check_not_finished(status_code: int, payload: Any, what: str) -> None:
    require(status_code == 409, f"GET {what}: answers 409 while the run is queued or running", payload)
    require(
        isinstance(payload, dict)
        and payload.get("code") == "RUN_NOT_FINISHED"
        and isinstance(payload.get("message"), str)
        and payload.get("run_status") in ACTIVE,
        f"GET {what}: 409 says RUN_NOT_FINISHED with the run's status and a message",
        payload,
    )


def _check_artifact(
    payload: Any, run_id: str, status: str, fields: Mapping[str, type], path_field: str, file_name: str
) -> None:
    what = "GET output" if file_name == "final.md" else "GET context"
    _fields(payload, fields, what)
    require(
        payload["run_id"] == run_id and payload["status"] == status,
        f"{what}: run_id and status match",
        payload,
    )
    require(payload[path_field].endswith(f"{run_id}/{file_name}"), f"{what}: path names {file_name}", payload)


def check_output(payload: Any, run_id: str, status: str) -> None:
    _check_artifact(payload, run_id, status, OUTPUT_FIELDS, "final_output_path", "final.md")


def check_context(payload: Any, run_id: str, status: str) -> None:
    _check_artifact(payload, run_id, status, CONTEXT_FIELDS, "context_bundle_path", "context_bundle.json")
