"""The passage index: SQLite FTS5 with BM25 ranking, cached on disk per documents folder.

`sync` brings the index in line with the folder incrementally (only added, changed and
removed files are touched) inside one write transaction, so concurrent runs on the same
folder serialise on SQLite's lock and readers only ever see a whole, committed index.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.modules.documents.loader import MarkdownFile, list_markdown, read_markdown
from app.modules.documents.passages import split_passages

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS passages (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, heading TEXT NOT NULL,
    start_line INTEGER NOT NULL, end_line INTEGER NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_by_path ON passages (path);
CREATE VIRTUAL TABLE IF NOT EXISTS passages_fts USING fts5 (
    heading, body, content='passages', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS passages_ai AFTER INSERT ON passages BEGIN
    INSERT INTO passages_fts (rowid, heading, body) VALUES (new.id, new.heading, new.body);
END;
CREATE TRIGGER IF NOT EXISTS passages_ad AFTER DELETE ON passages BEGIN
    INSERT INTO passages_fts (passages_fts, rowid, heading, body)
    VALUES ('delete', old.id, old.heading, old.body);
END;
"""
# Heading matches weigh more than body matches.
_BM25 = "bm25(passages_fts, 2.0, 1.0)"


@dataclass(frozen=True)
class SyncStats:
    files: int
    passages: int
    added: int
    changed: int
    removed: int
    reused: bool


@dataclass(frozen=True)
class Hit:
    passage_id: int
    file: str
    heading: str
    start_line: int
    end_line: int
    text: str
    score: float


def index_path_for(index_dir: Path, folder: Path) -> Path:
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:20]
    return index_dir / f"passages-{digest}-v{SCHEMA_VERSION}.sqlite3"


def fts_query(terms: list[str]) -> str:
    """An FTS5 query that ORs the terms; each is quoted, so no term is read as FTS syntax."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


class PassageIndex:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.OperationalError:
            raise  # busy or locked: another process is using it, which is no damage
        except sqlite3.DatabaseError:
            # A damaged cache is only a cache: start it afresh.
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{self.path}{suffix}").unlink()
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        # Switching to WAL answers "locked" at once to a concurrent opener, without waiting:
        # openers (threads or processes) take turns on a lock file instead.
        lock = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
        except BaseException:
            conn.close()
            raise
        finally:
            os.close(lock)
        return conn

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def sync(self, folder: Path) -> SyncStats:
        """Make the index match the folder's markdown files; touch only what changed."""
        on_disk = {file.relative_path: file for file in list_markdown(folder)}
        with self._write() as conn:
            known = {
                path: (mtime_ns, size, sha)
                for path, mtime_ns, size, sha in conn.execute(
                    "SELECT path, mtime_ns, size, sha256 FROM files"
                )
            }
            removed = [path for path in known if path not in on_disk]
            for path in removed:
                conn.execute("DELETE FROM passages WHERE path = ?", (path,))
                conn.execute("DELETE FROM files WHERE path = ?", (path,))
            added = changed = 0
            for path, file in on_disk.items():
                previous = known.get(path)
                if previous is not None and previous[:2] == (file.mtime_ns, file.size):
                    continue
                if self._store_file(conn, file, previous[2] if previous else None):
                    added += previous is None
                    changed += previous is not None
            total = conn.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        reused = bool(known) and not (added or changed or removed)
        return SyncStats(len(on_disk), total, added, changed, len(removed), reused)

    def _store_file(self, conn: sqlite3.Connection, file: MarkdownFile, old_sha: str | None) -> bool:
        text = read_markdown(file)
        sha = hashlib.sha256(text.encode()).hexdigest()
        conn.execute(
            "INSERT INTO files VALUES (?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
            "mtime_ns = excluded.mtime_ns, size = excluded.size, sha256 = excluded.sha256",
            (file.relative_path, file.mtime_ns, file.size, sha),
        )
        if sha == old_sha:
            return False  # touched, not changed
        conn.execute("DELETE FROM passages WHERE path = ?", (file.relative_path,))
        conn.executemany(
            "INSERT INTO passages (path, heading, start_line, end_line, body) VALUES (?, ?, ?, ?, ?)",
            [
                (p.file, p.heading, p.start_line, p.end_line, p.text)
                for p in split_passages(file.relative_path, text)
            ],
        )
        return True

    def passage_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM passages").fetchone()[0])

    def frequency(self, term: str) -> int:
        """How many passages use the term (any form of it, as the index stems words)."""
        found = self._conn.execute(
            "SELECT COUNT(*) FROM passages_fts WHERE passages_fts MATCH ?", (fts_query([term]),)
        )
        return int(found.fetchone()[0])

    def search(self, terms: list[str], limit: int = 8) -> list[Hit]:
        """The best passages for the terms, best first; score is -BM25 (higher is better)."""
        if not terms:
            return []
        rows = self._conn.execute(
            f"SELECT p.id, p.path, p.heading, p.start_line, p.end_line, p.body, {_BM25} AS rank "
            "FROM passages_fts JOIN passages p ON p.id = passages_fts.rowid "
            "WHERE passages_fts MATCH ? ORDER BY rank LIMIT ?",
            (fts_query(terms), limit),
        )
        return [
            Hit(pid, path, heading, start, end, body, round(-rank, 4))
            for pid, path, heading, start, end, body, rank in rows
        ]
