"""Parts of a question that ask for a fact of a kind (a year, a count or an amount): such a
part is answered only by one sentence or SQL row that states it next to the part's own terms.
Loosely related sentences are not an answer, and the run says so with a gap."""

from __future__ import annotations

import re

from app.modules.search.text import keywords, sentences, words
from app.modules.sql.aggregates import SCORE as AGGREGATE_SCORE
from app.modules.writers.evidence import Evidence

YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
NUMBER = re.compile(r"\d")
NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty "
    "fifty hundred thousand million billion half".split()
)
ASKS_QUANTITY = re.compile(r"^\s*how (?:many|much)\b", re.IGNORECASE)


def _states_quantity(text: str) -> bool:
    return bool(NUMBER.search(text)) or bool(NUMBER_WORDS & set(words(text)))


def _about(text: str, terms: set[str]) -> bool:
    """The text names at least half of the part's own terms."""
    return bool(terms) and 2 * len(terms & set(words(text))) >= len(terms)


def _statements(evidence: Evidence, part: int) -> list[str]:
    found = [s for source in evidence.sources_for(part) for s in sentences(source.text)]
    if evidence.sql is not None:
        found += [" ".join(str(value) for value in row) for q in evidence.sql.matches for row in q.rows]
    return found


def missing_asked_facts(evidence: Evidence) -> dict[int, str]:
    """Parts (not already unanswered) whose asked year or quantity no statement gives; why.
    An aggregate computed for the question (the largest, the total, how many) gives it."""
    missing: dict[int, str] = {}
    if evidence.sql is not None and any(query.score >= AGGREGATE_SCORE for query in evidence.sql.matches):
        return missing
    for part, text in enumerate(evidence.parts):
        if part in evidence.unanswered_parts:
            continue
        years = set(YEAR.findall(text))
        terms = set(keywords(YEAR.sub(" ", text)))
        statements = [s for s in _statements(evidence, part) if _about(s, terms)]
        for year in sorted(years):
            if not any(year in statement for statement in statements):
                missing[part] = f"no passage or data row gives this for {year}"
        if part not in missing and ASKS_QUANTITY.match(text) and not any(map(_states_quantity, statements)):
            missing[part] = "no passage or data row states the number asked for"
    return missing
