"""A small HTTP client of the Runlane API (what the command line uses; no server internals)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

TERMINAL = ("completed", "completed_with_gaps", "failed", "stopped")
ACTIVE = ("queued", "running")


def progress_line(status: dict[str, Any]) -> str:
    """How far a run got, in the web console's words: "waiting for a worker", "search 2/3:
    searching 12 documents (40%)", "done (100%)", "stopped during sql", "cancelling…"."""
    state, progress = status["status"], status.get("progress") or {}
    if status.get("cancel_requested_at") and state in ACTIVE:
        return "cancelling…"
    if state in ("completed", "completed_with_gaps"):
        return "done (100%)"
    if state in ("stopped", "failed"):
        return str(progress.get("message") or state)  # the server says "stopped during sql"
    if not progress:
        return "waiting for a worker" if state == "queued" else "starting"
    count = progress.get("stage_count")
    step = f" {progress['stage_index'] + 1}/{count}" if count else ""
    return f"{progress['stage']}{step}: {progress['message']} ({round(progress['fraction'] * 100)}%)"


class ApiError(Exception):
    """The server answered with its error body."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message


class ServerUnreachableError(Exception):
    """No answer from the server."""


class RunlaneClient:
    def __init__(self, base_url: str, timeout: float = 30.0, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachableError(
                f"Cannot reach the Runlane server at {self.base_url} ({exc})."
            ) from exc
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            raise ApiError(
                response.status_code,
                str(body.get("code", f"HTTP_{response.status_code}")),
                str(body.get("message", response.text[:200] or response.reason_phrase)),
            )
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._call(method, path, **kwargs).json()
        return body

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/api/v1/runs", json=request)

    def status(self, run_id: str) -> tuple[dict[str, Any], float | None]:
        """The status payload and the server's Retry-After (None once the run is finished)."""
        response = self._call("GET", f"/api/v1/runs/{run_id}/status")
        retry_after = response.headers.get("retry-after")
        return response.json(), float(retry_after) if retry_after else None

    def list(self, status: str | None = None, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        return self._json("GET", "/api/v1/runs", params=params)

    def output(self, run_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/runs/{run_id}/output")

    def edit(
        self, run_id: str, section: str | int, content: str, base_version: int | None = None
    ) -> dict[str, Any]:
        """Replace one section as a new version, on the version named (or the latest, read now)."""
        headers = {}
        if base_version is None:
            headers["If-Match"] = self._call("GET", f"/api/v1/runs/{run_id}/output").headers["etag"]
        body = {"section": section, "content": content, "base_version": base_version}
        return self._json("PATCH", f"/api/v1/runs/{run_id}/output", json=body, headers=headers)

    def versions(self, run_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/runs/{run_id}/output/versions")

    def context(self, run_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/runs/{run_id}/context")

    def regenerate(self, run_id: str, feedback: str, new_run_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"feedback": feedback}
        if new_run_id:
            body["run_id"] = new_run_id
        return self._json("POST", f"/api/v1/runs/{run_id}/regenerate", json=body)

    def cancel(self, run_id: str) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/runs/{run_id}/cancel")

    def wait(
        self,
        run_id: str,
        on_status: Callable[[dict[str, Any]], None],
        sleep: Callable[[float], None],
        poll_interval: float = 2.0,
    ) -> dict[str, Any]:
        """Poll until the run is finished, honouring Retry-After; calls on_status on each answer."""
        while True:
            status, retry_after = self.status(run_id)
            on_status(status)
            if status["status"] in TERMINAL:
                return status
            sleep(retry_after or poll_interval)
