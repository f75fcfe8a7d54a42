"""Shared fixtures: isolated settings per test, an app factory, and deadline-based waiting."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.config import Settings
from app.modules.contract import Pipeline
from tests.support.pipelines import GatedPipeline

DEADLINE_S = 30.0


def wait_until(predicate: Callable[[], Any], timeout: float = DEADLINE_S, what: str = "condition") -> Any:
    """Poll a condition with a deadline (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def runlane_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Records of the `runlane` loggers (which do not propagate once the app configured them)."""
    logger = logging.getLogger("runlane")
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


@pytest.fixture
def gated() -> GatedPipeline:
    """A pipeline that blocks each run until the test opens its gate."""
    return GatedPipeline()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "note.md").write_text("# Note\n\nSolar subsidies fund rooftop panels.\n")
    return Settings(
        output_dir=tmp_path / "output",
        documents_root=tmp_path,
        data_dir=tmp_path / "data",
        heartbeat_interval_s=0.05,
        reap_interval_s=0.05,
        orphan_after_s=5.0,
        shutdown_grace_s=0.5,
        log_json=True,
        pin_cpu=False,  # pinning is per process: the test runner itself is never pinned
    )


@contextmanager
def running_app(settings: Settings, pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(settings, pipeline)) as client:
        yield client


def wait_for_status(client: httpx.Client, run_id: str, *statuses: str) -> dict[str, Any]:
    def current() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}/status").json()
        return body if body["status"] in statuses else None

    result: dict[str, Any] = wait_until(current, what=f"{run_id} to reach {statuses}")
    return result
