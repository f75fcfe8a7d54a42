"""API-key authentication: every request but a few open ones names a valid key (pure ASGI).

It runs before routing, so a route added later is guarded without asking: only the paths in
`OPEN_PATHS` (liveness, readiness, the console's own files) pass without a key, and the
operations paths follow RUNLANE_OPERATIONS_ACCESS.  The key that was checked is left in the
scope for the routes, which scope every run to it.
"""

from __future__ import annotations

from typing import Literal

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.problems import problem
from app.runs.api_keys import ApiKey, KeyRing, key_id_of
from app.runs.errors import QuotaExceededError
from app.runs.run_service import API_PREFIX, RunService

SCOPE_KEY = "runlane.api_key"
# A browser cannot set headers on a WebSocket: it offers the key as a subprotocol
# `bearer.<key>` beside this one, which the server picks.
SUBPROTOCOL = "runlane"
CLOSE_KEY_MISSING = 4401
CLOSE_KEY_WRONG = 4403
OPEN_PATHS = frozenset({"/health", "/ready", "/", "/favicon.ico"})
DOCS_ASSETS = "/docs-assets"
# The console's shell and assets and the docs' scripts; the data behind them needs a key.
OPEN_PREFIXES = ("/static/", "/runs/", f"{DOCS_ASSETS}/")
OPERATIONS_PATHS = frozenset(
    {"/metrics", f"{API_PREFIX}/service-info", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
Need = Literal["open", "key", "admin"]


def caller(request: Request) -> ApiKey | None:
    """The key a request was made with; None when keys are off."""
    key: ApiKey | None = request.scope.get(SCOPE_KEY)
    return key


def _presented(scope: Scope) -> str | None:
    if scope["type"] == "websocket":
        offered = [p for p in scope.get("subprotocols", []) if p.startswith("bearer.")]
        if offered:
            return str(offered[0]).removeprefix("bearer.")
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = bytes(value).decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
        if name == b"x-api-key":
            return bytes(value).decode("latin-1").strip()
    return None


class ApiKeyAuth:
    def __init__(
        self, app: ASGIApp, runs: dict[str, RunService], operations: Literal["admin", "key", "open"]
    ):
        self.app = app
        self._runs = runs  # filled by the lifespan
        self._operations: Need = operations

    def _need(self, path: str) -> Need:
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return "open"
        if path in OPERATIONS_PATHS:
            return self._operations
        return "key"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._socket(scope, receive, send)
            return
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)  # CORS preflights carry no credentials
            return
        need = self._need(scope["path"])
        if need == "open":
            await self.app(scope, receive, send)
            return
        service = self._runs["runs"]
        presented = _presented(scope)
        if not presented:
            code, message = "API_KEY_MISSING", "This request needs an API key: Authorization: Bearer <key>."
            await _unauthorized(code, message, None)(scope, receive, send)
            return
        key_id = key_id_of(presented)
        if key_id is None:
            message = "The API key is malformed; keys look like rl_<id>_<secret>."
            await _unauthorized("API_KEY_MALFORMED", message, "invalid_token")(scope, receive, send)
            return
        key = await _lookup(service.keys, key_id)
        if key is None or key.revoked_at is not None or not service.keys.matches(key, presented):
            message = "The API key is unknown or revoked."
            await _unauthorized("API_KEY_INVALID", message, "invalid_token")(scope, receive, send)
            return
        if need == "admin" and not key.admin:
            await problem(403, "ADMIN_REQUIRED", "This needs an admin API key.")(scope, receive, send)
            return
        if key.rate_per_min is not None:
            try:
                await run_in_threadpool(service.check_rate, key)
            except QuotaExceededError as exc:
                headers = {"Retry-After": str(exc.retry_after_s)}
                await problem(429, exc.code, exc.message, headers)(scope, receive, send)
                return
        scope[SCOPE_KEY] = key
        await self.app(scope, receive, send)

    async def _socket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket names its key like a request (or as a subprotocol); a refusal is a close
        code after the handshake, which a browser can read (a refused handshake it cannot)."""
        presented = _presented(scope)
        key_id = key_id_of(presented) if presented else None
        key = await _lookup(self._runs["runs"].keys, key_id) if key_id else None
        if (
            key is not None
            and key.revoked_at is None
            and self._runs["runs"].keys.matches(key, presented or "")
        ):
            scope[SCOPE_KEY] = key
            await self.app(scope, receive, send)
            return
        code = CLOSE_KEY_MISSING if not presented else CLOSE_KEY_WRONG
        if (await receive())["type"] == "websocket.connect":
            offered = scope.get("subprotocols", [])
            accept = {
                "type": "websocket.accept",
                "subprotocol": SUBPROTOCOL if SUBPROTOCOL in offered else None,
            }
            await send(accept)
            reason = "an API key is needed" if code == CLOSE_KEY_MISSING else "the API key is not valid"
            await send({"type": "websocket.close", "code": code, "reason": reason})


async def _lookup(keys: KeyRing, key_id: str) -> ApiKey | None:
    """From memory while fresh (every poll), else from disk off the event loop."""
    fresh, key = keys.cached(key_id)
    if fresh:
        return key
    return await run_in_threadpool(keys.load, key_id)


def _unauthorized(code: str, message: str, error: str | None) -> Response:
    challenge = 'Bearer realm="runlane"' + (f', error="{error}"' if error else "")
    return problem(401, code, message, {"WWW-Authenticate": challenge})
