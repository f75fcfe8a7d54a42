"""The extractive answer's data tables: what they show and what they say they show."""

from __future__ import annotations

from app.modules.sql.figures import SqlEvidence, SqlQuery
from app.modules.writers.evidence import Evidence, Source
from app.modules.writers.extractive import ExtractiveWriter


def test_a_long_result_says_how_many_of_its_rows_are_shown_and_hides_ids() -> None:
    rows: list[list[object]] = [[n, f"Programme {n}", 2026, 10.0 * n] for n in range(1, 10)]
    query = SqlQuery("db.sqlite", "budgets", "SELECT", [], ["id", "programme", "year", "amount"], rows, 3)
    source = Source(1, "documents/a.md", "A", 1, 2, "Programme budgets are set each year in 2026.", 1.0, 0)
    question = "What are the programme budgets in 2026?"
    evidence = Evidence(question, [question], [["programme", "budget", "2026"]], [source])
    evidence.sql = SqlEvidence(["db.sqlite"], [query])
    markdown = ExtractiveWriter().write(evidence, lambda: False).markdown
    assert "| programme | year | amount |" in markdown and "| id |" not in markdown
    assert markdown.count("| Programme ") == 8
    assert "_8 of 9 rows shown; the context bundle has them all._" in markdown
    assert "table `budgets` (8 of 9 rows)" in markdown
