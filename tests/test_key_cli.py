"""`runlane keys`: made, listed and revoked on RUNLANE_OUTPUT_DIR with no server; then used by
the client commands and the smoke gate against a server with keys on."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.keys import secret_of
from tests.support.server import REPO_ROOT, server_env, uvicorn_server

pytestmark = pytest.mark.slow
RUNLANE = str(Path(sys.executable).parent / "runlane")


def runlane(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**server_env(root), **env}
    return subprocess.run(
        [RUNLANE, *args], env=environment, cwd=root, capture_output=True, text=True, timeout=120, check=False
    )


def test_keys_are_made_listed_and_revoked_without_a_server(tmp_path: Path) -> None:
    (tmp_path / "documents").mkdir()
    made = runlane(
        tmp_path, "keys", "create", "--name", "alice", "--documents", "documents", "--max-active", "2",
        "--rate", "120/min", "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert set(created) == {"id", "key", "webhook_secret"}
    assert created["key"].startswith(f"rl_{created['id']}_") and created["webhook_secret"].startswith(
        "whsec_"
    )

    listed = runlane(tmp_path, "keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)
    assert (entry["id"], entry["name"], entry["documents"]) == (created["id"], "alice", ["documents"])
    assert (entry["max_active"], entry["rate_per_min"], entry["revoked_at"]) == (2, 120, None)
    assert created["key"] not in listed.stdout and created["webhook_secret"] not in listed.stdout

    assert runlane(tmp_path, "keys", "revoke", created["id"]).returncode == 0
    [entry] = json.loads(runlane(tmp_path, "keys", "list", "--json").stdout)
    assert entry["revoked_at"] is not None
    unknown = runlane(tmp_path, "keys", "revoke", "000000000000")
    assert unknown.returncode == 1 and "no key" in unknown.stderr

    bad = runlane(tmp_path, "keys", "create", "--name", "x", "--documents", "../etc")
    assert bad.returncode == 2 and "--documents" in bad.stderr
    bad_rate = runlane(tmp_path, "keys", "create", "--name", "x", "--rate", "fast")
    assert bad_rate.returncode == 2 and "N/min" in bad_rate.stderr


def test_client_commands_and_the_smoke_gate_take_a_key(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / "documents", tmp_path / "documents")
    key = json.loads(runlane(tmp_path, "keys", "create", "--name", "ci", "--json").stdout)["key"]
    with uvicorn_server(tmp_path, auth="api-key", poll_interval_s="1") as server:
        refused = runlane(tmp_path, "list", "--url", server.url)
        assert (
            refused.returncode == 1 and "API_KEY_MISSING" in refused.stderr and "--api-key" in refused.stderr
        )
        asked = runlane(
            tmp_path, "ask", "What are main climate initiatives?", "--wait", "--url", server.url,
            RUNLANE_API_KEY=key,
        )  # fmt: skip
        assert asked.returncode == 0, asked.stderr
        assert "## Sources" in asked.stdout
        gate = runlane(
            tmp_path, "smoke", "--url", server.url, "--api-key", key, "--output-dir", str(tmp_path / "smoke"),
        )  # fmt: skip
        assert gate.returncode == 0, gate.stdout + gate.stderr
        saved = "".join(path.read_text() for path in (tmp_path / "smoke").rglob("*.json"))
        assert key not in saved and secret_of(key) not in saved
        assert httpx.get(f"{server.url}/api/v1/runs").status_code == 401
