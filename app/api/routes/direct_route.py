"""`DirectRoute`: an APIRoute that stays in the OpenAPI document but skips dependency solving.

For the polling hot path only: the endpoint is called as ``endpoint(request, **path_params)``
and must return a Response itself, so FastAPI's per-request parameter machinery is bypassed.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class DirectRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            response: Response = await endpoint(request, **request.path_params)
            return response

        return handle
