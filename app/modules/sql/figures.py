"""SQL evidence: rows of read-only SQLite databases that mention the question's keywords.

Databases are opened read-only (URI `mode=ro` plus `query_only`); table and column names come
from the database's own catalogue, and every value from the request is a bound parameter.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

DATABASE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
MAX_ROWS_PER_QUERY = 20
# SQLite refuses expressions deeper than 1,000 nodes; the score grows with terms x columns.
MAX_SQL_TERMS = 16


@dataclass
class SqlQuery:
    database: str
    table: str
    sql: str
    params: list[Any]
    columns: list[str]
    rows: list[list[Any]]
    score: int = 0  # how many of the question's terms the rows match (not shown as a column)
    answer: str | None = None  # for an aggregate, the sentence that states its result

    @property
    def best_score(self) -> int:
        return self.score if self.rows else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "table": self.table,
            "sql": self.sql,
            "params": self.params,
            "columns": self.columns,
            "rows": self.rows,
            **({"answer": self.answer} if self.answer else {}),
        }


@dataclass
class SqlEvidence:
    databases: list[str] = field(default_factory=list)
    queries: list[SqlQuery] = field(default_factory=list)

    @property
    def matches(self) -> list[SqlQuery]:
        """The queries whose rows match the most terms, less those whose every row another of
        them shows too (a table beside the view that joins it); all stay in `queries`."""
        found = [query for query in self.queries if query.rows]
        best_score = max((query.best_score for query in found), default=0)
        best = [query for query in found if query.best_score == best_score]
        return [query for query in best if not any(_shown_by(query, other) for other in best)]


def is_id_column(name: str) -> bool:
    return name.lower() == "id" or name.lower().endswith("_id")


def shown_columns(query: SqlQuery) -> list[int]:
    """The columns an answer shows: not bare ids, which say nothing to a reader."""
    shown = [i for i, name in enumerate(query.columns) if not is_id_column(name)]
    return shown or list(range(len(query.columns)))


def _shown_by(query: SqlQuery, other: SqlQuery) -> bool:
    keep = shown_columns(query)
    if other is query or other.database != query.database or len(other.columns) <= len(keep):
        return False
    return all(
        any(Counter(row[i] for i in keep) <= Counter(wider) for wider in other.rows) for row in query.rows
    )


def format_value(value: Any) -> str:
    """Clean numbers (175, 1,285, 2.8; years stay 2026, not 2,026) and text as it is."""
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() else f"{value:,}"
    if isinstance(value, int) and not 1900 <= value <= 2100:
        return f"{value:,}"
    return str(value)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def open_read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    conn.execute("PRAGMA query_only = ON")
    return conn


def databases_in(data_dir: Path) -> list[Path]:
    if not data_dir.is_dir():
        return []
    base = data_dir.resolve()
    return sorted(
        path
        for path in base.iterdir()
        if path.suffix in DATABASE_SUFFIXES and path.resolve().is_relative_to(base) and path.is_file()
    )


def table_columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    rows = conn.execute(f"PRAGMA table_info({quote_identifier(table)})").fetchall()
    return [(name, (kind or "").upper()) for _, name, kind, *_ in rows]


def text_columns(columns: list[tuple[str, str]]) -> list[str]:
    return [name for name, kind in columns if "CHAR" in kind or "TEXT" in kind]


def year_columns(columns: list[tuple[str, str]]) -> list[str]:
    return [name for name, kind in columns if "year" in name.lower() and kind in ("", "INTEGER", "INT")]


def search_table(
    conn: sqlite3.Connection, database: str, table: str, terms: list[str], years: list[int] | None = None
) -> SqlQuery | None:
    """Rows matching the most terms (any text column), scored by how many distinct terms match;
    when the question names years and the table has year columns, only rows of those years."""
    columns = table_columns(conn, table)
    searched = text_columns(columns)
    if not searched or not terms:
        return None
    per_term = [
        "(" + " OR ".join(f"{quote_identifier(column)} LIKE ?" for column in searched) + ")" for _ in terms
    ]
    score = " + ".join(per_term)
    name = quote_identifier(table)
    by_year = year_columns(columns) if years else []
    where = ""
    if by_year:
        marks = ", ".join("?" for _ in years or [])
        where = " WHERE " + " OR ".join(f"{quote_identifier(column)} IN ({marks})" for column in by_year)
    scored = f"SELECT *, {score} AS matched_terms FROM {name}{where}"
    sql = (
        f"SELECT * FROM ({scored}) WHERE matched_terms = (SELECT MAX(matched_terms) FROM ({scored})) "
        f"AND matched_terms > 0 LIMIT {MAX_ROWS_PER_QUERY}"
    )
    one_pass: list[Any] = [f"%{term}%" for term in terms for _ in searched]
    one_pass += [year for _ in by_year for year in years or []]
    params: list[Any] = one_pass * 2
    cursor = conn.execute(sql, params)
    # The score is how rows are chosen, not a figure of the data: it is not shown.
    names = [description[0] for description in cursor.description][:-1]
    found = cursor.fetchall()
    best = int(found[0][-1]) if found else 0
    return SqlQuery(database, table, sql, params, names, [list(row[:-1]) for row in found], best)


def find_rows(data_dir: Path, terms: list[str], years: list[int] | None = None) -> SqlEvidence:
    """Search every text column of every table of every database for any of the terms (the
    first MAX_SQL_TERMS distinct ones, so the SQL stays bounded whatever the question), in the
    rows of the years the question names."""
    terms = list(dict.fromkeys(terms))[:MAX_SQL_TERMS]
    evidence = SqlEvidence()
    for path in databases_in(data_dir):
        evidence.databases.append(path.name)
        conn = open_read_only(path)
        try:
            tables = [
                name
                for (name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                    "AND name NOT LIKE 'sqlite_%' ORDER BY type DESC, name"
                )
            ]
            for table in tables:
                query = search_table(conn, path.name, table, terms, years)
                if query is not None:
                    evidence.queries.append(query)
        finally:
            conn.close()
    return evidence
