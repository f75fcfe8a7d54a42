"""An aggregate's result said as one sentence, for the answer: "3 programmes matching energy."."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.modules.sql.figures import format_value


@dataclass(frozen=True)
class Result:
    """What was asked and found: enough to say it."""

    shape: str  # max, min, sum, count or list
    table: str
    figure: str | None  # the numeric column asked about
    names: list[str]  # the result's columns
    rows: list[list[object]]
    narrowing: list[str]  # the question's words that narrowed the rows
    years: list[int]
    label_columns: list[str]  # text columns, the first naming a row
    bound: tuple[str, str, float] | None  # ("over", ">", 100.0)
    per_year: bool


def human(name: str) -> str:
    return re.sub(r"[_\s]+", " ", name).strip()


def sentence(result: Result) -> str:
    matching = f" matching {', '.join(result.narrowing)}" if result.narrowing else ""
    during = f" in {', '.join(map(str, result.years))}" if result.years else ""
    bound = result.bound
    within = f" with {human(result.figure or '')} {bound[0]} {format_value(bound[2])}" if bound else ""
    if result.per_year:
        return _per_year(result, matching + within)
    if result.shape == "list":
        return f"{len(result.rows)} {human(result.table)}{matching}{within}{during}: {_listed(result)}."
    row = result.rows[0]
    if result.shape == "count":
        counted = human(result.table)
        if row[0] == 1 and counted.endswith("s"):
            counted = counted[:-1]  # "1 programme"
        return f"{format_value(row[0])} {counted}{matching}{within}{during}."
    what = human(result.figure or "")
    if result.shape == "sum":
        total = format_value(row[0])
        return (
            f"Total {what}{matching}{within}{during}: {total}, over {row[1]} rows of {human(result.table)}."
        )
    extreme = "Largest" if result.shape == "max" else "Smallest"
    return f"{extreme} {what}{matching}{within}{during}: {_label(result, row)}, {_value(result, row)}."


def _per_year(result: Result, narrowed: str) -> str:
    """ "Total amount per year: 2025: 632; 2026: 1,245." """
    what = (
        f"Total {human(result.figure or '')}" if result.shape == "sum" else f"Number of {human(result.table)}"
    )
    per = "; ".join(f"{row[0]}: {format_value(row[1])}" for row in result.rows)
    return f"{what}{narrowed} per year: {per}."


def _listed(result: Result) -> str:
    """ "Wind Parks (30), Tram Lines (20)" """
    return ", ".join(f"{_label(result, row)} ({_value(result, row)})" for row in result.rows)


def _label(result: Result, row: list[object]) -> str:
    column = next((c for c in result.label_columns if c in result.names), None)
    return str(row[result.names.index(column)]) if column else human(result.table)


def _value(result: Result, row: list[object]) -> str:
    return format_value(row[result.names.index(result.figure or "")])
