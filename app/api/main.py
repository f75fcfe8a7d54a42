"""The FastAPI application: `create_app(settings, pipeline=...)`, its lifespan, and error mapping."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import __version__
from app.api.auth import DOCS_ASSETS, ApiKeyAuth
from app.api.http_rules import Compression, HeadAsGet, RelativeSlashRedirect, allowed_methods
from app.api.logs import configure_logging
from app.api.metrics import HttpMetrics, Metrics
from app.api.openapi_document import install as install_openapi
from app.api.openapi_document import operation_id
from app.api.problems import problem
from app.api.request_limits import RequestLimits
from app.api.request_priority import RequestsFirst
from app.api.routes import artifacts, console, event_socket, operations, polling, run_annotations, runs
from app.config import Settings
from app.modules.contract import Pipeline
from app.runs.errors import (
    AnnotationNotFoundError,
    ArtifactMissingError,
    ArtifactNotProducedError,
    EditsWouldBeLostError,
    ForbiddenError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    InvalidTransitionError,
    PreconditionRequiredError,
    QueueFullError,
    QuotaExceededError,
    RunActiveError,
    RunAlreadyFinishedError,
    RunGoneError,
    RunIdConflictError,
    RunlaneError,
    RunNotFinishedError,
    RunNotFoundError,
    RunStateUnreadableError,
    SectionNotFoundError,
    StorageFullError,
    VersionConflictError,
    VersionNotFoundError,
    WebhookUrlRefusedError,
)
from app.runs.request_gate import RequestGate
from app.runs.run_service import RunService

GC_THRESHOLD = 50_000

logger = logging.getLogger("runlane.api")

ERROR_STATUS: dict[type[RunlaneError], int] = {
    RunNotFoundError: 404,
    RunGoneError: 410,
    RunIdConflictError: 409,
    RunNotFinishedError: 409,
    ArtifactNotProducedError: 409,
    InvalidTransitionError: 409,
    RunAlreadyFinishedError: 409,
    RunActiveError: 409,
    ArtifactMissingError: 500,
    RunStateUnreadableError: 500,
    QueueFullError: 429,
    QuotaExceededError: 429,
    ForbiddenError: 403,
    IdempotencyKeyReusedError: 422,
    InvalidRequestError: 422,
    WebhookUrlRefusedError: 422,
    StorageFullError: 507,
    VersionNotFoundError: 404,
    AnnotationNotFoundError: 404,
    VersionConflictError: 409,
    EditsWouldBeLostError: 409,
    PreconditionRequiredError: 428,
    SectionNotFoundError: 422,
}

HTTP_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RunlaneError)
    status = next(code for kind, code in ERROR_STATUS.items() if isinstance(exc, kind))
    headers = None
    if isinstance(exc, QueueFullError | StorageFullError | QuotaExceededError):
        headers = {"Retry-After": str(exc.retry_after_s)}
    if status >= 500 and not isinstance(exc, RunStateUnreadableError):  # that one is logged once
        logger.error(exc.message, extra={"code": exc.code, "run_id": getattr(exc, "run_id", None)})
    members = {"run_status": getattr(exc, "status", None), **exc.members}
    return problem(status, exc.code, exc.message, headers, **members)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type", "")}
        for error in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    message = f"{_location(tuple(first['loc']))}: {first['msg']}".lstrip(": ")
    return problem(422, "VALIDATION_ERROR", f"Invalid request: {message}", errors=errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        # A body that is not JSON is invalid like any other body: one status for both.
        message = "Invalid request: the body is not valid JSON."
        return problem(422, "VALIDATION_ERROR", message, errors=[{"loc": ["body"], "msg": message}])
    code = HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and message == "Not Found":
        message = f"No endpoint at {request.url.path}."
    if exc.status_code == 405:
        # Starlette names the methods of the first route that matched the path; RFC 9110 asks
        # for every method the resource supports.
        allowed = allowed_methods(request.app.state.routes, request.scope)
        headers["Allow"] = ", ".join(allowed)
        message = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}."
    return problem(exc.status_code, code, message, headers)


class ProblemCORSMiddleware(CORSMiddleware):
    """A refused preflight answers with the API's one error body, not plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        reason = bytes(response.body).decode(errors="replace")
        return problem(response.status_code, "CORS_PREFLIGHT_REFUSED", f"CORS preflight refused: {reason}.")


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error", exc_info=exc)
    return problem(500, "INTERNAL_ERROR", "An internal error occurred; the server log has the details.")


def create_app(settings: Settings | None = None, pipeline: Pipeline | None = None) -> FastAPI:
    """Build the app; the run service starts with the app's lifespan, not at import."""
    settings = settings or Settings()
    holder: dict[str, RunService] = {}
    metrics = Metrics(lambda: holder["runs"].counts() if "runs" in holder else {})
    requests = RequestGate(settings.pipeline_yield_ms / 1000)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings)
        service = RunService(settings, pipeline, on_finished=metrics.observe_run, requests=requests)
        app.state.runs = holder["runs"] = service
        await run_in_threadpool(service.start)
        # A request allocates thousands of short-lived objects and makes almost no cycles: at
        # the default threshold (700) the collector ran all the time, 7 % of a no-op run's CPU.
        gc.set_threshold(GC_THRESHOLD, 50, 100)
        try:
            yield
        finally:
            await run_in_threadpool(service.shutdown)

    # FastAPIOffline serves the Swagger UI and ReDoc assets from the installed package, so the
    # docs work without internet (an air-gapped host, the container).
    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        generate_unique_id_function=operation_id,
        title="Runlane",
        version=__version__,
        summary="Start long answer-generation runs, poll them, fetch their answer and evidence.",
        lifespan=lifespan,
        # Metrics are served by Runlane itself; the built-in OpenTelemetry hooks would tax every poll.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_openapi(app, settings)
    app.router.redirect_slashes = False  # RelativeSlashRedirect does it, with a relative Location
    app.add_middleware(Compression)
    # Every route the app serves, flat (FastAPI keeps included routers behind private objects).
    routers = [
        polling.status_router,
        runs.create_router,
        runs.router,
        polling.router,
        artifacts.router,
        run_annotations.router,
        event_socket.router,
        operations.router,
        console.router,
    ]
    app.state.routes = [*app.router.routes, *(route for router in routers for route in router.routes)]
    app.add_middleware(RelativeSlashRedirect, routes=app.state.routes)
    app.add_middleware(HeadAsGet)
    app.add_middleware(RequestLimits, max_bytes=settings.max_body_bytes)
    if settings.auth == "api-key":
        app.add_middleware(ApiKeyAuth, runs=holder, operations=settings.operations_access)
    if settings.cors_origins:
        app.add_middleware(
            ProblemCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "content-type",
                "idempotency-key",
                "if-none-match",
                "if-match",
                "last-event-id",
                "authorization",
                "x-api-key",
            ],
            expose_headers=["Location", "Retry-After", "ETag"],
        )
    app.add_middleware(RequestsFirst, requests=requests)
    app.add_middleware(HttpMetrics, metrics=metrics)
    for router in routers:
        app.include_router(router)
    app.mount("/static", console.static_files, name="static")
    app.add_exception_handler(RunlaneError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    return app


app = create_app()
