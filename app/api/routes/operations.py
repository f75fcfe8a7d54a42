"""Operations endpoints: liveness, readiness, Prometheus metrics and service information."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app import __version__
from app.api.auth import caller
from app.api.models import HealthResponse, ServiceInfo
from app.api.routes.responses import problem_doc, service
from app.runs.run_service import API_PREFIX
from app.runs.run_store import META_DIR

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=HealthResponse)
async def check_health() -> dict[str, Any]:
    """Liveness: the process answers."""
    return {"status": "ok", "checks": {}}


def _output_writable(request: Request) -> bool:
    probe = service(request).store.root / META_DIR / f"ready-{os.getpid()}.probe"
    try:
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError:
        with contextlib.suppress(OSError):
            probe.unlink()
        return False
    return True


def _free_space_ok(request: Request) -> bool:
    runs = service(request)
    try:
        disk = os.statvfs(runs.store.root)
    except OSError:
        return False
    return disk.f_bavail * disk.f_frsize >= runs.settings.min_free_bytes


@router.get("/ready", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
def check_readiness(request: Request, response: Response) -> dict[str, Any]:
    """Readiness: the output root is writable with room to spare, and the executor is alive."""
    checks = {
        "output_writable": _output_writable(request),
        "output_free_space": _free_space_ok(request),
        "executor_alive": service(request).is_alive(),
    }
    healthy = all(checks.values())
    if not healthy:
        response.status_code = 503
    return {"status": "ready" if healthy else "not_ready", "checks": checks}


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def get_metrics(request: Request) -> Response:
    """Prometheus metrics."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get(
    f"{API_PREFIX}/service-info", response_model=ServiceInfo, responses={500: problem_doc("Unexpected.")}
)
def get_service_info(request: Request) -> dict[str, Any]:
    """Version, limits, retention, poll interval and run counts per status."""
    runs = service(request)
    settings = runs.settings
    return {
        "name": "Runlane",
        "version": __version__,
        "api_version": "v1",
        "limits": {
            "max_workers": settings.max_workers,
            "max_queued": settings.max_queued,
            "max_body_bytes": settings.max_body_bytes,
            "default_timeout_s": settings.default_timeout_s,
            "max_timeout_s": settings.max_timeout_s,
        },
        "retention_days": settings.retention_days,
        "writer": "llm" if settings.llm_base_url else "extractive",
        "poll_interval_s": settings.poll_interval_s,
        "runs": runs.counts(caller(request)),
    }
