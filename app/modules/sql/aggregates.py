"""Aggregate questions over the data: the largest, smallest or total of a figure, how many rows
(also per year), or the rows within a bound ("over 100"), as read-only parameterised SQL over
the table that has the asked columns.

Words of the question that name a table or a column ("budget", "programmes") choose where to
look; the others that match rows ("coal", "energy agency") narrow the rows; years named in the
question narrow year columns.  Every value is a bound parameter, and the SQL has one clause per
term, bounded like the row search's.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from app.modules.search.text import normalise
from app.modules.sql.aggregate_sentences import Result, sentence
from app.modules.sql.figures import (
    MAX_ROWS_PER_QUERY,
    MAX_SQL_TERMS,
    SqlQuery,
    databases_in,
    open_read_only,
    quote_identifier,
    table_columns,
    text_columns,
    year_columns,
)

SHAPES = (
    (re.compile(r"\b(largest|highest|biggest|most)\b", re.IGNORECASE), "max"),
    (re.compile(r"\b(smallest|lowest|least)\b", re.IGNORECASE), "min"),
    (re.compile(r"\b(total|sum|combined|altogether)\b", re.IGNORECASE), "sum"),
    (re.compile(r"^\s*how many\b", re.IGNORECASE), "count"),
)
PER_YEAR = re.compile(r"\b(?:per|each|every|by) year\b|\byear by year\b|\bannual(?:ly)?\b", re.IGNORECASE)
SHAPE_WORDS = {
    "annual",
    "annually",
    "largest",
    "highest",
    "biggest",
    "most",
    "smallest",
    "lowest",
    "least",
    "total",
    "sum",
}
SCORE = 1000  # above any row search's: an aggregate that answers is the figure to show
_NUMERIC = ("REAL", "INTEGER", "INT", "NUMERIC", "FLOAT", "DOUBLE")


# "a budget over 100", "at least 2": a bound on the figure, as a bound parameter.
THRESHOLD = re.compile(
    r"\b(more than|greater than|over|above|at least|less than|fewer than|under|below|at most)\s+"
    r"(\d[\d,]*(?:\.\d+)?)(?![\d,.]*\d)",
    re.IGNORECASE,
)
_OPERATORS = {
    "more than": ">",
    "greater than": ">",
    "over": ">",
    "above": ">",
    "at least": ">=",
    "less than": "<",
    "fewer than": "<",
    "under": "<",
    "below": "<",
    "at most": "<=",
}


def threshold(question: str) -> tuple[str, str, float] | None:
    """(the words, the SQL operator, the bound) of "over 100"-like words, if the question has them."""
    found = THRESHOLD.search(question)
    if found is None:
        return None
    words = found.group(1).lower()
    return words, _OPERATORS[words], float(found.group(2).replace(",", ""))


def aggregate_shape(question: str) -> str | None:
    """max, min, sum or count; "how much per year" alone asks for a total per year; a bound on
    the figure alone ("which programmes have a budget over 100?") lists the rows within it."""
    bare = THRESHOLD.sub(" ", question)  # "at least 2" is no "least"
    found = next((shape for pattern, shape in SHAPES if pattern.search(bare)), None)
    if found is None and PER_YEAR.search(bare):
        found = "sum"
    return found or ("list" if THRESHOLD.search(question) else None)


def _structural(table: str, columns: list[tuple[str, str]]) -> set[str]:
    """The words that name the table ("programme_budgets" -> programme, budget) or a whole
    column ("sector"); a word inside a column name ("agency" of lead_agency) may be a value."""
    words = {normalise(word) for word in re.split(r"[_\W]+", table) if word}
    return words | {normalise(name) for name, _ in columns}


def _figure(columns: list[tuple[str, str]]) -> str | None:
    figures = [
        name
        for name, kind in columns
        if any(k in kind for k in _NUMERIC) and "year" not in name.lower() and not name.lower().endswith("id")
    ]
    return figures[0] if len(figures) == 1 else None


@dataclass(frozen=True)
class Ask:
    """What an aggregate question asks, whichever table answers it."""

    shape: str
    terms: list[str]
    years: list[int]
    per_year: bool = False
    bound: tuple[str, str, float] | None = None  # ("over", ">", 100.0)


def _narrowing(
    conn: sqlite3.Connection, name: str, text: list[str], words: list[str]
) -> tuple[list[str], list[object], list[str]]:
    """LIKE clauses (and their parameters) for the words some row says; a word no row has
    (e.g. "led") narrows nothing."""
    clauses: list[str] = []
    params: list[object] = []
    used: list[str] = []
    like = "(" + " OR ".join(f"{quote_identifier(c)} LIKE ?" for c in text) + ")"
    for word in words[:MAX_SQL_TERMS]:
        if conn.execute(f"SELECT COUNT(*) FROM {name} WHERE {like}", [f"%{word}%"] * len(text)).fetchone()[0]:
            clauses.append(like)
            params += [f"%{word}%"] * len(text)
            used.append(word)
    return clauses, params, used


def _select(ask: Ask, name: str, where: str, figure: str | None, year_column: str | None) -> str:
    value = quote_identifier(figure or "")
    if year_column is not None:
        year = quote_identifier(year_column)
        figures = f"SUM({value}) AS total_{figure}, " if ask.shape == "sum" else ""
        counted = "rows_added" if figures else "count"
        grouped = f"GROUP BY {year} ORDER BY {year}"
        return f"SELECT {year}, {figures}COUNT(*) AS {counted} FROM {name}{where} {grouped}"
    if ask.shape == "list":
        return f"SELECT * FROM {name}{where} ORDER BY {value} DESC LIMIT {MAX_ROWS_PER_QUERY}"
    if ask.shape == "count":
        return f"SELECT COUNT(*) AS count FROM {name}{where}"
    if ask.shape == "sum":
        return f"SELECT SUM({value}) AS total_{figure}, COUNT(*) AS rows_added FROM {name}{where}"
    return f"SELECT * FROM {name}{where} ORDER BY {value} {'DESC' if ask.shape == 'max' else 'ASC'} LIMIT 1"


def aggregate(
    conn: sqlite3.Connection, database: str, table: str, ask: Ask
) -> tuple[tuple[int, bool, int], SqlQuery] | None:
    """(how well the table fits the question, the query and its answer), or None if it cannot.
    The fit ranks: words of the question that narrow its rows, then having text columns at all
    (names, not ids), then how much of its name the question says."""
    columns = table_columns(conn, table)
    table_words = {normalise(word) for word in re.split(r"[_\W]+", table) if word}
    # How much of the table's own name the question says: "programmes" fits `programmes`
    # fully and `programme_budgets` half; as a percentage, to compare tables.
    fit = 100 * len(table_words & set(ask.terms)) // max(1, len(table_words))
    figure = _figure(columns)
    if fit == 0 or ((ask.shape != "count" or ask.bound) and figure is None):
        return None
    name = quote_identifier(table)
    text = text_columns(columns)
    named = _structural(table, columns)
    words = [t for t in ask.terms if t not in named and t not in SHAPE_WORDS] if text else []
    clauses, params, narrowing = _narrowing(conn, name, text, words)
    by_year = year_columns(columns) if ask.years else []
    if by_year:
        marks = ", ".join("?" for _ in ask.years)
        clauses.append("(" + " OR ".join(f"{quote_identifier(c)} IN ({marks})" for c in by_year) + ")")
        params += [year for _ in by_year for year in ask.years]
    if ask.bound is not None:
        clauses.append(f"{quote_identifier(figure or '')} {ask.bound[1]} ?")
        params.append(ask.bound[2])
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    grouped = ask.per_year and ask.shape in ("sum", "count")
    year_column = next(iter(year_columns(columns)), None) if grouped else None
    sql = _select(ask, name, where, figure, year_column)
    cursor = conn.execute(sql, params)
    rows = [list(row) for row in cursor.fetchall() if row[0] is not None]
    if not rows or (ask.shape == "count" and year_column is None and rows[0][0] == 0):
        return None
    names = [description[0] for description in cursor.description]
    said = Result(
        ask.shape,
        table,
        figure,
        names,
        rows,
        narrowing,
        ask.years if by_year else [],
        text,
        ask.bound,
        year_column is not None,
    )
    query = SqlQuery(database, table, sql, list(params), names, rows, SCORE, sentence(said))
    return (len(narrowing), bool(text), fit), query


def find_aggregate(data_dir: Path, question: str, terms: list[str], years: list[int]) -> SqlQuery | None:
    """The aggregate a question asks for, from the table that fits it best (views first on a
    tie: they carry names, not ids); None for a question of another shape."""
    shape = aggregate_shape(question)
    if shape is None:
        return None
    ask = Ask(shape, terms, years, bool(PER_YEAR.search(question)), threshold(question))
    best: tuple[tuple[int, bool, int], bool, SqlQuery] | None = None
    for path in databases_in(data_dir):
        conn = open_read_only(path)
        try:
            catalogue = conn.execute(
                "SELECT name, type FROM sqlite_master "
                "WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
            for table, kind in catalogue:
                found = aggregate(conn, path.name, table, ask)
                if found is not None and (best is None or (found[0], kind == "view") > best[:2]):
                    best = (found[0], kind == "view", found[1])
        finally:
            conn.close()
    return best[2] if best else None
