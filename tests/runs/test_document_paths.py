from __future__ import annotations

from pathlib import Path

import pytest

from app.runs.document_paths import resolve_markdown_path
from app.runs.errors import InvalidRequestError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "docs" / "deep").mkdir(parents=True)
    (tmp_path / "root" / "docs" / "note.md").write_text("# Note\n")
    (tmp_path / "outside").mkdir()
    return tmp_path / "root"


def test_a_plain_folder_is_its_own_real_path(root: Path) -> None:
    assert resolve_markdown_path(root, "docs/deep") == (root / "docs" / "deep").resolve()
    assert resolve_markdown_path(root, "./docs") == (root / "docs").resolve()


def test_a_link_that_stays_inside_the_root_leads_to_its_target(root: Path) -> None:
    (root / "alias").symlink_to(root / "docs" / "deep")
    (root / "docs" / "up").symlink_to(root / "docs")
    assert resolve_markdown_path(root, "alias") == (root / "docs" / "deep").resolve()
    assert resolve_markdown_path(root, "docs/up/deep") == (root / "docs" / "deep").resolve()


@pytest.mark.parametrize("link_at", ["escape", "docs/escape"])
def test_a_link_out_of_the_root_is_refused_wherever_it_sits(root: Path, link_at: str) -> None:
    (root / link_at).symlink_to(root.parent / "outside")
    with pytest.raises(InvalidRequestError, match="outside the documents root"):
        resolve_markdown_path(root, link_at)


def test_a_root_reached_through_a_link_is_resolved(
    root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    linked_root = tmp_path_factory.mktemp("elsewhere") / "root"
    linked_root.symlink_to(root)
    assert resolve_markdown_path(linked_root, "docs") == (root / "docs").resolve()


def test_files_missing_parts_and_run_outputs_are_refused(root: Path) -> None:
    with pytest.raises(InvalidRequestError, match="not a folder"):
        resolve_markdown_path(root, "docs/note.md")
    with pytest.raises(InvalidRequestError, match="does not exist"):
        resolve_markdown_path(root, "docs/note.md/below")
    with pytest.raises(InvalidRequestError, match="does not exist"):
        resolve_markdown_path(root, "missing")
    (root / "docs" / "output").mkdir()
    with pytest.raises(InvalidRequestError, match="holds run outputs"):
        resolve_markdown_path(root, "docs", excluded=root / "docs" / "output")
    with pytest.raises(InvalidRequestError, match="holds run outputs"):
        resolve_markdown_path(root, "docs/output", excluded=root / "docs" / "output")


def test_the_root_itself_may_be_asked_for_and_a_vanished_root_answers_nothing(root: Path) -> None:
    assert resolve_markdown_path(root, ".") == root.resolve()
    empty = root.parent / "empty-root"
    empty.mkdir()
    resolve_markdown_path(empty, ".")  # resolved once while it exists, as at start-up
    empty.rmdir()
    for asked in (".", "docs"):
        with pytest.raises(InvalidRequestError, match="does not exist"):
            resolve_markdown_path(empty, asked)
