"""The `runlane` command, run as installed, against a real server process."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_until
from tests.support.server import REPO_ROOT, Server, free_port, server_env, uvicorn_server

pytestmark = pytest.mark.slow
RUNLANE = str(Path(sys.executable).parent / "runlane")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("cli")
    shutil.copytree(REPO_ROOT / "documents", root / "documents")
    with uvicorn_server(root, poll_interval_s="1") as running:
        yield running


def runlane(server_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**server_env(Path("/nonexistent")), "RUNLANE_URL": server_url}
    return subprocess.run([RUNLANE, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_ask_wait_prints_the_answer_as_plain_markdown_when_piped(server: Server) -> None:
    result = runlane(server.url, "ask", "What are main climate initiatives?", "--wait", "--run-id", "cli-ask")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# What are main climate initiatives?")
    assert "[1]" in result.stdout and "## Sources" in result.stdout
    assert "\x1b[" not in result.stdout  # no terminal escapes in a pipe
    assert "completed" in result.stderr  # progress lines go to stderr


def test_read_commands_print_json_with_json(server: Server) -> None:
    runlane(
        server.url,
        "ask",
        "What is the offshore wind capacity target?",
        "--wait",
        "--sql",
        "--run-id",
        "cli-json",
    )
    status = json.loads(runlane(server.url, "status", "cli-json", "--json").stdout)
    assert status["status"] == "completed" and status["run_id"] == "cli-json"
    listed = json.loads(runlane(server.url, "list", "--json", "--status", "completed").stdout)
    assert "cli-json" in [run["run_id"] for run in listed["runs"]]
    output = json.loads(runlane(server.url, "output", "cli-json", "--json").stdout)
    assert "3.5" in output["content"]
    context = json.loads(runlane(server.url, "context", "cli-json", "--json").stdout)
    assert context["context_bundle"]["sql"]["enabled"] is True
    assert json.loads(runlane(server.url, "context", "cli-json").stdout)["question"].startswith("What is")


def test_plain_listing_and_status_are_pipe_friendly(server: Server) -> None:
    runlane(server.url, "ask", "How are cities increasing tree canopy?", "--wait", "--run-id", "cli-plain")
    lines = runlane(server.url, "list").stdout.splitlines()
    assert any(line.split("\t")[:2] == ["cli-plain", "completed"] for line in lines)
    assert runlane(server.url, "status", "cli-plain").stdout.startswith("cli-plain  completed  (answered)")
    assert runlane(server.url, "output", "cli-plain").stdout.startswith("# How are cities")


def test_ask_without_wait_prints_the_run_id_and_cancel_reports_a_finished_run(server: Server) -> None:
    created = runlane(server.url, "ask", "What are the recycling targets?", "--run-id", "cli-nowait")
    assert created.stdout.strip() == "cli-nowait"
    wait_until(
        lambda: httpx.get(f"{server.url}/api/v1/runs/cli-nowait/status").json()["status"] == "completed",
        what="cli-nowait to finish",
    )
    result = runlane(server.url, "cancel", "cli-nowait")
    assert result.returncode == 1
    assert "already ended completed" in result.stderr and "Traceback" not in result.stderr


def test_unknown_run_is_one_clear_line_and_exit_1(server: Server) -> None:
    result = runlane(server.url, "status", "no-such-run")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: No run with run_id 'no-such-run'. (RUN_NOT_FOUND)"


def test_unreachable_server_is_one_clear_line_and_exit_2() -> None:
    result = runlane(f"http://127.0.0.1:{free_port()}", "list")
    assert result.returncode == 2
    assert "Cannot reach the Runlane server" in result.stderr and "Traceback" not in result.stderr


def test_a_failed_or_gapped_run_is_reported(server: Server) -> None:
    result = runlane(server.url, "ask", "What is the recipe for chocolate cake?", "--wait")
    assert result.returncode == 0
    assert "## Gaps" in result.stdout and "chocolate" in result.stdout


def test_smoke_command_runs_the_gate(server: Server, tmp_path: Path) -> None:
    result = runlane(server.url, "smoke", "--poll-interval", "0.2", "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "contract held" in result.stdout


def test_serve_starts_the_api(tmp_path: Path) -> None:
    (tmp_path / "documents").mkdir()
    port = free_port()
    process = subprocess.Popen(
        [RUNLANE, "serve", "--port", str(port)], cwd=tmp_path, env=server_env(tmp_path)
    )
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout=60, what="runlane serve to answer")
    finally:
        process.terminate()
        process.wait(30)
    assert (tmp_path / "output" / ".runlane" / "index.sqlite3").exists()


def test_on_a_terminal_ask_draws_progress_and_renders_the_markdown(tmp_path: Path) -> None:
    import os
    import pty

    shutil.copytree(REPO_ROOT / "documents", tmp_path / "documents")
    # The run waits at its first stage until the bar has shown it: no race with the polls.
    pipeline = "tests.support.pipelines:held_default_pipeline"
    with uvicorn_server(tmp_path, poll_interval_s="1", pipeline=pipeline) as server:
        leader, follower = pty.openpty()
        terminal = {"RUNLANE_URL": server.url, "COLUMNS": "100", "TERM": "xterm"}
        env = {**server_env(Path("/nonexistent")), **terminal}
        process = subprocess.Popen(
            [RUNLANE, "ask", "What grants exist for heat pumps?", "--wait"],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env=env,
            close_fds=True,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closes when the process exits
                break
            if not chunk:
                break
            chunks.append(chunk)
            if re.search(rb"[1-7]/7", b"".join(chunks)):
                (tmp_path / "documents" / "release").touch()
        assert process.wait(60) == 0
        os.close(leader)
    screen = b"".join(chunks).decode("utf-8", errors="replace")
    assert "•" in screen and "- [1]" not in screen  # markdown rendered, not printed raw
    assert "\x1b[" in screen  # terminal styling
    assert "9,000" in screen and "Sources" in screen
    assert "━" in screen and re.search(r"[1-7]/7", screen)  # the bar, with "stage n of 7"


def test_worker_without_a_broker_says_what_is_missing_and_exits_2(tmp_path: Path) -> None:
    env = {key: value for key, value in server_env(tmp_path).items() if key != "RUNLANE_BROKER_URL"}
    command = [sys.executable, "-c", "from app.cli import main; main()", "worker"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "RUNLANE_BROKER_URL" in result.stderr and "Traceback" not in result.stderr


def test_ask_wait_says_the_run_id_at_once_and_the_final_status_at_the_end(server: Server) -> None:
    result = runlane(
        server.url, "ask", "What are main climate initiatives?", "--wait", "--run-id", "cli-says"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "run cli-says started"
    assert lines[-1] == "run cli-says  completed  (answered)"
    assert "completed: done (100%)" in lines  # the console's words


def test_list_shows_whole_run_ids_and_questions_even_on_a_narrow_terminal(server: Server) -> None:
    import os
    import pty

    long_id = "cli-a-rather-long-run-id-that-must-never-be-cut-short"
    runlane(server.url, "ask", "How are cities increasing tree canopy?", "--wait", "--run-id", long_id)
    piped = runlane(server.url, "list").stdout.splitlines()
    assert f"{long_id}\tcompleted" in "\n".join(piped)
    assert any(line.endswith("\tHow are cities increasing tree canopy?") for line in piped)
    leader, follower = pty.openpty()
    env = {**server_env(Path("/nonexistent")), "RUNLANE_URL": server.url, "COLUMNS": "70", "TERM": "xterm"}
    process = subprocess.Popen([RUNLANE, "list"], stdout=follower, stderr=follower, env=env, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(60) == 0
    os.close(leader)
    screen = re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode("utf-8", errors="replace"))
    assert long_id in screen and "…" not in screen.split(long_id)[0].splitlines()[-1]


def test_ctrl_c_leaves_the_run_going_and_says_how_to_follow_or_cancel_it(tmp_path: Path) -> None:
    import signal

    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "note.md").write_text("# Note\n\nSolar subsidies fund rooftop panels.\n")
    with uvicorn_server(tmp_path, pipeline="tests.support.pipelines:file_gated_pipeline") as gated:
        env = {**server_env(Path("/nonexistent")), "RUNLANE_URL": gated.url}
        process = subprocess.Popen(
            [RUNLANE, "ask", "q", "--wait", "--run-id", "cli-interrupted"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        status_url = f"{gated.url}/api/v1/runs/cli-interrupted/status"
        said: list[str] = []
        stream = process.stderr
        assert stream is not None
        reader = threading.Thread(target=lambda: said.extend(stream), daemon=True)
        reader.start()

        def following() -> bool:
            # The run is running and the CLI follows it (a fast run can be running before the
            # CLI has even read its 202).
            answer = httpx.get(status_url)
            running = answer.status_code == 200 and answer.json()["status"] == "running"
            return running and any(line.startswith("running") for line in said)

        wait_until(following)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        reader.join(timeout=30)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        stderr = "".join(said)
        assert process.returncode == 130
        assert "runlane status cli-interrupted" in stderr and "runlane cancel cli-interrupted" in stderr
        assert "Traceback" not in stderr
        assert httpx.get(status_url).json()["status"] == "running"  # the run goes on
        cancelled = runlane(gated.url, "cancel", "cli-interrupted")
        assert cancelled.returncode == 0 and cancelled.stdout.startswith(
            "cancel requested: run cli-interrupted"
        )


def test_regenerate_answers_again_with_feedback_as_a_linked_run(server: Server) -> None:
    runlane(server.url, "ask", "What are main climate initiatives?", "--wait", "--run-id", "cli-parent")
    result = runlane(
        server.url,
        "regenerate",
        "cli-parent",
        "--feedback",
        "leave out methane",
        "--wait",
        "--run-id",
        "cli-child",
    )
    assert result.returncode == 0, result.stderr
    assert "Renewable Power Programme" in result.stdout and "Methane" not in result.stdout
    assert result.stderr.splitlines()[0] == "run cli-child started"
    child = httpx.get(f"{server.url}/api/v1/runs/cli-child").json()
    assert child["parent_run_id"] == "cli-parent" and child["request"]["feedback"] == "leave out methane"
    assert httpx.get(f"{server.url}/api/v1/runs/cli-parent").json()["children"] == ["cli-child"]
    unknown = runlane(server.url, "regenerate", "no-such-run", "--feedback", "x")
    assert unknown.returncode == 1 and "RUN_NOT_FOUND" in unknown.stderr


def test_edit_saves_a_section_as_a_new_version_and_versions_lists_them(
    server: Server, tmp_path: Path
) -> None:
    runlane(server.url, "ask", "What is the offshore wind target?", "--wait", "--run-id", "cli-edit")
    text = tmp_path / "top.md"
    text.write_text("- The target is 3.5 gigawatts. [1]\n- Nobody doubts that it will be met.\n")
    edited = runlane(server.url, "edit", "cli-edit", "--section", "0", "--file", str(text))
    assert edited.returncode == 0, edited.stderr
    assert edited.stdout.strip() == f"saved version 2; edited sections: {'What is the offshore wind target?'}"
    assert "uncited: Nobody doubts that it will be met." in edited.stderr
    output = httpx.get(f"{server.url}/api/v1/runs/cli-edit/output").json()
    assert output["version"] == 2 and "- Nobody doubts that it will be met." in output["content"]
    stale = runlane(
        server.url, "edit", "cli-edit", "--section", "0", "--file", str(text), "--base-version", "1"
    )
    assert stale.returncode == 1 and "VERSION_CONFLICT" in stale.stderr
    listed = runlane(server.url, "versions", "cli-edit", "--json")
    versions = json.loads(listed.stdout)["versions"]
    assert [(v["version"], v["source"]) for v in versions] == [(1, "pipeline"), (2, "edit")]
    table = runlane(server.url, "versions", "cli-edit")
    assert "2 (latest)" in table.stdout and "pipeline" in table.stdout
