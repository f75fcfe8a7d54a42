"""Whether each part is answered: by a statement giving the asked year or quantity, by a data
row about it, by an aggregate; never when it names a word the documents do not use."""

from __future__ import annotations

from app.modules.asked_facts import part_gaps as structured_gaps
from app.modules.search.text import keywords
from app.modules.sql.figures import SqlEvidence, SqlQuery
from app.modules.writers.evidence import Evidence, Source


def part_gaps(found: Evidence) -> dict[int, str]:
    return {part: f"{gap.code}: {gap.reason}" for part, gap in structured_gaps(found).items()}


def evidence(question: str, texts: list[str], rows: list[list[object]] | None = None) -> Evidence:
    sources = [Source(n, "documents/x.md", "X", 1, 2, text, 1.0, 0) for n, text in enumerate(texts, 1)]
    found = Evidence(question, [question], [keywords(question)], sources)
    if rows is not None:
        found.sql = SqlEvidence(["db"], [SqlQuery("db", "t", "SELECT", [], ["a"], rows, score=2)])
    return found


def test_a_year_no_statement_gives_is_a_gap_even_beside_related_sentences() -> None:
    related = ["All city buses are electric or hydrogen by 2030.", "Rail frequency doubles by 2029."]
    asked = evidence("How many electric buses did the region buy in 2019?", related)
    assert part_gaps(asked) == {0: "year_not_given: no passage or data row gives this for 2019"}


def test_a_data_row_about_the_part_gives_its_year() -> None:
    question = "What is the Home Retrofit Programme budget in 2027?"
    assert part_gaps(evidence(question, [], [["Home Retrofit Programme", 2027, 150.0]])) == {}
    other_programme = [["Clean Transport Plan", 2027, 190.0]]
    assert part_gaps(evidence(question, [], other_programme)) == {
        0: "year_not_given: no passage or data row gives this for 2027"
    }


def test_how_many_needs_a_number_next_to_the_terms_words_count_too() -> None:
    question = "How many experts sit on the Climate Advisory Council?"
    said = evidence(
        question, ["An independent Climate Advisory Council of nine experts reviews the strategy."]
    )
    assert part_gaps(said) == {}
    unsaid = evidence(question, ["The Climate Advisory Council reviews the strategy and advises experts."])
    assert part_gaps(unsaid) == {0: "number_not_given: no passage or data row states the number asked for"}


def test_a_word_the_documents_never_use_makes_the_part_a_gap_whatever_else_matches() -> None:
    question = "Who is the head of the Regional Climate Office?"
    found = evidence(question, ["The Regional Climate Office coordinates the initiatives."])
    found.weights = {"head": 0.0, "regional": 1.0, "climate": 0.5, "office": 2.0}
    assert part_gaps(found) == {0: "never_mentioned: the documents never mention: head"}
    found.weights["head"] = 3.0  # the documents use the word somewhere: the sentence answers
    assert part_gaps(found) == {}


def test_an_aggregate_answers_the_part_that_asks_for_it() -> None:
    question = "Which programme has the largest budget in 2027?"
    found = evidence(question, [])
    assert part_gaps(found) == {0: "year_not_given: no passage or data row gives this for 2027"}
    total = SqlQuery("db", "t", "SELECT", [], ["programme"], [["Green Investment Fund"]], score=1000)
    found.sql = SqlEvidence(["db"], [total])
    assert part_gaps(found) == {}


def test_an_unknown_word_decides_only_when_it_names_what_is_asked() -> None:
    def gaps(question: str, weights: dict[str, float]) -> dict[int, str]:
        found = evidence(question, ["The sector must present additional measures within six months."])
        found.weights = weights
        return part_gaps(found)

    restricting = {"nuclear": 0.0, "power": 1.0, "capacity": 1.0, "planned": 1.0}
    assert gaps("How much nuclear power capacity is planned?", restricting) == {
        0: "never_mentioned: the documents never mention: nuclear"
    }
    counted = {"ferry": 0.0, "region": 0.5, "operate": 3.0}
    assert gaps("How many ferries does the region operate?", counted) == {
        0: "never_mentioned: the documents never mention: ferry"
    }
    # A paraphrase's unknown verb only weighs nothing: the sentence still answers.
    paraphrase = {"sector": 2.0, "keep": 0.0, "failing": 2.0, "limit": 2.0}
    assert gaps("What happens if a sector keeps failing its limits?", paraphrase) == {}
