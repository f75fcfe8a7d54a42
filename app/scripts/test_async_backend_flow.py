"""The smoke-test gate: drive a real server the way the frontend will, and check the v1 contract.

    python -m app.scripts.test_async_backend_flow [--base-url URL | --spawn-server] [options]

Triggers a run, polls its status (every --poll-interval seconds, or the server's Retry-After),
checks output and context answer 409 until the run finishes, then fetches both. Every payload
is checked against the contract, and every response is saved as JSON (plus final.md) in the
output folder. Exit codes: 0 contract held, 1 contract broken, 2 server unreachable or timed out.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from app.scripts.contract_checks import (
    ACTIVE,
    ContractBrokenError,
    check_context,
    check_created,
    check_not_finished,
    check_output,
    check_status,
    require,
)
from app.scripts.openapi_checks import DocumentChecks

EXIT_OK, EXIT_BROKEN, EXIT_UNREACHABLE = 0, 1, 2


class UnreachableError(Exception):
    """The server could not be reached, or the run did not finish in time."""


@dataclass
class Recorder:
    """Saves every response, numbered in order, for debugging."""

    folder: Path
    count: int = 0
    saved: list[str] = field(default_factory=list)
    seen: list[tuple[httpx.Response, Any]] = field(default_factory=list)

    def save(self, name: str, response: httpx.Response) -> Any:
        self.count += 1
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        self.seen.append((response, body))
        record = {"status_code": response.status_code, "headers": dict(response.headers), "body": body}
        path = self.folder / f"{self.count:03d}-{name}.json"
        path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
        self.saved.append(path.name)
        return body


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m app.scripts.test_async_backend_flow", description=__doc__
    )
    parser.add_argument("--base-url", default=os.environ.get("RUNLANE_URL", "http://127.0.0.1:8000"))
    parser.add_argument(
        "--api-key",
        default=os.environ.get("RUNLANE_API_KEY"),
        help="API key of a server with RUNLANE_AUTH=api-key (default: RUNLANE_API_KEY)",
    )
    parser.add_argument("--spawn-server", action="store_true", help="start a local server on a free port")
    parser.add_argument("--question", default="What are main climate initiatives?")
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--enable-sql", action="store_true")
    parser.add_argument("--markdown-path", default="documents")
    parser.add_argument("--log-llm-payload", action="store_true")
    parser.add_argument(
        "--poll-interval", type=float, default=2.0, help="seconds between polls without Retry-After"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="overall limit in seconds")
    parser.add_argument("--output-dir", type=Path, default=Path("smoke-artifacts"))
    return parser.parse_args(argv)


def _request(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return client.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise UnreachableError(f"{method} {url}: {exc}") from exc


def run_flow(client: httpx.Client, args: argparse.Namespace, recorder: Recorder) -> dict[str, Any]:
    body: dict[str, Any] = {
        "question": args.question,
        "enable_sql": args.enable_sql,
        "markdown_path": args.markdown_path,
        "log_llm_payload": args.log_llm_payload,
    }
    if args.run_id:
        body["run_id"] = args.run_id
    response = _request(client, "POST", "/api/v1/runs", json=body)
    created = recorder.save("create", response)
    require(response.status_code == 202, "POST /runs: answers 202", created)
    check_created(created, args.run_id)
    require(
        response.headers.get("location") == created["status_url"],
        "POST /runs: Location is the status URL",
        dict(response.headers),
    )
    status = poll(client, args, recorder, created)
    for what, check in (("output", check_output), ("context", check_context)):
        response = _request(client, "GET", created[f"{what}_url"])
        payload = recorder.save(what, response)
        if status["status"] in ("completed", "completed_with_gaps"):
            require(response.status_code == 200, f"GET {what}: a completed run answers 200", payload)
            check(payload, created["run_id"], status["status"])
            if what == "output":
                (recorder.folder / "final.md").write_text(payload["content"])
    return status


def poll(
    client: httpx.Client, args: argparse.Namespace, recorder: Recorder, created: dict[str, Any]
) -> dict[str, Any]:
    deadline = time.monotonic() + args.timeout
    previous: str | None = None
    checked_not_finished = False
    while True:
        response = _request(client, "GET", created["status_url"])
        status = recorder.save("status", response)
        require(response.status_code == 200, "GET status: answers 200", status)
        check_status(status, created["run_id"], previous)
        previous = status["status"]
        if previous not in ACTIVE:
            return dict(status)
        if not checked_not_finished:
            for what in ("output", "context"):
                early = _request(client, "GET", created[f"{what}_url"])
                payload = recorder.save(f"{what}-early", early)
                if early.status_code != 200:  # the run may have finished in between
                    check_not_finished(early.status_code, payload, what)
            checked_not_finished = True
        if time.monotonic() > deadline:
            raise UnreachableError(f"run {created['run_id']} still {previous} after {args.timeout:g} s")
        # The server's Retry-After is the poll interval it asks for; without it, --poll-interval.
        time.sleep(float(response.headers.get("retry-after", args.poll_interval)))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def spawned_server(timeout: float = 60.0) -> Iterator[str]:
    """A local `uvicorn` on a free port, serving the app with the current environment."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.api.main:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise UnreachableError("the spawned server did not start")
        yield url
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(30)
        if process.poll() is None:
            process.kill()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = args.output_dir / time.strftime("%Y%m%d_%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(folder)
    try:
        with contextlib.ExitStack() as stack:
            base_url = stack.enter_context(spawned_server()) if args.spawn_server else args.base_url
            headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
            client = stack.enter_context(httpx.Client(base_url=base_url, timeout=30, headers=headers))
            status = run_flow(client, args, recorder)
            # Then every response against the document the server serves: the gate and the
            # document cannot drift apart (the contract's own checks, above, speak first).
            document = DocumentChecks.fetch(client)
            if document is None:
                print("note: this API key may not read /openapi.json; responses were not checked against it")
            else:
                for response, body in recorder.seen:
                    document.check(response, body)
    except ContractBrokenError as broken:
        print(f"CONTRACT BROKEN: {broken.check}", file=sys.stderr)
        print(orjson.dumps(broken.payload, option=orjson.OPT_INDENT_2).decode(), file=sys.stderr)
        print(f"responses saved in {folder}", file=sys.stderr)
        return EXIT_BROKEN
    except UnreachableError as unreachable:
        print(f"UNREACHABLE: {unreachable}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(f"contract held: run {status['run_id']} ended {status['status']} ({status['finish_reason']})")
    print(f"{len(recorder.saved)} responses saved in {folder}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
