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
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("runlane-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"app/web/static/index.html", "app/web/static/console.js", "app/web/static/console.css"} <= names
    assert "app/api/main.py" in names
    assert not any(name.startswith("tests/") for name in names)
