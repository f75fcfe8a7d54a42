"""The `runlane` command line: serve the API, ask questions and inspect runs over HTTP."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from app.answer_cli import edit, versions
from app.api_client import RunlaneClient, progress_line
from app.cli_options import DEFAULT_URL, JsonOption, KeyOption, UrlOption, connected, emit_json
from app.key_cli import keys

app = typer.Typer(
    help="Runlane: start answer-generation runs, follow them, read their answers.", no_args_is_help=True
)
app.add_typer(keys, name="keys")
app.command()(edit)
app.command()(versions)
out = Console()
err = Console(stderr=True)


def print_markdown(text: str) -> None:
    if out.is_terminal:
        out.print(Markdown(text))
    else:
        print(text, end="" if text.endswith("\n") else "\n")


def describe(status: dict[str, Any]) -> str:
    line = f"{status['run_id']}  {status['status']}"
    if status.get("finish_reason"):
        line += f"  ({status['finish_reason']})"
    if status.get("error"):
        line += f"  {status['error']['type']}: {status['error']['message']}"
    return line


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes sharing the output folder.")] = 1,
) -> None:
    """Serve the API (settings come from RUNLANE_* environment variables)."""
    import uvicorn

    from app.api.http_protocol import PROTOCOL

    uvicorn.run("app.api.main:app", host=host, port=port, workers=workers, http=PROTOCOL)


def _follow(client: RunlaneClient, run_id: str) -> dict[str, Any]:
    """Poll until the run ends, showing its progress in the console's words; Ctrl+C leaves the
    run going and says how to get back to it."""
    try:
        if not out.is_terminal:
            last: list[str] = [""]

            def report(status: dict[str, Any]) -> None:
                line = f"{status['status']}: {progress_line(status)}"
                if line != last[0]:
                    print(line, file=sys.stderr)
                    last[0] = line

            return client.wait(run_id, report, time.sleep)
        columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn())
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("queued", total=1.0)

            def draw(status: dict[str, Any]) -> None:
                done = status["status"] in ("completed", "completed_with_gaps")
                fraction = 1.0 if done else (status.get("progress") or {}).get("fraction", 0.0)
                bar.update(task, completed=fraction, description=progress_line(status))

            return client.wait(run_id, draw, time.sleep)
    except KeyboardInterrupt:
        err.print(
            f"Stopped following run {run_id}; it goes on. Follow it with `runlane status {run_id}`, "
            f"cancel it with `runlane cancel {run_id}`.",
            highlight=False,
            soft_wrap=True,  # commands to copy stay on one line
        )
        raise typer.Exit(130) from None


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Runs executed at once (pool processes).")] = 4,
    queues: Annotated[
        str | None, typer.Option(help="Comma-separated Celery queues to consume (default RUNLANE_QUEUE).")
    ] = None,
) -> None:
    """Execute runs for API servers in celery mode: a Celery worker on RUNLANE_BROKER_URL,
    sharing RUNLANE_OUTPUT_DIR (and RUNLANE_DATABASE_URL) with them."""
    from pydantic import ValidationError

    from app.api.logs import configure_logging
    from app.config import Settings

    try:
        settings = Settings(executor="celery")
    except ValidationError as exc:
        err.print(f"[red]error:[/] {exc.errors()[0]['msg']}", highlight=False)
        raise typer.Exit(2) from None
    configure_logging(settings)
    from app.runs.celery_worker import run_worker

    names = [name.strip() for name in (queues or settings.queue).split(",") if name.strip()]
    run_worker(settings, concurrency, names, settings.log_level.upper())


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    wait: Annotated[bool, typer.Option("--wait", help="Follow the run and print its answer.")] = False,
    sql: Annotated[bool, typer.Option("--sql", help="Also search the SQLite data folder.")] = False,
    docs: Annotated[
        str, typer.Option("--docs", help="Documents folder under the server's root.")
    ] = "documents",
    run_id: Annotated[str | None, typer.Option("--run-id", help="Your own run id.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
) -> None:
    """Start a run; with --wait, show its progress and print the answer."""
    request: dict[str, Any] = {"question": question, "enable_sql": sql, "markdown_path": docs}
    if run_id:
        request["run_id"] = run_id
    with connected(url, api_key) as client:
        _answer(client, client.create(request), wait, as_json)


def _answer(client: RunlaneClient, created: dict[str, Any], wait: bool, as_json: bool) -> None:
    """Print the new run's id, or with `wait` follow it and print its answer."""
    if not wait:
        emit_json(created) if as_json else print(created["run_id"])
        return
    err.print(f"run {created['run_id']} started", highlight=False)
    final = _follow(client, created["run_id"])
    err.print(f"run {describe(final)}", highlight=False)
    if final["status"] in ("completed", "completed_with_gaps"):
        output = client.output(created["run_id"])
        emit_json(output) if as_json else print_markdown(output["content"])
        return
    if as_json:
        emit_json(final)
    raise typer.Exit(1)


