"""The served OpenAPI document, made exact for generated clients: every error is problem+json
with the Problem schema, every operation can answer 500, keys and their errors are declared.

FastAPI's own document declares error bodies under `application/json` (which the server never
sends) and a 422 shape the server never uses; a generated client then parses no error at all.
The fix is applied here, to every operation, so that a route added later cannot skip it.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.api.auth import OPERATIONS_PATHS
from app.config import Settings
from app.runs.run_ids import RUN_ID_PATTERN

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
UNUSED_SCHEMAS = ("HTTPValidationError", "ValidationError")
OPEN_PATHS = ("/health", "/ready")
# The code a generated client sees in each status's example (the README lists them all).
EXAMPLE_CODES = {
    400: "CORS_PREFLIGHT_REFUSED",
    401: "API_KEY_MISSING",
    403: "ADMIN_REQUIRED",
    404: "RUN_NOT_FOUND",
    409: "RUN_NOT_FINISHED",
    410: "RUN_GONE",
    413: "PAYLOAD_TOO_LARGE",
    422: "VALIDATION_ERROR",
    429: "QUEUE_FULL",
    500: "INTERNAL_ERROR",
    507: "INSUFFICIENT_STORAGE",
}
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
    return {"description": description, "content": {"application/problem+json": {"schema": PROBLEM_REF}}}


def _problem_example(code: int, description: str) -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": HTTPStatus(code).phrase,
        "status": code,
        "detail": description,
        "code": EXAMPLE_CODES.get(code, "HTTP_ERROR"),
        "message": description,
    }


def _add_examples(responses: dict[str, Any], schemas: dict[str, Any]) -> None:
    """An example per response: the schema's own for successes, a Problem for errors."""
    for code, response in responses.items():
        for media_type, media in response.get("content", {}).items():
            if "example" in media or "examples" in media:
                continue
            if int(code) >= 400:
                media["example"] = _problem_example(int(code), response.get("description", ""))
                continue
            name = media.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
            examples = schemas.get(name, {}).get("examples")
            if examples and media_type == "application/json":
                media["example"] = examples[0]


def _exact_responses(operation: dict[str, Any], path: str, settings: Settings) -> None:
    responses: dict[str, Any] = operation["responses"]
    if responses.get("422", {}).get("description") == "Validation Error":
        # FastAPI's default for any parameter; the routes that can answer 422 declare their own.
        del responses["422"]
    for code, response in responses.items():
        if code.isdigit() and int(code) >= 400:
            response["content"] = {"application/problem+json": {"schema": PROBLEM_REF}}
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
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for path, item in document["paths"].items():
        for operation in item.values():
            _exact_responses(operation, path, settings)
            _add_examples(operation["responses"], schemas)
            for parameter in operation.get("parameters", []):
                parameter.setdefault("description", PARAMETER_DOCS.get(parameter["name"], ""))
                if parameter["name"] == "run_id":
                    parameter["schema"] = {"type": "string", "pattern": RUN_ID_PATTERN.pattern}
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
