from __future__ import annotations

from pathlib import Path

from app.config import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme() -> None:
    for name in Settings.model_fields:
        assert f"RUNLANE_{name.upper()}" in README, name


def test_readme_opens_with_the_serve_and_test_commands() -> None:
    opening = README[:1000]
    assert "./scripts/serve" in opening and "./scripts/test" in opening


def test_ci_runs_the_readme_test_command() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "scripts/test" in ci
