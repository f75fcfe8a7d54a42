"""What the `runlane` commands share: the server options and one way to report its errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from app.api_client import ApiError, RunlaneClient, ServerUnreachableError

err = Console(stderr=True)

UrlOption = Annotated[
    str, typer.Option("--url", envvar="RUNLANE_URL", help="Base URL of the Runlane server.")
]
KeyOption = Annotated[
    str | None,
    typer.Option("--api-key", envvar="RUNLANE_API_KEY", help="API key, if the server asks for one."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")]
DEFAULT_URL = "http://127.0.0.1:8000"


@contextmanager
def connected(url: str, api_key: str | None = None) -> Iterator[RunlaneClient]:
    """A client whose failures become one clear line and an exit code, never a traceback."""
    client = RunlaneClient(url, api_key=api_key)
    try:
        yield client
    except ServerUnreachableError as exc:
        err.print(f"[red]error:[/] {exc} Is it running? Start one with `runlane serve`.", highlight=False)
        raise typer.Exit(2) from None
    except ApiError as exc:
        hint = ""
        if exc.status_code == 401:
            hint = " Give a key with --api-key or RUNLANE_API_KEY (`runlane keys create` makes one)."
        err.print(f"[red]error:[/] {exc.message} ({exc.code}){hint}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        client.close()


def emit_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))
