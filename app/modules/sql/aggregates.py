"""Aggregate questions over the data: the largest, smallest or total of a figure, or how many
rows, as read-only parameterised SQL over the table that has the asked columns.

Words of the question that name a table or a column ("budget", "programmes") choose where to
look; the others that match rows ("coal", "energy agency") narrow the rows; years named in the
question narrow year columns.  Every value is a bound parameter, and the SQL has one clause per
term, bounded like the row search's.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from app.modules.search.text import normalise
from app.modules.sql.figures import (
    MAX_SQL_TERMS,
    SqlQuery,
    databases_in,
    format_value,
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


def aggregate_shape(question: str) -> str | None:
    """max, min, sum or count; "how much per year" alone asks for a total per year."""
    found = next((shape for pattern, shape in SHAPES if pattern.search(question)), None)
    return found or ("sum" if PER_YEAR.search(question) else None)


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


def aggregate(
    conn: sqlite3.Connection,
    database: str,
    table: str,
    shape: str,
    terms: list[str],
    years: list[int],
    per_year: bool = False,
) -> tuple[tuple[int, bool, int], SqlQuery] | None:
    """(how well the table fits the question, the query and its answer), or None if it cannot.
    The fit ranks: words of the question that narrow its rows, then having text columns at all
    (names, not ids), then how much of its name the question says."""
    columns = table_columns(conn, table)
    named = _structural(table, columns)
    table_words = {normalise(word) for word in re.split(r"[_\W]+", table) if word}
    # How much of the table's own name the question says: "programmes" fits `programmes`
    # fully and `programme_budgets` half; as a percentage, to compare tables.
    fit = 100 * len(table_words & set(terms)) // max(1, len(table_words))
    figure = _figure(columns)
    if fit == 0 or (shape != "count" and figure is None):
        return None
    name = quote_identifier(table)
    text = text_columns(columns)
    clauses: list[str] = []
    params: list[object] = []
    filters = [t for t in terms if t not in named and t not in SHAPE_WORDS][:MAX_SQL_TERMS] if text else []
    narrowing: list[str] = []
    for term in filters:
        like = "(" + " OR ".join(f"{quote_identifier(c)} LIKE ?" for c in text) + ")"
        matches = conn.execute(f"SELECT COUNT(*) FROM {name} WHERE {like}", [f"%{term}%"] * len(text))
        if matches.fetchone()[0]:  # a word no row has (e.g. "led") narrows nothing
            clauses.append(like)
            params += [f"%{term}%"] * len(text)
            narrowing.append(term)
    narrowed = len(clauses)
    by_year = year_columns(columns) if years else []
    if by_year:
        marks = ", ".join("?" for _ in years)
        clauses.append("(" + " OR ".join(f"{quote_identifier(c)} IN ({marks})" for c in by_year) + ")")
        params += [year for _ in by_year for year in years]
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    year_column = next(iter(year_columns(columns)), None) if per_year and shape in ("sum", "count") else None
    if year_column is not None:
        year = quote_identifier(year_column)
        figures = f"SUM({quote_identifier(figure or '')}) AS total_{figure}, " if shape == "sum" else ""
        sql = (
            f"SELECT {year}, {figures}COUNT(*) AS {'rows_added' if figures else 'count'} "
            f"FROM {name}{where} GROUP BY {year} ORDER BY {year}"
        )
    elif shape == "count":
        sql = f"SELECT COUNT(*) AS count FROM {name}{where}"
    elif shape == "sum":
        assert figure is not None
        total = f"SUM({quote_identifier(figure)}) AS total_{figure}"
        sql = f"SELECT {total}, COUNT(*) AS rows_added FROM {name}{where}"
    else:
        order = "DESC" if shape == "max" else "ASC"
        sql = f"SELECT * FROM {name}{where} ORDER BY {quote_identifier(figure or '')} {order} LIMIT 1"
    cursor = conn.execute(sql, params)
    rows = [list(row) for row in cursor.fetchall() if row[0] is not None]
    if not rows or (shape == "count" and rows[0][0] == 0):
        return None
    names = [description[0] for description in cursor.description]
    if year_column is not None:
        answer = _per_year(shape, table, figure, rows, narrowing)
    else:
        answer = _answer(shape, table, figure, names, rows[0], narrowing, years if by_year else [], text)
    query = SqlQuery(database, table, sql, list(params), names, rows, SCORE, answer)
    return (narrowed, bool(text), fit), query


def _human(name: str) -> str:
    return re.sub(r"[_\s]+", " ", name).strip()


def _per_year(
    shape: str, table: str, figure: str | None, rows: list[list[object]], narrowing: list[str]
) -> str:
    """ "Total amount per year: 2025: 632; 2026: 1,245." """
    matching = f" matching {', '.join(narrowing)}" if narrowing else ""
    what = f"Total {_human(figure or '')}" if shape == "sum" else f"Number of {_human(table)}"
    per = "; ".join(f"{row[0]}: {format_value(row[1])}" for row in rows)
    return f"{what}{matching} per year: {per}."


def _answer(
    shape: str,
    table: str,
    figure: str | None,
    names: list[str],
    row: list[object],
    narrowing: list[str],
    years: list[int],
    text: list[str],
) -> str:
    """The result as a sentence: "3 programmes matching regional, energy, agency."."""
    matching = f" matching {', '.join(narrowing)}" if narrowing else ""
    during = f" in {', '.join(map(str, years))}" if years else ""
    if shape == "count":
        return f"{format_value(row[0])} {_human(table)}{matching}{during}."
    what = _human(figure or "")
    if shape == "sum":
        return (
            f"Total {what}{matching}{during}: {format_value(row[0])}, over {row[1]} rows of {_human(table)}."
        )
    label = next((str(row[names.index(c)]) for c in text if c in names), _human(table))
    extreme = "Largest" if shape == "max" else "Smallest"
    return f"{extreme} {what}{matching}{during}: {label}, {format_value(row[names.index(figure or '')])}."


def find_aggregate(data_dir: Path, question: str, terms: list[str], years: list[int]) -> SqlQuery | None:
    """The aggregate a question asks for, from the table that fits it best (views first on a
    tie: they carry names, not ids); None for a question of another shape."""
    shape = aggregate_shape(question)
    if shape is None:
        return None
    per_year = bool(PER_YEAR.search(question))
    best: tuple[tuple[int, bool, int], bool, SqlQuery] | None = None
    for path in databases_in(data_dir):
        conn = open_read_only(path)
        try:
            catalogue = conn.execute(
                "SELECT name, type FROM sqlite_master "
                "WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
            for table, kind in catalogue:
                found = aggregate(conn, path.name, table, shape, terms, years, per_year)
                if found is not None and (best is None or (found[0], kind == "view") > best[:2]):
                    best = (found[0], kind == "view", found[1])
        finally:
            conn.close()
    return best[2] if best else None
