from __future__ import annotations

import os
from pathlib import Path

from app.modules.documents.loader import MAX_FILE_BYTES, list_markdown, read_markdown


def test_lists_markdown_recursively_in_a_stable_order(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text("# B")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.md").write_text("# A")
    (tmp_path / "notes.txt").write_text("not markdown")
    assert [f.relative_path for f in list_markdown(tmp_path)] == ["b.md", "sub/a.md"]


def test_symbolic_links_leading_out_of_the_folder_are_never_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "inside.md").write_text("# Inside")
    (docs / "leak.md").symlink_to(outside / "secret.md")
    (docs / "leakdir").symlink_to(outside)
    (docs / "alias.md").symlink_to(docs / "inside.md")
    assert [f.relative_path for f in list_markdown(docs)] == ["alias.md", "inside.md"]


def test_a_folders_own_files_come_before_its_subfolders_each_by_name(tmp_path: Path) -> None:
    for relative in ("z.md", "a/y.md", "a/b/x.md", "a/a.md", "c/w.md", "m.md"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("# T")

    listed = [f.relative_path for f in list_markdown(tmp_path)]

    assert listed == ["m.md", "z.md", "a/a.md", "a/y.md", "a/b/x.md", "c/w.md"]


def test_hidden_files_and_folders_and_oversized_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / ".draft.md").write_text("# Hidden")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.md").write_text("# Hidden folder")
    (tmp_path / "huge.md").write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    (tmp_path / "limit.md").write_bytes(b"#" * MAX_FILE_BYTES)

    assert [f.relative_path for f in list_markdown(tmp_path)] == ["limit.md"]


def test_each_file_carries_its_real_location_size_and_mtime(tmp_path: Path) -> None:
    (tmp_path / "inside.md").write_text("# Inside")
    (tmp_path / "alias.md").symlink_to(tmp_path / "inside.md")
    real = (tmp_path / "inside.md").resolve()

    alias, inside = list_markdown(tmp_path)

    assert Path(alias.path) == real and Path(inside.path) == real
    assert (inside.size, inside.mtime_ns) == (real.stat().st_size, real.stat().st_mtime_ns)
    assert read_markdown(alias) == "# Inside"


def test_what_is_not_a_regular_file_is_skipped_without_being_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.md")  # opening it would block until a writer came
    (tmp_path / "folder.md").mkdir()
    (tmp_path / "dangling.md").symlink_to(tmp_path / "gone.md")
    (tmp_path / "note.md").write_text("# Note")

    assert [f.relative_path for f in list_markdown(tmp_path)] == ["note.md"]
