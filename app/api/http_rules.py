"""HTTP as RFC 9110 says, where Starlette does otherwise: HEAD on every GET route, an `Allow`
header naming every method of a path, relative trailing-slash redirects, and compression that
never touches the polling path or an event stream (pure ASGI)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.runs.run_service import API_PREFIX

GZIP_MINIMUM_BYTES = 1024
_UNCOMPRESSED_ENDINGS = ("/status", "/events")
_CREATE_PATH = f"{API_PREFIX}/runs"


class HeadAsGet:
    """HEAD runs the GET route and sends its head only: same status and headers, no body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        started = False

        async def head_only(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                await send(message)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            # The body of the GET (an event stream included) is dropped.

        async def disconnect_once_answered() -> Message:
            # An event stream stops once the head is out: its client has gone, as far as it knows.
            if started:
                return {"type": "http.disconnect"}
            return await receive()

        await self.app({**scope, "method": "GET"}, disconnect_once_answered, head_only)


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route serves at this path (for 405's Allow), HEAD with each GET."""
    methods: set[str] = set()
    for route in routes:
        match, _ = route.matches({**scope, "method": "\0"})
        if match is Match.PARTIAL:
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


class RelativeSlashRedirect:
    """`/api/v1/runs/` redirects to `/api/v1/runs` with a relative Location (Starlette would
    build an absolute URL from the Host header, which is wrong behind a proxy)."""

    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path == "/" or not path.endswith("/"):
            await self.app(scope, receive, send)
            return
        stripped = {**scope, "path": path.rstrip("/") or "/"}
        if any(route.matches(stripped)[0] is not Match.NONE for route in self._routes):
            query = scope.get("query_string", b"")
            location = stripped["path"].encode() + (b"?" + query if query else b"")
            await send({"type": "http.response.start", "status": 307, "headers": [(b"location", location)]})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


class Compression:
    """gzip for large responses (listings, detail, answers, evidence, the API document); the
    status endpoint, polled by every tab, event streams and run creation (a 202 of a few hundred
    bytes, below the threshold) bypass it entirely."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._gzip = GZipMiddleware(app, minimum_size=GZIP_MINIMUM_BYTES, compresslevel=6)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"].endswith(_UNCOMPRESSED_ENDINGS)
            or (scope["path"] == _CREATE_PATH and scope["method"] == "POST")
        ):
            await self.app(scope, receive, send)
            return
        await self._gzip(scope, receive, send)
