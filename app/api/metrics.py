"""Prometheus metrics: runs by status, queue depth, run durations and HTTP latency."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.runs.run_state import RunState, parse_iso


class _RunCounts(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self.counts()
        damaged = counts.pop("damaged", 0)
        runs = GaugeMetricFamily("runlane_runs", "Runs on disk by status.", labels=["status"])
        for status, count in counts.items():
            runs.add_metric([status], count)
        yield runs
        yield GaugeMetricFamily(
            "runlane_damaged_runs", "Runs whose state cannot be read (left out of listings).", value=damaged
        )
        yield GaugeMetricFamily(
            "runlane_queue_depth", "Runs waiting to be executed.", value=counts.get("queued", 0)
        )


class Metrics:
    """One registry per app, so several apps in one process (tests) never collide."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_RunCounts(counts))
        self.http_latency = Histogram(
            "runlane_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.run_duration = Histogram(
            "runlane_run_duration_seconds",
            "Duration of runs executed by this process, from start to terminal status.",
            ["status"],
            registry=self.registry,
            buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
        )
        self.sse_streams = Gauge("runlane_sse_streams_active", "Open event streams.", registry=self.registry)
        self.ws_streams = Gauge(
            "runlane_ws_streams_active", "Open WebSocket event streams.", registry=self.registry
        )

    def observe_run(self, state: RunState) -> None:
        if state.started_at and state.completed_at:
            seconds = (parse_iso(state.completed_at) - parse_iso(state.started_at)).total_seconds()
            self.run_duration.labels(state.status.value).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HttpMetrics:
    """Pure ASGI middleware timing each request, labelled by route template (bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.http_latency.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
