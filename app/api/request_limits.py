"""Request limits checked before a body is read: body size (413) and the few headers whose
size Runlane bounds (422); pure ASGI, no copy."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import problem

_METHODS_WITH_BODY = {"POST", "PUT", "PATCH"}
HEADER_LIMITS = {b"idempotency-key": 255, b"last-event-id": 20}


class RequestLimits:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> HTTPException:
        return HTTPException(413, f"Request body is larger than {self.max_bytes} bytes.")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            limit = HEADER_LIMITS.get(name)
            if limit is not None and len(value) > limit:
                message = f"The {name.decode().title()} header is longer than {limit} characters."
                await problem(422, "VALIDATION_ERROR", message)(scope, receive, send)
                return
            too_long = name == b"content-length" and value.isdigit() and int(value) > self.max_bytes
            if too_long and scope["method"] in _METHODS_WITH_BODY:
                await problem(413, "PAYLOAD_TOO_LARGE", self._too_large().detail)(scope, receive, send)
                return
        if scope["method"] not in _METHODS_WITH_BODY:
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # FastAPI re-raises HTTPException from body parsing, so the 413 reaches the handler.
                raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)
