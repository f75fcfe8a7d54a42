"""Which sentences answer a part of the question, and which are only background.

A sentence scores the share of the part's term weight it says (rare words weigh more than
common ones; a synonym counts a little less than the word), read with its passage's heading
as context, so "All revenue is returned." under "How the revenue is used" is about revenue use.
A sentence under a floor (absolute, and relative to the part's best sentence) is left out.
A part that asks for a year, a date or a quantity keeps only sentences that state one.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from app.modules.search.synonyms import SYNONYM_WEIGHT, stem, synonyms
from app.modules.search.text import sentences
from app.modules.writers.evidence import Evidence, Source

FLOOR = 0.2  # a sentence must say at least this share of the part's term weight
RELATIVE_FLOOR = 0.65  # ... and at least this share of the best sentence's score
HEADING_WEIGHT = 0.5  # a word only the heading says supports a sentence half as much
# A sentence from a document that answers no part of the question best is likelier background.
OTHER_DOCUMENT_FACTOR = 0.8
# Below this, the question's words are mostly not the documents' (a paraphrase): how well the
# whole passage matched (with synonyms) then counts as much as the sentence's own words.
WEAK_MATCH = 0.5
SENTENCES_PER_SOURCE = 3
SENTENCES_PER_PART = 4
MIN_SENTENCE_CHARS = 20

YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
DIGIT = re.compile(r"\d")
NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty "
    "fifty hundred thousand million billion".split()
)
ASKS_QUANTITY = re.compile(r"^\s*(?:by\s+)?how (?:many|much|big|large|long|high|far|often)\b", re.IGNORECASE)
MONTH = re.compile(
    r"\b(?:january|february|march|april|may|june|july|august|september|october|november|december)\b",
    re.IGNORECASE,
)
ASKS_DATE = re.compile(r"^\s*(?:when|by when|in which year|what year)\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")


def stems_of(text: str) -> set[str]:
    return {stem(word.strip("'-")) for word in _WORD.findall(text)}


def states_quantity(text: str) -> bool:
    return bool(DIGIT.search(text)) or bool(NUMBER_WORDS & {w.lower() for w in _WORD.findall(text)})


def term_weights(terms: Iterable[str], frequency: Callable[[str], int], total: int) -> dict[str, float]:
    """Inverse document frequency of each term; a word the documents never use weighs as its most
    common synonym, and 0 when neither it nor a synonym occurs (the documents cannot say it)."""
    weights: dict[str, float] = {}
    for term in terms:
        plain = frequency(term) or (frequency(term[:-1]) if term.endswith("e") and len(term) > 3 else 0)
        count = plain or max((frequency(word) for word in synonyms(term)), default=0)
        weights[term] = math.log(1 + total / count) if count else 0.0
    return weights


@dataclass(frozen=True)
class Candidate:
    source: Source
    sentence: str
    score: float  # with the heading as context
    own: float  # from the sentence alone


def forms(term: str) -> set[str]:
    """The stems a term may appear as: a light plural stem leaves "gases" as "gase"."""
    found = {stem(term)}
    if term.endswith("e") and len(term) > 3:
        found.add(stem(term[:-1]))
    return found


def _said(term: str, said: set[str]) -> float:
    if forms(term) & said:
        return 1.0
    return SYNONYM_WEIGHT if any(stem(word) in said for word in synonyms(term)) else 0.0


def share(terms: list[str], weights: dict[str, float], said: set[str]) -> float:
    """The share of the terms' weight that a text with these stems says."""
    total = sum(weights.get(term, 1.0) for term in terms)
    if not total:
        return 0.0
    return sum(weights.get(term, 1.0) * _said(term, said) for term in terms) / total


def asked_kind(part: str) -> str | None:
    """'year' when the part names one, 'date' for when-questions, 'quantity' for how-much ones."""
    if YEAR.search(part):
        return "year"
    if ASKS_DATE.match(part):
        return "date"
    return "quantity" if ASKS_QUANTITY.match(part) else None


def states_asked(part: str, text: str) -> bool:
    kind = asked_kind(part)
    if kind == "year":
        return all(year in text for year in YEAR.findall(part))
    if kind == "date":
        return bool(YEAR.search(text) or MONTH.search(text))
    return states_quantity(text) if kind == "quantity" else True


def candidates(evidence: Evidence, part: int, extra_terms: Iterable[str] = ()) -> list[Candidate]:
    """Every sentence of the part's sources, scored, best first."""
    terms = list(dict.fromkeys([*evidence.part_terms[part], *extra_terms]))
    found: list[tuple[float, float, int, int, Candidate]] = []
    for order, source in enumerate(evidence.sources_for(part)):
        heading = stems_of(source.heading)
        for position, sentence in enumerate(sentences(source.text)):
            if len(sentence) <= MIN_SENTENCE_CHARS:
                continue
            said = stems_of(sentence)
            own = share(terms, evidence.weights, said)
            if not own and not share(terms, evidence.weights, heading):
                continue
            score = own + HEADING_WEIGHT * (share(terms, evidence.weights, said | heading) - own)
            found.append((-score, -own, order, position, Candidate(source, sentence, score, own)))
    found.sort(key=lambda item: item[:4])
    return [item[-1] for item in found]


def _stating(evidence: Evidence, part: int, extra_terms: Iterable[str]) -> list[Candidate]:
    text = evidence.parts[part]
    found = candidates(evidence, part, extra_terms)
    return [c for c in found if states_asked(text, c.sentence)] if asked_kind(text) else found


def _with_passage_rank(found: list[Candidate]) -> list[Candidate]:
    best_sentence = found[0].score
    best_passage = max(c.source.score for c in found) or 1.0
    return sorted(
        (
            dataclasses.replace(c, score=0.5 * c.score / best_sentence + 0.5 * c.source.score / best_passage)
            for c in found
        ),
        key=lambda c: -c.score,
    )


def leading_files(evidence: Evidence, extra_terms: Iterable[str] = ()) -> set[str]:
    """The documents of the best sentence of each part: what the question is about."""
    best = (_stating(evidence, part, extra_terms) for part in range(len(evidence.parts)))
    return {found[0].source.file for found in best if found}


def answering_sentences(
    evidence: Evidence, part: int, extra_terms: Iterable[str] = (), min_own: float = 0.0
) -> list[Candidate]:
    """The sentences that answer the part: above the floors, stating the asked fact if it asks
    one, at most SENTENCES_PER_SOURCE from one passage, best first.  With `min_own`, only those
    that say that share of the part's weight themselves (not through their heading)."""
    extra_terms = tuple(extra_terms)
    found = [c for c in _stating(evidence, part, extra_terms) if c.own >= min_own]
    if not found:
        return []
    if found[0].score < WEAK_MATCH:
        found = _with_passage_rank(found)
    leading = leading_files(evidence, extra_terms)
    found = sorted(
        (
            dataclasses.replace(
                c, score=c.score * (1.0 if c.source.file in leading else OTHER_DOCUMENT_FACTOR)
            )
            for c in found
        ),
        key=lambda c: -c.score,  # stable: ties keep their order
    )
    floor = max(FLOOR, RELATIVE_FLOOR * found[0].score)
    chosen: list[Candidate] = []
    per_source: dict[int, int] = {}
    for candidate in found:
        if candidate.score < floor or per_source.get(candidate.source.number, 0) >= SENTENCES_PER_SOURCE:
            continue
        per_source[candidate.source.number] = per_source.get(candidate.source.number, 0) + 1
        chosen.append(candidate)
    return chosen[:SENTENCES_PER_PART]
