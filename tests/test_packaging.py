"""The installed package (what the Dockerfile installs) carries the web console."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_contains_the_console_files(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)]
    built = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = tmp_path.glob("runlane-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"app/web/static/index.html", "app/web/static/console.js", "app/web/static/console.css"} <= names
    assert "app/api/main.py" in names
    assert not any(name.startswith("tests/") for name in names)


def test_the_compose_scale_profile_runs_two_api_replicas_and_two_workers_on_one_volume() -> None:
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    scaled = {name: spec for name, spec in services.items() if "scale" in spec.get("profiles", [])}
    apis = [spec for spec in scaled.values() if "ports" in spec and spec.get("build")]
    workers = [spec for spec in scaled.values() if spec.get("command", [None])[:2] == ["runlane", "worker"]]
    assert len(apis) == 2 and len(workers) == 1 and workers[0]["deploy"]["replicas"] == 2
    assert {"redis", "postgres"} <= set(scaled)
    for spec in [*apis, *workers]:
        assert spec["environment"]["RUNLANE_EXECUTOR"] == "celery"
        assert "scaled-output:/data/output" in spec["volumes"]
    assert "runlane" in services and "profiles" not in services["runlane"]  # the default stays one process


def test_the_container_and_compose_examples_turn_api_keys_on() -> None:
    from app.config import Settings

    dockerfile = (REPO / "Dockerfile").read_text()
    assert "RUNLANE_AUTH=api-key" in dockerfile and "runlane keys create" in dockerfile
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    serving = [spec for spec in services.values() if "ports" in spec and spec.get("build")]
    assert len(serving) == 3
    assert all(spec["environment"]["RUNLANE_AUTH"] == "api-key" for spec in serving)
    assert Settings.model_fields["auth"].default == "none"  # the laptop default stays open
