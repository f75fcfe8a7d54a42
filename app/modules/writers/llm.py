"""The LLM writer: streams a cited answer from any OpenAI-compatible chat endpoint.

Works with OpenAI, vLLM, Ollama and llama.cpp's server.  With payload logging on, the request
and the response are written to the run folder; the API key never is (it travels only in the
Authorization header, which is not part of the payload).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from openai import APIError, OpenAI, Stream
from openai.types.chat import ChatCompletionChunk

from app import atomic_file
from app.modules.writers.evidence import Draft, Evidence, sources_section

SYSTEM_PROMPT = (
    "You answer questions using only the numbered evidence you are given. "
    "Write concise markdown. After every statement, cite the evidence it rests on as [n] "
    "(or [Dn] for database rows). If the evidence does not answer part of the question, say so "
    "plainly instead of guessing."
)
PAYLOAD_DIR = "llm"
STOP_CHECK_INTERVAL_S = 0.1


@dataclass(frozen=True)
class LlmSettings:
    base_url: str
    model: str
    api_key: str
    timeout_s: float


def evidence_prompt(evidence: Evidence) -> str:
    blocks = [f"Question: {evidence.question}", "", "Evidence:"]
    for source in evidence.sources:
        blocks.append(f"[{source.number}] ({source.file} § {source.heading})\n{source.text}")
    if evidence.sql is not None:
        for number, query in enumerate(evidence.sql.matches, start=1):
            rows = "\n".join(", ".join(str(v) for v in row) for row in query.rows)
            blocks.append(f"[D{number}] ({query.database}; columns: {', '.join(query.columns)})\n{rows}")
    if evidence.feedback is not None:
        blocks.append(f"Feedback on an earlier answer to this question; follow it:\n{evidence.feedback.text}")
    return "\n\n".join(blocks)


class LlmWriter:
    def __init__(self, settings: LlmSettings, payload_dir: Path | None = None) -> None:
        self.settings = settings
        self.payload_dir = payload_dir
        self.client = OpenAI(
            base_url=settings.base_url, api_key=settings.api_key, timeout=settings.timeout_s, max_retries=1
        )

    def write(self, evidence: Evidence, should_stop: Callable[[], bool]) -> Draft:
        request: dict[str, Any] = {
            "model": self.settings.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": evidence_prompt(evidence)},
            ],
            "temperature": 0,
            "stream": True,
        }
        self._log("request", {"base_url": self.settings.base_url, **request})
        started = time.monotonic()
        stream = self.client.chat.completions.create(**request)
        pieces, stopped = self._read(stream, should_stop)
        text = "".join(pieces)
        details = {"kind": "llm", "model": self.settings.model, "base_url": self.settings.base_url}
        self._log(
            "response",
            {**details, "stopped": stopped, "seconds": round(time.monotonic() - started, 3), "content": text},
        )
        answer = f"# {evidence.question.strip()}\n\n{text.strip()}\n"
        markdown = f"{answer}\n{sources_section(evidence, answer)}"
        return Draft(markdown, details, stopped=stopped)

    @staticmethod
    def _read(stream: Stream[ChatCompletionChunk], should_stop: Callable[[], bool]) -> tuple[list[str], bool]:
        """Collect the streamed text; a stop request closes the stream even while it stalls."""
        pieces: list[str] = []
        done = threading.Event()
        stop = threading.Event()

        def watch() -> None:
            while not done.wait(STOP_CHECK_INTERVAL_S):
                if should_stop():
                    stop.set()
                    _interrupt(stream)
                    return

        watcher = threading.Thread(target=watch, name="runlane-llm-stop", daemon=True)
        watcher.start()
        try:
            for chunk in stream:
                if stop.is_set() or should_stop():
                    stop.set()
                    break
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
        except (httpx.HTTPError, APIError):
            if not stop.is_set():
                raise
        finally:
            done.set()
            stream.close()
            watcher.join()
        return pieces, stop.is_set()

    def _log(self, kind: str, payload: dict[str, Any]) -> None:
        if self.payload_dir is None:
            return
        self.payload_dir.mkdir(exist_ok=True)
        atomic_file.write_json(self.payload_dir / f"{kind}.json", payload)


def _interrupt(stream: Stream[ChatCompletionChunk]) -> None:
    """End a stream another thread is blocked reading: closing the socket from here does not
    wake a blocked recv(2) on Linux, shutting it down does."""
    network = stream.response.extensions.get("network_stream")
    sock = network.get_extra_info("socket") if network is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    stream.close()
