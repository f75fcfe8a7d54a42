"""Aggregate questions: the largest, smallest, total or count asked for, from the right table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.modules.search.text import keywords
from app.modules.sql.aggregates import aggregate_shape, find_aggregate


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    conn = sqlite3.connect(folder / "programmes.sqlite")
    conn.executescript(
        "CREATE TABLE programmes (id INTEGER PRIMARY KEY, name TEXT, lead_agency TEXT);"
        "INSERT INTO programmes VALUES (1, 'Solar Roofs', 'Energy Agency'),"
        " (2, 'Wind Parks', 'Energy Agency'), (3, 'Tram Lines', 'Transport Authority');"
        "CREATE TABLE budgets (programme_id INTEGER, year INTEGER, amount REAL);"
        "INSERT INTO budgets VALUES (1, 2026, 10), (2, 2026, 30), (3, 2026, 20),"
        " (1, 2027, 12), (3, 2027, 40);"
        "CREATE VIEW programme_budgets AS SELECT p.name AS programme, b.year AS year, b.amount AS amount"
        " FROM budgets b JOIN programmes p ON p.id = b.programme_id;"
    )
    conn.commit()
    conn.close()
    return folder


def ask(data_dir: Path, question: str) -> list[list[object]]:
    years = [int(word) for word in question.replace("?", "").split() if word.isdigit() and len(word) == 4]
    found = find_aggregate(data_dir, question, keywords(question), years)
    assert found is not None, question
    assert "?" in found.sql or not found.params  # values are bound, never spliced
    return found.rows


def test_the_shape_of_an_aggregate_question_is_recognised() -> None:
    assert aggregate_shape("Which programme has the largest budget in 2027?") == "max"
    assert aggregate_shape("Which programme has the smallest budget?") == "min"
    assert aggregate_shape("What is the total budget in 2026?") == "sum"
    assert aggregate_shape("How many programmes are led by the Energy Agency?") == "count"
    assert aggregate_shape("What is the budget of Solar Roofs in 2026?") is None


def test_largest_smallest_total_and_count_come_from_the_table_the_question_names(data_dir: Path) -> None:
    assert ask(data_dir, "Which programme has the largest budget in 2026?") == [["Wind Parks", 2026, 30.0]]
    assert ask(data_dir, "Which programme has the smallest budget in 2027?") == [["Solar Roofs", 2027, 12.0]]
    assert ask(data_dir, "What is the total budget of all programmes in 2026?") == [[60.0, 3]]
    assert ask(data_dir, "What is the total budget of Tram Lines over all years?") == [[60.0, 2]]
    assert ask(data_dir, "How many programmes are led by the Energy Agency?") == [[2]]


def test_totals_and_counts_per_year_are_grouped_by_the_year_column(data_dir: Path) -> None:
    assert aggregate_shape("How much is spent per year?") == "sum"
    assert ask(data_dir, "What is the total budget per year?") == [[2026, 60.0, 3], [2027, 52.0, 2]]
    assert ask(data_dir, "How many programme budgets are there each year?") == [[2026, 3], [2027, 2]]


def test_a_bound_on_the_figure_lists_or_counts_the_rows_within_it(data_dir: Path) -> None:
    assert aggregate_shape("Which programmes have a budget over 15 in 2026?") == "list"
    assert aggregate_shape("How many programmes have at least 2 budgets?") == "count"  # not "least"
    assert ask(data_dir, "Which programmes have a budget over 15 in 2026?") == [
        ["Wind Parks", 2026, 30.0],
        ["Tram Lines", 2026, 20.0],
    ]
    assert ask(data_dir, "How many programme budgets are below 12?") == [[1]]
    found = find_aggregate(
        data_dir, "Which programmes have a budget over 15 in 2026?", ["programme", "budget"], [2026]
    )
    assert found is not None and 15.0 in found.params and "15" not in found.sql
    assert (
        found.answer == "2 programme budgets with amount over 15 in 2026: Wind Parks (30), Tram Lines (20)."
    )


def test_an_aggregate_states_its_result_as_a_sentence(data_dir: Path) -> None:
    def answer(question: str) -> str | None:
        years = [int(word) for word in question.replace("?", "").split() if word.isdigit() and len(word) == 4]
        found = find_aggregate(data_dir, question, keywords(question), years)
        return found.answer if found else None

    assert (
        answer("How many programmes are led by the Energy Agency?") == "2 programmes matching energy, agency."
    )
    assert answer("What is the total budget per year?") == "Total amount per year: 2026: 60; 2027: 52."
    assert (
        answer("Which programme has the largest budget in 2026?") == "Largest amount in 2026: Wind Parks, 30."
    )


def test_a_question_of_another_shape_or_without_rows_gets_no_aggregate(data_dir: Path) -> None:
    assert (
        find_aggregate(data_dir, "What is the budget of Solar Roofs?", ["budget", "solar", "roof"], [])
        is None
    )
    assert find_aggregate(data_dir, "What is the total budget in 2031?", ["total", "budget"], [2031]) is None
