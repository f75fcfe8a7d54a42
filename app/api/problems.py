"""The one error body of the API: RFC 9457 problem details plus a stable `code` and a `message`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **members: Any
) -> Response:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": message,
        "code": code,
        "message": message,
        **{key: value for key, value in members.items() if value is not None},
    }
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)
