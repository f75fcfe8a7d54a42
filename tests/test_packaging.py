"""The installed package (what the Dockerfile installs) carries the web console."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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
