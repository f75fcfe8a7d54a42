"""The served OpenAPI document, made exact for generated clients: every error is problem+json
with the Problem schema, every operation can answer 500, keys and their errors are declared.

FastAPI's own document declares error bodies under `application/json` (which the server never
sends) and a 422 shape the server never uses; a generated client then parses no error at all.
The fix is applied here, to every operation, so that a route added later cannot skip it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.api.auth import OPERATIONS_PATHS
from app.config import Settings
from app.runs.run_ids import RUN_ID_PATTERN

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_CONTENT = {"application/problem+json": {"schema": PROBLEM_REF}}
UNUSED_SCHEMAS = ("HTTPValidationError", "ValidationError")
OPEN_PATHS = ("/health", "/ready")
PARAMETER_DOCS = {
    "run_id": "The run's id, as POST /api/v1/runs answered it.",
    "If-None-Match": "The ETag of the last answer: an unchanged resource answers 304 with no body.",
}

DESCRIPTION = """Start long answer-generation runs, poll them, fetch their answer and evidence.

A run is started with `POST /api/v1/runs` (202 at once, with its URLs). Poll its `status_url`
every `Retry-After` seconds (send back the `ETag` as `If-None-Match` for a cheap 304), or follow
`/events` (Server-Sent Events). Once it is `completed` or `completed_with_gaps`, `output_url`
serves the answer and `context_url` its evidence.

Every error answers `application/problem+json` (RFC 9457) with a stable `code` and a human
`message`; the codes are listed in the README.
"""

TAGS = [
    {"name": "runs", "description": "Start, follow, list, cancel and delete runs."},
    {"name": "artifacts", "description": "A finished run's answer and evidence."},
    {"name": "operations", "description": "Liveness, readiness, metrics and service information."},
]


def operation_id(route: APIRoute) -> str:
    """`get_run_status` -> `getRunStatus`: what a generated client names its functions."""
    head, *rest = route.name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": PROBLEM_CONTENT}


def _exact_responses(operation: dict[str, Any], path: str, settings: Settings) -> None:
    responses: dict[str, Any] = operation["responses"]
    if responses.get("422", {}).get("description") == "Validation Error":
        # FastAPI's default for any parameter; the routes that can answer 422 declare their own.
        del responses["422"]
    for code, response in responses.items():
        if code.isdigit() and int(code) >= 400:
            response["content"] = PROBLEM_CONTENT
    responses.setdefault("500", _problem("Unexpected server error (INTERNAL_ERROR); details in the log."))
    if settings.auth != "api-key" or path in OPEN_PATHS:
        return
    if path in OPERATIONS_PATHS and settings.operations_access == "open":
        return
    operation["security"] = [{"bearer": []}, {"apiKeyHeader": []}]
    responses.setdefault("401", _problem("No API key, or a malformed, unknown or revoked one."))
    responses.setdefault("429", _problem("This API key's request rate (RATE_LIMITED) is reached."))
    if path in OPERATIONS_PATHS and settings.operations_access == "admin":
        responses.setdefault("403", _problem("An admin API key is needed (ADMIN_REQUIRED)."))


def exact_document(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    document["info"]["description"] = DESCRIPTION
    document["servers"] = [{"url": "/", "description": "This server."}]
    document["tags"] = TAGS
    for path, item in document["paths"].items():
        for operation in item.values():
            _exact_responses(operation, path, settings)
            for parameter in operation.get("parameters", []):
                parameter.setdefault("description", PARAMETER_DOCS.get(parameter["name"], ""))
                if parameter["name"] == "run_id":
                    parameter["schema"] = {"type": "string", "pattern": RUN_ID_PATTERN.pattern}
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for name in UNUSED_SCHEMAS:
        schemas.pop(name, None)
    if settings.auth == "api-key":
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
            "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    return document


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the exact document, built once on first request."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if not getattr(app.state, "openapi_exact", False):
            exact_document(build(), settings)
            app.state.openapi_exact = True
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
