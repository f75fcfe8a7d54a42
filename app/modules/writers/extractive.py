"""The embedded writer: composes the answer from retrieved sentences, each with its citation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.modules.search.text import sentences, words
from app.modules.writers.evidence import SQL_ROWS_SHOWN, Draft, Evidence, Source, sources_section

SOURCES_PER_PART = 4
SENTENCES_PER_SOURCE = 2
BULLETS_PER_PART = 6
# Sources scoring below this share of a part's best source add noise, not support.
MIN_RELATIVE_SCORE = 0.4


def _best_sentences(source: Source, terms: set[str]) -> list[str]:
    scored = []
    for position, sentence in enumerate(sentences(source.text)):
        overlap = len(terms & set(words(sentence)))
        if overlap and len(sentence) > 20:
            scored.append((-overlap, position, sentence))
    scored.sort()
    return [sentence for _, _, sentence in scored[:SENTENCES_PER_SOURCE]]


def _part_bullets(evidence: Evidence, part: int) -> list[str]:
    terms = set(evidence.part_terms[part])
    if evidence.feedback is not None:
        terms |= set(evidence.feedback.focus_on)  # "focus on <terms>": their sentences come first
    bullets: list[str] = []
    seen: set[str] = set()
    sources = evidence.sources_for(part)[:SOURCES_PER_PART]
    best = max((source.score for source in sources), default=0.0)
    feedback = evidence.feedback
    for source in sources:
        if source.score < best * MIN_RELATIVE_SCORE:
            continue
        for sentence in _best_sentences(source, terms):
            if feedback is not None and feedback.leaves_out_sentence(sentence):
                continue  # "leave out <topic>"
            if sentence not in seen:
                seen.add(sentence)
                bullets.append(f"- {sentence} [{source.number}]")
    return bullets[:BULLETS_PER_PART]


def _sql_section(evidence: Evidence) -> list[str]:
    if evidence.sql is None or not evidence.sql.matches:
        return []
    lines = ["## Figures from the data", ""]
    for number, query in enumerate(evidence.sql.matches, start=1):
        lines += [f"Table `{query.table}` of `{query.database}` [D{number}]:", ""]
        lines.append("| " + " | ".join(query.columns) + " |")
        lines.append("|" + " --- |" * len(query.columns))
        for row in query.rows[:SQL_ROWS_SHOWN]:
            lines.append("| " + " | ".join(_cell(value) for value in row) + " |")
        lines.append("")
    return lines


def _cell(value: Any) -> str:
    """Clean numbers (175, 1,285, 2.8) and text without table breaks."""
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() else f"{value:,}"
    if isinstance(value, int) and not 1900 <= value <= 2100:  # years stay 2026, not 2,026
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


class ExtractiveWriter:
    def write(self, evidence: Evidence, should_stop: Callable[[], bool]) -> Draft:
        lines = [f"# {evidence.question.strip()}", ""]
        several = len(evidence.parts) > 1
        for part, text in enumerate(evidence.parts):
            if should_stop():
                return Draft("\n".join(lines) + "\n", {"kind": "extractive"}, stopped=True)
            if several:
                lines += [f"## {text[0].upper()}{text[1:]}", ""]
            bullets = [] if part in evidence.unanswered_parts else _part_bullets(evidence, part)
            if bullets:
                lines += [*bullets, ""]
            else:
                lines += [f"_The documents do not answer this{' part' if several else ''}: {text}._", ""]
        if len(evidence.unanswered_parts) < len(evidence.parts):  # rows about no answered part: noise
            lines += _sql_section(evidence)
        answer = "\n".join(lines)
        if evidence.sources or (evidence.sql and evidence.sql.matches):
            lines.append(sources_section(evidence, answer))
        return Draft("\n".join(lines).rstrip() + "\n", {"kind": "extractive"})
