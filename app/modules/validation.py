"""Validation of an answer: what it could not support, and citations that point nowhere."""

from __future__ import annotations

from app.modules.contract import Gap
from app.modules.search.text import words
from app.modules.writers.evidence import Evidence, Source, cited_labels

# A part is answered when its retrieved passages mention at least this share of its keywords.
MIN_TERM_COVERAGE = 0.5


def coverage(terms: list[str], sources: list[Source]) -> tuple[float, list[str]]:
    """Share of `terms` found in the sources, and the terms that were not found."""
    if not terms:
        return 1.0, []
    found = set()
    for source in sources:
        found |= set(words(f"{source.heading} {source.text}"))
    missing = [term for term in terms if term not in found]
    return 1 - len(missing) / len(terms), missing


def unanswered_parts(evidence: Evidence) -> dict[int, list[str]]:
    """Parts whose evidence is too thin, with the keywords nothing mentions."""
    result = {}
    for part, terms in enumerate(evidence.part_terms):
        share, missing = coverage(terms, evidence.sources_for(part))
        if share < MIN_TERM_COVERAGE:
            result[part] = missing
    return result


def _why(evidence: Evidence, part: int, missing_terms: dict[int, list[str]]) -> str:
    if part in evidence.gap_reasons:
        return evidence.gap_reasons[part]
    if missing_terms.get(part):
        return "no document passage covers: " + ", ".join(missing_terms[part])
    return "no document passage matches this part of the question"


def find_gaps(evidence: Evidence, markdown: str, missing_terms: dict[int, list[str]]) -> list[Gap]:
    gaps = [
        Gap("unanswered_part", evidence.parts[part], _why(evidence, part, missing_terms))
        for part in sorted(evidence.unanswered_parts)
    ]
    answer = markdown.split("\n## Sources", 1)[0]
    cited = cited_labels(answer)
    known = {str(source.number) for source in evidence.sources}
    known |= {f"D{n}" for n in range(1, len(evidence.sql.matches) + 1)} if evidence.sql else set()
    gaps += [
        Gap("broken_citation", f"[{label}]", "the answer cites evidence that does not exist")
        for label in sorted(cited - known)
    ]
    answered = len(evidence.unanswered_parts) < len(evidence.parts)
    if answered and not cited & known:
        gaps.append(Gap("uncited_answer", "answer", "the answer cites none of the evidence"))
    return gaps
