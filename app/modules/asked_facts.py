"""Whether each part of the question is answered, and if not, why: the one place that decides.

A part is answered by a sentence that is about it (see `relevance`) and, when it asks for a
year, a date or a quantity, states one; or by a data row about it that states it; or by an
aggregate computed for the question (the largest, the total, how many).  A part naming a word
the documents never use (nor a synonym of it) is not answered whatever else matches: the
documents cannot say who heads an office they never say has a head.
"""

from __future__ import annotations

import itertools
import re
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
from app.modules.search.text import normalise, words
from app.modules.sql.aggregates import SCORE as AGGREGATE_SCORE
from app.modules.sql.aggregates import aggregate_shape
from app.modules.sql.figures import SqlQuery
from app.modules.writers.evidence import Evidence, PartGap

ABOUT_SHARE = 0.5  # a data row is about a part when it says half of the part's term weight
UNKNOWN_SHARE = 0.5  # words the documents never use, weighing this much of a part, decide it
# The attribute, act or thing asked about: "who is the head of ...", "who chairs ...", "how
# many ferries ...".
ATTRIBUTE = re.compile(
    r"^\s*(?:(?:who|what|which)\s+(?:is|are|was|were)\s+(?:the|a|an)\s+(?P<word>[\w-]+)\s+(?:of|for|at|behind)"
    r"|who\s+(?P<verb>[\w-]+)\s+(?:the|a|an)\s"
    r"|how\s+many\s+(?P<counted>[\w-]+))",
    re.IGNORECASE,
)


def _data_text(evidence: Evidence) -> list[str]:
    if evidence.sql is None:
        return []
    # A row says its values and what its columns are ("funding_source": green bonds); an
    # aggregate says what it counted ("1 programmes matching regional, treasury.").
    return [
        " ".join([*query.columns, *(str(value) for value in row), query.answer or ""])
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
    """The sentences that answer the part.  For a part naming a year, a sentence must itself be
    about the part, not only name the year under a fitting heading ("the carbon price in 2035"
    is not answered by "the fund runs from 2025 to 2035")."""
    by_year = asked_kind(evidence.parts[part]) == "year"
    return answering_sentences(evidence, part, extra_terms, min_own=ABOUT_SHARE if by_year else 0.0)


def _never_mentioned(evidence: Evidence, part: int) -> list[str]:
    """Words of the part the documents (and data) never use, when they decide what the part is
    about: the attribute asked for ("who is the head of ..."), a word restricting a known one
    ("nuclear power"), or most of the part's weight ("the price of bananas in Tokyo").  Other
    unknown words (a paraphrase's "keeps failing") only weigh nothing."""
    known_to_data = set().union(*map(stems_of, _data_text(evidence)))
    terms = evidence.part_terms[part]
    unknown = [
        term
        for term in terms
        # A year the documents never name is told as the year asked for, in _unanswered.
        if evidence.weights.get(term, 1.0) == 0
        and not YEAR.fullmatch(term)
        and not stems_of(term) & known_to_data
    ]
    if not unknown:
        return []
    text = evidence.parts[part]
    attribute = ATTRIBUTE.match(text)
    if attribute and normalise(attribute["word"] or attribute["verb"] or attribute["counted"]) in unknown:
        return unknown
    rarest = max(evidence.weights.values(), default=1.0) or 1.0
    weight = {term: evidence.weights.get(term, 1.0) or rarest for term in terms}
    if sum(weight[term] for term in unknown) >= UNKNOWN_SHARE * sum(weight.values()):
        return unknown
    # A word just before a known one restricts it ("nuclear power"; "keeps failing" is a verb
    # before a verb, which restricts nothing).
    for before, word in itertools.pairwise(words(text)):
        if before in unknown and word in terms and word not in unknown and not word.endswith(("ing", "ed")):
            return unknown
    return []


def _unanswered(text: str) -> PartGap:
    kind = asked_kind(text)
    if kind == "year":
        return PartGap(
            "year_not_given", f"no passage or data row gives this for {', '.join(YEAR.findall(text))}"
        )
    if kind == "quantity":
        return PartGap("number_not_given", "no passage or data row states the number asked for")
    if kind == "date":
        return PartGap("date_not_given", "no passage or data row says when")
    return PartGap("not_answered", "no passage says this")


def part_gaps(evidence: Evidence) -> dict[int, PartGap]:
    """The parts the evidence does not answer, each with the reason."""
    gaps: dict[int, PartGap] = {}
    for part, text in enumerate(evidence.parts):
        unknown = _never_mentioned(evidence, part)
        if unknown:
            gaps[part] = PartGap("never_mentioned", "the documents never mention: " + ", ".join(unknown))
        elif not document_answers(evidence, part) and not _data_answers(evidence, part):
            gaps[part] = _unanswered(text)
    return gaps