@app.command()
def regenerate(
    run_id: Annotated[str, typer.Argument(help="The finished run to answer again.")],
    feedback: Annotated[
        str, typer.Option("--feedback", help='What to change, e.g. "leave out methane; focus on heat pumps".')
    ],
    wait: Annotated[bool, typer.Option("--wait", help="Follow the new run and print its answer.")] = False,
    new_run_id: Annotated[str | None, typer.Option("--run-id", help="Your own id for the new run.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
) -> None:
    """Answer a finished run's question again, with feedback, as a new run linked to it."""
    with connected(url, api_key) as client:
        _answer(client, client.regenerate(run_id, feedback, new_run_id), wait, as_json)


@app.command()
def status(
    run_id: str, as_json: JsonOption = False, url: UrlOption = DEFAULT_URL, api_key: KeyOption = None
) -> None:
    """Show a run's status."""
    with connected(url, api_key) as client:
        payload, _ = client.status(run_id)
        if as_json:
            emit_json(payload)
            return
        print(describe(payload))
        if payload.get("progress"):
            progress = payload["progress"]
            print(f"progress: {progress['fraction']:.0%} {progress['stage']}: {progress['message']}")


@app.command(name="list")
def list_runs(
    status: Annotated[str | None, typer.Option("--status", help="Only runs in this status.")] = None,
    limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
) -> None:
    """List runs, newest first."""
    with connected(url, api_key) as client:
        page = client.list(status, limit)
        if as_json:
            emit_json(page)
            return
        if not out.is_terminal:
            for run in page["runs"]:
                fields = (run["run_id"], run["status"], run["created_at"], run.get("finish_reason") or "")
                print("\t".join((*fields, run.get("question") or "")))
            return
        if not page["runs"]:
            err.print("No runs yet." if status is None else f"No {status} runs.")
            return
        # Run ids are what people copy into the next command: never cut short.
        table = Table(box=None)
        table.add_column("run_id", no_wrap=True, min_width=max(len(r["run_id"]) for r in page["runs"]))
        table.add_column("status", no_wrap=True)
        table.add_column("created", no_wrap=True)
        table.add_column("question", overflow="ellipsis", no_wrap=True, ratio=1)
        for run in page["runs"]:
            table.add_row(run["run_id"], run["status"], run["created_at"], run.get("question") or "")
        out.print(table)


def _artifact(
    fetch: Callable[[RunlaneClient], dict[str, Any]], url: str, api_key: str | None, as_json: bool, key: str
) -> None:
    with connected(url, api_key) as client:
        payload = fetch(client)
        if as_json:
            emit_json(payload)
        elif key == "content":
            print_markdown(payload["content"])
        else:
            emit_json(payload[key])


@app.command()
def output(
    run_id: str, as_json: JsonOption = False, url: UrlOption = DEFAULT_URL, api_key: KeyOption = None
) -> None:
    """Print a finished run's answer (markdown)."""
    _artifact(lambda client: client.output(run_id), url, api_key, as_json, "content")


@app.command()
def context(
    run_id: str, as_json: JsonOption = False, url: UrlOption = DEFAULT_URL, api_key: KeyOption = None
) -> None:
    """Print a finished run's evidence (the context bundle)."""
    _artifact(lambda client: client.context(run_id), url, api_key, as_json, "context_bundle")


@app.command()
def cancel(
    run_id: str, as_json: JsonOption = False, url: UrlOption = DEFAULT_URL, api_key: KeyOption = None
) -> None:
    """Cancel a run (a queued run stops at once; a running one at its next check)."""
    with connected(url, api_key) as client:
        payload = client.cancel(run_id)
        if as_json:
            emit_json(payload)
        elif payload["status"] == "running":
            print(f"cancel requested: run {run_id} stops at its next check (`runlane status {run_id}`)")
        else:
            print(f"run {describe(payload)}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def smoke(ctx: typer.Context, url: UrlOption = DEFAULT_URL, api_key: KeyOption = None) -> None:
    """Run the smoke-test gate (options of python -m app.scripts.test_async_backend_flow)."""
    from app.scripts.test_async_backend_flow import main as smoke_main

    key = ["--api-key", api_key] if api_key else []
    raise typer.Exit(smoke_main(["--base-url", url, *key, *ctx.args]))


def main() -> None:
    app()
