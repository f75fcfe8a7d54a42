"""Whether each part of the question is answered, and if not, why: the one place that decides.

A part is answered by a sentence that is about it (see `relevance`) and, when it asks for a
year, a date or a quantity, states one; or by a data row about it that states it; or by an
aggregate computed for the question (the largest, the total, how many).  A part naming a word
the documents never use (nor a synonym of it) is not answered whatever else matches: the
documents cannot say who heads an office they never say has a head.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.modules.relevance import (
    YEAR,
    Candidate,
    answering_sentences,
    asked_kind,
    share,
    states_asked,
    stems_of,
)
from app.modules.sql.aggregates import SCORE as AGGREGATE_SCORE
from app.modules.sql.aggregates import aggregate_shape
from app.modules.sql.figures import SqlQuery
from app.modules.writers.evidence import Evidence

ABOUT_SHARE = 0.5  # a data row is about a part when it says half of the part's term weight


def _data_text(evidence: Evidence) -> list[str]:
    if evidence.sql is None:
        return []
    # A row says its values and what its columns are ("funding_source": green bonds).
    return [
        " ".join([*query.columns, *(str(value) for value in row)])
        for query in evidence.sql.matches
        for row in query.rows
    ]


def aggregate_for(evidence: Evidence, part: int) -> SqlQuery | None:
    """The aggregate computed for this part ("the largest ...", "how many ..."), if any."""
    if evidence.sql is None or not aggregate_shape(evidence.parts[part]):
        return None
    return next((q for q in evidence.sql.matches if q.score >= AGGREGATE_SCORE), None)


def _data_answers(evidence: Evidence, part: int) -> bool:
    return aggregate_for(evidence, part) is not None or _row_answers(evidence, part)


def _row_answers(evidence: Evidence, part: int) -> bool:
    text = evidence.parts[part]
    terms = [term for term in evidence.part_terms[part] if not YEAR.fullmatch(term)]
    return any(
        share(terms, evidence.weights, stems_of(row)) >= ABOUT_SHARE and states_asked(text, row)
        for row in _data_text(evidence)
    )


def document_answers(evidence: Evidence, part: int, extra_terms: Iterable[str] = ()) -> list[Candidate]:
    """The sentences that answer the part.  When a data row states the year asked for, a
    sentence must itself be about the part: the row is the answer, the rest background."""
    exact = asked_kind(evidence.parts[part]) == "year" and _row_answers(evidence, part)
    return answering_sentences(evidence, part, extra_terms, min_own=ABOUT_SHARE if exact else 0.0)


def _never_mentioned(evidence: Evidence, part: int) -> list[str]:
    known_to_data = set().union(*map(stems_of, _data_text(evidence)))
    return [
        term
        for term in evidence.part_terms[part]
        # A year the documents never name is told as the year asked for, below.
        if evidence.weights.get(term, 1.0) == 0
        and not YEAR.fullmatch(term)
        and not stems_of(term) & known_to_data
    ]


def _reason(text: str) -> str:
    kind = asked_kind(text)
    if kind == "year":
        return f"no passage or data row gives this for {', '.join(YEAR.findall(text))}"
    if kind == "quantity":
        return "no passage or data row states the number asked for"
    if kind == "date":
        return "no passage or data row says when"
    return "no passage says this"


def part_gaps(evidence: Evidence) -> dict[int, str]:
    """The parts the evidence does not answer, each with the reason."""
    gaps: dict[int, str] = {}
    for part, text in enumerate(evidence.parts):
        unknown = _never_mentioned(evidence, part)
        if unknown:
            gaps[part] = "the documents never mention: " + ", ".join(unknown)
        elif not document_answers(evidence, part) and not _data_answers(evidence, part):
            gaps[part] = _reason(text)
    return gaps
