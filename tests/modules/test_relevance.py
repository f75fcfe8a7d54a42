"""Which sentences answer a part: rare words weigh more, headings are context, floors cut
background, and an asked year, date or quantity must be stated."""

from __future__ import annotations

from app.modules.relevance import answering_sentences, asked_kind, term_weights
from app.modules.search.text import keywords
from app.modules.writers.evidence import Evidence, Source


def evidence(question: str, passages: list[tuple[str, str, str]], weights: dict[str, float]) -> Evidence:
    sources = [
        Source(n, f"documents/{file}", heading, 1, 2, text, 10.0 - n, 0)
        for n, (file, heading, text) in enumerate(passages, 1)
    ]
    return Evidence(question, [question], [keywords(question)], sources, weights=weights)


def chosen(found: Evidence) -> list[str]:
    return [candidate.sentence for candidate in answering_sentences(found, 0)]


def test_a_sentence_sharing_only_a_common_word_is_left_out() -> None:
    found = evidence(
        "What is the offshore wind target?",
        [
            ("wind.md", "Renewables > Offshore wind", "The offshore wind target is 3.5 gigawatts by 2032."),
            ("coops.md", "Cooperatives", "The target is 300 active cooperatives by 2030."),
        ],
        {"offshore": 3.0, "wind": 2.0, "target": 0.5},
    )
    assert chosen(found) == ["The offshore wind target is 3.5 gigawatts by 2032."]


def test_the_heading_answers_for_a_sentence_that_refers_back() -> None:
    found = evidence(
        "How is the revenue used?",
        [("price.md", "Carbon price > How the revenue is used", "Half is paid back as a climate dividend.")],
        {"revenue": 2.0, "used": 1.0},
    )
    assert chosen(found) == ["Half is paid back as a climate dividend."]


def test_a_synonym_counts_for_the_word_the_question_used() -> None:
    found = evidence(
        "What stops rubbish dumps releasing gas?",
        [("methane.md", "Methane", "Landfill gas is captured at all regional landfills.")],
        {"stop": 1.0, "rubbish": 2.0, "dump": 2.0, "releasing": 1.0, "gas": 1.0},
    )
    assert chosen(found) == ["Landfill gas is captured at all regional landfills."]


def test_a_part_asking_a_year_or_a_quantity_keeps_only_sentences_that_state_it() -> None:
    assert asked_kind("How many experts sit on the council?") == "quantity"
    assert asked_kind("When is the report published?") == "date"
    assert asked_kind("What was the budget in 2027?") == "year"
    council = [
        ("council.md", "Council", "The council reviews the strategy and advises the experts."),
        ("council.md", "Council", "The council has nine experts."),
    ]
    found = evidence("How many experts sit on the council?", council, {"expert": 2.0, "council": 2.0})
    assert chosen(found) == ["The council has nine experts."]
    report = [("report.md", "Report", "The annual progress report is published each June by the office.")]
    assert chosen(evidence("When is the progress report published?", report, {})) == [report[0][2]]


def test_words_the_documents_never_use_weigh_nothing_and_rare_ones_weigh_more() -> None:
    counts = {"offshore": 2, "target": 40, "landfill": 3}
    weights = term_weights(["offshore", "target", "banana", "dump"], lambda w: counts.get(w, 0), 100)
    assert weights["offshore"] > weights["target"] > 0
    assert weights["banana"] == 0.0
    assert weights["dump"] > 0  # never used itself, but its synonym "landfill" is
