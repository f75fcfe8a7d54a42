"""Fixtures shared by the store writer's tests and its disk workers'."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.runs.store_writer import IndexRow


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An output root with its staging folder."""
    (tmp_path / ".staging").mkdir()
    return tmp_path


@pytest.fixture
def indexed() -> list[IndexRow]:
    """The index rows a writer hands on, in order."""
    return []
