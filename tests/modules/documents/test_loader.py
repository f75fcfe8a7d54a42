from __future__ import annotations

from pathlib import Path

from app.modules.documents.loader import list_markdown


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
