"""A local fake of an OpenAI-compatible chat endpoint, streaming Server-Sent Events."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLlm:
    def __init__(self, chunks: list[str]) -> None:
        self.chunks = chunks
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.hold_after_first_chunk = threading.Event()  # set = keep streaming without pause
        self.hold_after_first_chunk.set()
        self.hold_s = 600.0  # how long a held stream stays silent (the fixture releases it at exit)
        self.first_chunk_sent = threading.Event()
        self.url = ""


def _handler(fake: FakeLlm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            fake.requests.append(body)
            fake.headers.append({key.lower(): value for key, value in self.headers.items()})
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            try:
                for index, piece in enumerate(fake.chunks):
                    chunk = {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": body["model"],
                        "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                    }
                    if index == 0:
                        fake.first_chunk_sent.set()
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    if index == 0:
                        fake.hold_after_first_chunk.wait(fake.hold_s)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


@contextmanager
def fake_llm(chunks: list[str]) -> Iterator[FakeLlm]:
    fake = FakeLlm(chunks)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.hold_after_first_chunk.set()
        server.shutdown()
        server.server_close()
