from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from app.modules.search.passage_index import PassageIndex, fts_query, index_path_for


def make_docs(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"doc{i}.md").write_text(
            f"# Topic {i}\n\nGeneric words about item{i}.\n\n## Detail\n\nMore on item{i}.\n"
        )


def passage_rows(index: PassageIndex) -> list[tuple[int, str]]:
    conn = sqlite3.connect(index.path)
    try:
        return conn.execute("SELECT id, path FROM passages ORDER BY id").fetchall()
    finally:
        conn.close()


def test_first_sync_builds_and_later_syncs_reuse_the_cached_index(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    make_docs(docs, 3)
    path = index_path_for(tmp_path / "idx", docs)
    first = PassageIndex(path).sync(docs)
    assert (first.files, first.passages, first.added, first.reused) == (3, 6, 3, False)
    again = PassageIndex(path).sync(docs)  # a later run, a new connection
    assert (again.added, again.changed, again.removed, again.reused) == (0, 0, 0, True)


def test_sync_updates_only_what_changed(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    make_docs(docs, 4)
    index = PassageIndex(index_path_for(tmp_path / "idx", docs))
    index.sync(docs)
    untouched_ids = {pid for pid, path in passage_rows(index) if path in ("doc0.md", "doc1.md")}
    (docs / "doc2.md").write_text("# Replaced\n\nSolar farms everywhere.\n")
    (docs / "doc3.md").unlink()
    (docs / "new.md").write_text("# New\n\nWind turbines.\n")
    stats = index.sync(docs)
    assert (stats.added, stats.changed, stats.removed) == (1, 1, 1)
    after = passage_rows(index)
    assert untouched_ids <= {pid for pid, _ in after}
    assert "doc3.md" not in {path for _, path in after}
    assert index.search(["solar"])[0].file == "doc2.md"
    assert index.search(["item3"]) == []


def test_touched_but_unchanged_file_is_not_reindexed(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    make_docs(docs, 1)
    index = PassageIndex(index_path_for(tmp_path / "idx", docs))
    index.sync(docs)
    os.utime(docs / "doc0.md", ns=(1, 1))
    stats = index.sync(docs)
    assert (stats.added, stats.changed) == (0, 0)


def test_search_ranks_heading_and_body_matches_with_bm25(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "wind.md").write_text("# Offshore wind\n\nOffshore wind farms in the lake. Wind wind.\n")
    (docs / "misc.md").write_text("# Misc\n\nA short mention of wind.\n\n## Other\n\nNothing here.\n")
    for name in ("trees", "rivers", "schools"):
        (docs / f"{name}.md").write_text(f"# About {name}\n\nPlain text about {name}.\n")
    index = PassageIndex(index_path_for(tmp_path / "idx", docs))
    index.sync(docs)
    hits = index.search(["offshore", "wind"])
    assert [hit.file for hit in hits] == ["wind.md", "misc.md"]
    assert hits[0].score > hits[1].score > 0
    assert (hits[0].heading, hits[0].start_line) == ("Offshore wind", 1)


def test_query_terms_cannot_inject_fts_syntax(tmp_path: Path) -> None:
    assert fts_query(['a"b', "OR", "NEAR("]) == '"a""b" OR "OR" OR "NEAR("'
    docs = tmp_path / "docs"
    make_docs(docs, 1)
    index = PassageIndex(index_path_for(tmp_path / "idx", docs))
    index.sync(docs)
    assert index.search(['"', "*", "AND", "item0)"]) is not None


def test_concurrent_syncs_of_one_folder_never_corrupt_or_expose_a_half_index(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    make_docs(docs, 60)
    path = index_path_for(tmp_path / "idx", docs)
    results: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def run() -> None:
        try:
            start.wait()
            index = PassageIndex(path)
            stats = index.sync(docs)
            results.append(stats.passages)
            results.append(len(index.search(["generic"], limit=500)))
            index.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert set(results) == {120, 60}  # every run saw the whole index: 120 passages, 60 matches


def test_a_damaged_cache_file_is_rebuilt(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    make_docs(docs, 2)
    path = index_path_for(tmp_path / "idx", docs)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    assert PassageIndex(path).sync(docs).passages == 4
