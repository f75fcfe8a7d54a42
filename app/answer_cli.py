"""`runlane edit` and `runlane versions`: work on a finished run's answer from the shell."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.cli_options import DEFAULT_URL, JsonOption, KeyOption, UrlOption, connected, emit_json

out = Console()
err = Console(stderr=True)


def edit(
    run_id: Annotated[str, typer.Argument(help="The finished run whose answer to edit.")],
    section: Annotated[
        str, typer.Option("--section", help="The section's heading, or its index (0: the top).")
    ],
    file: Annotated[str, typer.Option("--file", help="The section's new markdown; - reads standard input.")],
    base_version: Annotated[
        int | None,
        typer.Option("--base-version", help="The version you edited (default: the latest, read now)."),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
) -> None:
    """Replace one section of the answer; the result is a new version, and every version is kept."""
    content = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    wanted: str | int = int(section) if section.isdigit() else section
    with connected(url, api_key) as client:
        saved = client.edit(run_id, wanted, content, base_version)
    if as_json:
        emit_json(saved)
        return
    out.print(f"saved version {saved['version']}; edited sections: {', '.join(saved['edited_sections'])}")
    for sentence in saved["uncited_sentences"]:
        err.print(f"[yellow]uncited:[/] {sentence}", highlight=False)


def versions(
    run_id: Annotated[str, typer.Argument(help="The finished run.")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
) -> None:
    """List the versions of a run's answer: when, by which key, and what changed."""
    with connected(url, api_key) as client:
        listed = client.versions(run_id)
    if as_json:
        emit_json(listed)
        return
    table = Table("version", "source", "created", "sections changed", "file")
    for entry in listed["versions"]:
        latest = " (latest)" if entry["version"] == listed["latest_version"] else ""
        table.add_row(
            f"{entry['version']}{latest}",
            entry["source"],
            entry["created_at"] or "",
            ", ".join(entry["sections_changed"]),
            entry["path"],
        )
    out.print(table)
