"""A part that asks for a year or a quantity is answered only by a statement that gives it."""

from __future__ import annotations

from app.modules.asked_facts import missing_asked_facts
from app.modules.search.text import keywords
from app.modules.sql.figures import SqlEvidence, SqlQuery
from app.modules.writers.evidence import Evidence, Source


def evidence(question: str, texts: list[str], rows: list[list[object]] | None = None) -> Evidence:
    sources = [Source(n, "documents/x.md", "X", 1, 2, text, 1.0, 0) for n, text in enumerate(texts, 1)]
    found = Evidence(question, [question], [keywords(question)], sources)
    if rows is not None:
        found.sql = SqlEvidence(["db"], [SqlQuery("db", "t", "SELECT", [], ["a"], rows, score=2)])
    return found


def test_a_year_no_statement_gives_is_a_gap_even_beside_related_sentences() -> None:
    related = ["All city buses are electric or hydrogen by 2030.", "Rail frequency doubles by 2029."]
    asked = evidence("How many electric buses did the region buy in 2019?", related)
    assert missing_asked_facts(asked) == {0: "no passage or data row gives this for 2019"}


def test_a_data_row_about_the_part_gives_its_year() -> None:
    question = "What is the Home Retrofit Programme budget in 2027?"
    assert missing_asked_facts(evidence(question, [], [["Home Retrofit Programme", 2027, 150.0]])) == {}
    other_programme = [["Clean Transport Plan", 2027, 190.0]]
    assert missing_asked_facts(evidence(question, [], other_programme)) == {
        0: "no passage or data row gives this for 2027"
    }


def test_how_many_needs_a_number_next_to_the_terms_words_count_too() -> None:
    question = "How many experts sit on the Climate Advisory Council?"
    said = evidence(
        question, ["An independent Climate Advisory Council of nine experts reviews the strategy."]
    )
    assert missing_asked_facts(said) == {}
    unsaid = evidence(question, ["The Climate Advisory Council reviews the strategy and advises experts."])
    assert missing_asked_facts(unsaid) == {0: "no passage or data row states the number asked for"}
