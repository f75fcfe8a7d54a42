from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.modules.sql.figures import databases_in, find_rows, open_read_only, shown_columns


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    conn = sqlite3.connect(folder / "figures.sqlite")
    conn.executescript(
        "CREATE TABLE programmes (name TEXT, budget REAL);"
        "INSERT INTO programmes VALUES ('Solar roofs', 10), ('Wind parks', 20), ('Solar wind hybrid', 5);"
    )
    conn.commit()
    conn.close()
    return folder


def test_finds_the_rows_matching_most_terms_and_records_the_query(data_dir: Path) -> None:
    evidence = find_rows(data_dir, ["solar", "wind"])
    [query] = evidence.matches
    assert query.rows == [["Solar wind hybrid", 5.0]] and query.score == 2
    # The score chooses rows; it is no column of the data, so it is not shown as one.
    assert query.table == "programmes" and query.columns == ["name", "budget"]
    assert query.params[:1] == ["%solar%"] and "?" in query.sql
    assert evidence.databases == ["figures.sqlite"]


def test_request_text_is_never_spliced_into_sql(data_dir: Path) -> None:
    hostile = "x'); DROP TABLE programmes; --"
    evidence = find_rows(data_dir, [hostile])
    assert hostile not in evidence.queries[0].sql
    assert evidence.matches == []
    conn = sqlite3.connect(data_dir / "figures.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM programmes").fetchone() == (3,)


def test_databases_are_opened_read_only(data_dir: Path) -> None:
    conn = open_read_only(data_dir / "figures.sqlite")
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("DELETE FROM programmes")


def test_links_out_of_the_data_folder_are_ignored(data_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.sqlite"
    sqlite3.connect(outside).close()
    (data_dir / "leak.sqlite").symlink_to(outside)
    assert [path.name for path in databases_in(data_dir)] == ["figures.sqlite"]
    assert databases_in(tmp_path / "missing") == []


def test_a_year_in_the_question_keeps_the_rows_of_that_year(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    conn = sqlite3.connect(folder / "budgets.sqlite")
    conn.executescript(
        "CREATE TABLE budgets (programme TEXT, year INTEGER, amount REAL, source TEXT);"
        "INSERT INTO budgets VALUES ('Clean Transport', 2025, 160, 'regional budget'),"
        "('Clean Transport', 2026, 175, 'carbon price revenue'),"
        "('Clean Transport', 2027, 190, 'regional budget');"
    )
    conn.commit()
    conn.close()
    # "budget" also matches the text "regional budget": without the year, 2025 and 2027 win.
    [without_year] = find_rows(folder, ["clean", "transport", "budget"]).matches
    assert [row[1] for row in without_year.rows] == [2025, 2027]
    [with_year] = find_rows(folder, ["clean", "transport", "budget"], [2026]).matches
    assert with_year.rows == [["Clean Transport", 2026, 175.0, "carbon price revenue"]]
    assert find_rows(folder, ["clean", "transport"], [2019]).matches == []  # no such year: no rows


def test_a_table_whose_rows_a_matching_view_shows_is_left_out_and_ids_are_not_shown(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    conn = sqlite3.connect(folder / "budgets.sqlite")
    conn.executescript(
        "CREATE TABLE programmes (id INTEGER PRIMARY KEY, name TEXT);"
        "INSERT INTO programmes VALUES (1, 'Solar roofs'), (2, 'Wind parks');"
        "CREATE TABLE budgets (programme_id INTEGER, source TEXT, amount REAL);"
        "INSERT INTO budgets VALUES (1, 'solar levy', 10), (2, 'bonds', 20);"
        "CREATE VIEW programme_budgets AS SELECT p.name AS programme, b.source AS source, b.amount AS amount"
        " FROM budgets b JOIN programmes p ON p.id = b.programme_id;"
    )
    conn.commit()
    conn.close()
    evidence = find_rows(folder, ["solar"])
    assert {query.table for query in evidence.queries if query.rows} == {
        "budgets",
        "programmes",
        "programme_budgets",
    }
    # Each table's row (ids aside) is inside the view's row: the view, with names, is shown.
    assert [query.table for query in evidence.matches] == ["programme_budgets"]
    [budgets] = [query for query in evidence.queries if query.table == "budgets"]
    assert [budgets.columns[i] for i in shown_columns(budgets)] == ["source", "amount"]
