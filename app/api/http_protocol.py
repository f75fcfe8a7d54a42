"""Uvicorn's httptools protocol with a bound on request heads: oversized headers get 431.

httptools buffers an incomplete header however large it grows, so ten clients sending 20 MB
headers cost hundreds of megabytes.  Every place Runlane starts uvicorn passes
`--http app.api.http_protocol:BoundedHttpToolsProtocol` (see `SERVER_OPTIONS`).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings

PROTOCOL = "app.api.http_protocol:BoundedHttpToolsProtocol"
SERVER_OPTIONS = ["--http", PROTOCOL]
# Uvicorn builds the protocol without the app, so the limit comes from the environment's Settings.
MAX_HEAD_BYTES = Settings().max_header_bytes

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/problem+json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%b"
)
_BODY = (
    b'{"type":"about:blank","title":"Request Header Fields Too Large","status":431,'
    b'"detail":"The request head is larger than the server accepts.","code":"HEADERS_TOO_LARGE",'
    b'"message":"The request head is larger than the server accepts."}'
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True
        self._tail = b""  # the last bytes of the head so far: its end may straddle two reads

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            # Only the head counts: a client may send head and body in one write.
            window = self._tail + data
            end = window.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            self._tail = window[-3:]
            if self._head_bytes > MAX_HEAD_BYTES:
                self.transport.write(_TOO_LARGE % (len(_BODY), _BODY))
                self.transport.close()
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._tail = b""
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
