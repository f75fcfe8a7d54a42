"""The embedded writer: composes the answer from retrieved sentences, each with its citation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.modules.asked_facts import aggregate_for, document_answers
from app.modules.sql.figures import format_value, shown_columns
from app.modules.writers.evidence import SQL_ROWS_SHOWN, Draft, Evidence, rows_said, sources_section


def _part_bullets(evidence: Evidence, part: int) -> list[str]:
    total = aggregate_for(evidence, part)
    if total is not None and total.answer:  # the figure asked for is computed from the data
        return [f"- {total.answer} [D{evidence.sql.matches.index(total) + 1}]"] if evidence.sql else []
    feedback = evidence.feedback
    focus = feedback.focus_on if feedback is not None else ()  # "focus on <terms>": said first
    bullets = [
        f"- {found.sentence} [{found.source.number}]"
        for found in document_answers(evidence, part, focus)
        # "leave out <topic>"
        if feedback is None or not feedback.leaves_out_sentence(found.sentence)
    ]
    if not bullets and evidence.sql is not None and evidence.sql.matches:
        # Answered by the data alone (the part's year or figure is in no passage).
        bullets.append(f"- The data below answers this: table `{evidence.sql.matches[0].table}` [D1].")
    return bullets


def _sql_section(evidence: Evidence) -> list[str]:
    if evidence.sql is None or not evidence.sql.matches:
        return []
    lines = ["## Figures from the data", ""]
    for number, query in enumerate(evidence.sql.matches, start=1):
        lines += [f"Table `{query.table}` of `{query.database}` [D{number}]:", ""]
        shown = shown_columns(query)  # the bundle keeps every column
        lines.append("| " + " | ".join(query.columns[i] for i in shown) + " |")
        lines.append("|" + " --- |" * len(shown))
        for row in query.rows[:SQL_ROWS_SHOWN]:
            lines.append("| " + " | ".join(_cell(row[i]) for i in shown) + " |")
        if len(query.rows) > SQL_ROWS_SHOWN:
            lines += ["", f"_{rows_said(len(query.rows))} shown; the context bundle has them all._"]
        lines.append("")
    return lines


def _cell(value: Any) -> str:
    return format_value(value).replace("|", "\\|").replace("\n", " ")


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
