"""What every route module shares: access to the run service and documented error responses."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from app.api.models import Problem
from app.runs.run_service import RunService

Responses = dict[int | str, dict[str, Any]]


def service(request: Request) -> RunService:
    runs: RunService = request.app.state.runs
    return runs


def problem_doc(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description, "content": {"application/problem+json": {}}}


NOT_FOUND: Responses = {404: problem_doc("Unknown run."), 410: problem_doc("The run was deleted.")}


def header_doc(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


ETAG = header_doc("Version of this representation; send it back as If-None-Match.")
RETRY_AFTER = header_doc("Seconds to wait before polling again (only while the run is not finished).")
LOCATION = header_doc("The run's status URL.")
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The ETag of the last answer: an unchanged resource answers 304 with no body.",
    "schema": {"type": "string"},
}


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison, a list of tags, or `*` (a proxy that compresses
    turns every tag weak, and a strong comparison would then never answer 304)."""
    if if_none_match is None:
        return False
    if if_none_match == etag:  # what a browser sends back: checked before any parsing
        return True
    opaque = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == opaque:
            return True
    return False
