"""What every route module shares: access to the run service and documented error responses."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from app.api.models import Problem
from app.api.services.run_service import RunService

Responses = dict[int | str, dict[str, Any]]


def service(request: Request) -> RunService:
    runs: RunService = request.app.state.runs
    return runs


def problem_doc(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description, "content": {"application/problem+json": {}}}


NOT_FOUND: Responses = {404: problem_doc("Unknown run."), 410: problem_doc("The run was deleted.")}
