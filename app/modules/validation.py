"""Validation of an answer, whichever writer wrote it: the parts it could not support, sentences
that cite nothing, parts it cites no evidence for, and citations that point nowhere."""

from __future__ import annotations

from app.modules.contract import Gap
from app.modules.search.text import sentences
from app.modules.writers.evidence import CITATION, Evidence, cited_labels

MIN_CLAIM_WORDS = 4  # shorter uncited fragments ("In short:") claim nothing
SHOWN_CHARS = 120


def uncited_sentences(text: str) -> list[str]:
    """The text's sentences that state something and cite nothing: not headings, table rows or
    a writer's own notes of what the documents do not answer (in italics)."""
    found = []
    for line in text.splitlines():
        line = line.strip().lstrip("-*+ ").strip()
        if not line or line.startswith(("#", "|", "_")):
            continue
        found += [s for s in sentences(line) if len(s.split()) >= MIN_CLAIM_WORDS and not CITATION.search(s)]
    return found


def _uncited(answer: str) -> list[Gap]:
    body = "\n".join(answer.splitlines()[1:])  # the title is the question
    return [
        Gap("uncited_sentence", claim[:SHOWN_CHARS], "the sentence cites no evidence")
        for claim in uncited_sentences(body)
    ]


def _cites_nothing_for(evidence: Evidence, part: int, cited: set[str]) -> bool:
    """True when the answer cites neither a passage that serves the part nor any data row."""
    served = {str(source.number) for source in evidence.sources_for(part)}
    return not served & cited and not any(label.startswith("D") for label in cited)


def find_gaps(evidence: Evidence, markdown: str) -> list[Gap]:
    gaps = [
        Gap("unanswered_part", evidence.parts[part], gap.reason)
        for part, gap in sorted(evidence.part_gaps.items())
    ]
    answer = markdown.split("\n## Sources", 1)[0]
    cited = cited_labels(answer)
    known = {str(source.number) for source in evidence.sources}
    known |= {f"D{n}" for n in range(1, len(evidence.sql.matches) + 1)} if evidence.sql else set()
    gaps += [
        Gap("broken_citation", f"[{label}]", "the answer cites evidence that does not exist")
        for label in sorted(cited - known)
    ]
    answered = [part for part in range(len(evidence.parts)) if part not in evidence.part_gaps]
    if answered and not cited & known:
        gaps.append(Gap("uncited_answer", "answer", "the answer cites none of the evidence"))
    elif len(evidence.parts) > 1:
        gaps += [
            Gap("unanswered_part", evidence.parts[part], "the answer cites no evidence for this part")
            for part in answered
            if _cites_nothing_for(evidence, part, cited & known)
        ]
    return gaps + _uncited(answer)
