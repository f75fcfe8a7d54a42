"""`runlane keys`: make, list and revoke API keys in RUNLANE_OUTPUT_DIR, with no server running."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.config import Settings
from app.runs.api_keys import KeyRing
from app.runs.document_paths import resolve_markdown_path
from app.runs.errors import InvalidRequestError
from app.runs.run_store import META_DIR

keys = typer.Typer(help="API keys (RUNLANE_AUTH=api-key): create, list, revoke.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
_RATE = re.compile(r"(\d+)\s*(?:/\s*min)?")


def _ring() -> tuple[Settings, KeyRing]:
    settings = Settings()
    return settings, KeyRing(settings.output_dir.resolve() / META_DIR)


def _rate(value: str | None) -> int | None:
    if value is None:
        return None
    match = _RATE.fullmatch(value.strip())
    if match is None or int(match.group(1)) < 1:
        raise typer.BadParameter("give requests per minute as N/min, e.g. 120/min", param_hint="--rate")
    return int(match.group(1))


@keys.command()
def create(
    name: Annotated[str, typer.Option("--name", help="Who the key is for (shown in `keys list`).")],
    admin: Annotated[bool, typer.Option("--admin", help="Sees and manages every run.")] = False,
    documents: Annotated[
        list[str] | None,
        typer.Option("--documents", help="May start runs only over this folder (repeatable)."),
    ] = None,
    max_active: Annotated[int | None, typer.Option("--max-active", min=1, help="Queued + running.")] = None,
    max_queued: Annotated[int | None, typer.Option("--max-queued", min=1, help="Queued runs.")] = None,
    rate: Annotated[str | None, typer.Option("--rate", help="Requests per minute, e.g. 120/min.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"id", "key", "webhook_secret"}.')] = False,
) -> None:
    """Make a key; it is printed once, here, and stored only as a keyed hash."""
    settings, ring = _ring()
    for folder in documents or []:
        try:
            resolve_markdown_path(settings.documents_root, folder, excluded=settings.output_dir)
        except InvalidRequestError as exc:
            raise typer.BadParameter(exc.message, param_hint="--documents") from None
    record, key = ring.create(name, admin, documents or None, max_active, max_queued, _rate(rate))
    if as_json:
        print(json.dumps({"id": record.id, "key": key, "webhook_secret": record.webhook_secret}))
        return
    print(f"id:             {record.id}")
    print(f"key:            {key}")
    print(f"webhook secret: {record.webhook_secret}")
    err.print("Keep both now: they are not shown again.", style="yellow")


@keys.command(name="list")
def list_keys(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every key with its rights and limits (never the key or its secret)."""
    _, ring = _ring()
    records = [record.public() for record in ring.all()]
    if as_json:
        print(json.dumps(records, indent=2))
        return
    table = Table("id", "name", "admin", "documents", "limits", "created", "revoked")
    for r in records:
        limits = ", ".join(
            f"{label} {r[field]}"
            for label, field in (("active", "max_active"), ("queued", "max_queued"), ("/min", "rate_per_min"))
            if r[field] is not None
        )
        documents = ", ".join(r["documents"] or []) or "all"  # type: ignore[arg-type]
        table.add_row(
            str(r["id"]), str(r["name"]), "yes" if r["admin"] else "", documents, limits,
            str(r["created_at"]), str(r["revoked_at"] or ""),
        )  # fmt: skip
    out.print(table)


@keys.command()
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (from `keys list`).")]) -> None:
    """Revoke a key: every server process refuses it within a second."""
    _, ring = _ring()
    record = ring.revoke(key_id)
    if record is None:
        err.print(f"[red]error:[/] no key with id '{key_id}'", highlight=False)
        raise typer.Exit(1)
    print(f"revoked {record.id} ({record.name}) at {record.revoked_at}")
