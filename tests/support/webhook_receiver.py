"""A webhook receiver on 127.0.0.1 that checks every signature with the `standardwebhooks`
package (an implementation of the specification independent of Runlane's)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    verified: bool
    answered: int


@dataclass
class Receiver:
    secret: str
    port: int = 0
    answers: dict[str, list[int]] = field(default_factory=dict)  # per path, in order; then 200
    deliveries: list[Delivery] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)  # for paths under /slow

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def to(self, path: str) -> list[Delivery]:
        return [delivery for delivery in self.deliveries if delivery.path == path]


@contextmanager
def webhook_receiver(secret: str) -> Iterator[Receiver]:
    receiver = Receiver(secret)
    guard = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                Webhook(receiver.secret).verify(raw, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
            if self.path.startswith("/slow"):
                receiver.release.wait(60)
            with guard:
                planned = receiver.answers.get(self.path, [])
                status = planned.pop(0) if planned else 200
                receiver.deliveries.append(Delivery(self.path, headers, orjson.loads(raw), verified, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
