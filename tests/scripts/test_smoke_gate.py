"""The smoke-test gate, run as its real command against real server processes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.support.server import REPO_ROOT, free_port, server_env, uvicorn_server

pytestmark = pytest.mark.slow


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copytree(REPO_ROOT / "documents", tmp_path / "documents")
    return tmp_path


def smoke(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "app.scripts.test_async_backend_flow",
        "--output-dir",
        str(root / "smoke"),
    ]
    return subprocess.run(
        [*command, "--poll-interval", "0.2", *args],
        cwd=root,
        env=server_env(root),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_gate_passes_against_the_real_server_and_saves_every_response(root: Path) -> None:
    with uvicorn_server(root, poll_interval_s="1") as server:
        result = smoke(root, "--base-url", server.url, "--run-id", "smoke-1", "--enable-sql")
    assert result.returncode == 0, result.stderr
    assert "contract held: run smoke-1 ended completed" in result.stdout
    [folder] = (root / "smoke").iterdir()
    names = sorted(path.name for path in folder.iterdir())
    assert names[0] == "001-create.json" and "final.md" in names
    assert any(name.endswith("-output.json") for name in names)
    assert any(name.endswith("-context.json") for name in names)
    created = orjson.loads((folder / "001-create.json").read_bytes())
    assert created["status_code"] == 202 and created["body"]["run_id"] == "smoke-1"
    assert "Renewable Power Programme" in (folder / "final.md").read_text()


def test_gate_can_spawn_its_own_server(root: Path) -> None:
    result = smoke(root, "--spawn-server")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("app", "broken_check"),
    [
        ("tests.support.broken_app:missing_field", "field 'completed_at' is present"),
        ("tests.support.broken_app:early_output", "answers 409 while the run is queued or running"),
        ("tests.support.broken_app:undocumented", "{artifact}: the document declares 409"),
    ],
)
def test_gate_exits_1_naming_the_check_when_a_server_breaks_the_contract(
    root: Path, app: str, broken_check: str
) -> None:
    with uvicorn_server(root, app=app) as server:
        result = smoke(root, "--base-url", server.url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "CONTRACT BROKEN" in result.stderr and broken_check in result.stderr


def test_gate_exits_2_when_the_server_is_unreachable(root: Path) -> None:
    result = smoke(root, "--base-url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2 and "UNREACHABLE" in result.stderr


def test_gate_exits_2_when_the_run_does_not_finish_in_time(root: Path) -> None:
    with uvicorn_server(root, app="tests.support.broken_app:never_finishes") as server:
        result = smoke(root, "--base-url", server.url, "--timeout", "0.5")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "still running after 0.5 s" in result.stderr
