"""The evidence a writer works from: numbered sources, question parts and SQL rows."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.modules.feedback import Feedback
from app.modules.sql.figures import SqlEvidence


@dataclass(frozen=True)
class Source:
    """A retrieved passage, numbered for citation as [number]."""

    number: int
    file: str
    heading: str
    start_line: int
    end_line: int
    text: str
    score: float
    part: int
    # Other parts of the question this passage also serves (one passage may answer several).
    also: frozenset[int] = frozenset()

    def serves(self, part: int) -> bool:
        return part == self.part or part in self.also

    @property
    def label(self) -> str:
        return f"`{self.file}` § {self.heading} (lines {self.start_line}-{self.end_line})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.number,
            "file": self.file,
            "heading": self.heading,
            "lines": [self.start_line, self.end_line],
            "score": self.score,
            "question_part": self.part,
            "also_answers_parts": sorted(self.also),
            "text": self.text,
        }


@dataclass(frozen=True)
class PartGap:
    """Why a part of the question is not answered: a stable code and the words for people."""

    code: str  # never_mentioned, year_not_given, number_not_given, date_not_given, not_answered
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "reason": self.reason}


@dataclass
class Evidence:
    question: str
    parts: list[str]
    part_terms: list[list[str]]
    sources: list[Source]
    sql: SqlEvidence | None = None
    feedback: Feedback | None = None  # on the parent's answer, for a regenerated run
    part_gaps: dict[int, PartGap] = field(default_factory=dict)  # the parts not answered, and why
    # How much each question term weighs (rarer in the documents: more); 0 for a word they never
    # use; a term missing here weighs 1.
    weights: dict[str, float] = field(default_factory=dict)

    @property
    def unanswered_parts(self) -> set[int]:
        return set(self.part_gaps)

    def sources_for(self, part: int) -> list[Source]:
        return [source for source in self.sources if source.serves(part)]


@dataclass
class Draft:
    markdown: str
    writer: dict[str, Any]
    stopped: bool = False


class Writer(Protocol):
    """Turns evidence into a cited markdown answer; checks should_stop as it goes."""

    def write(self, evidence: Evidence, should_stop: Callable[[], bool]) -> Draft: ...


SQL_ROWS_SHOWN = 8  # rows of one SQL result an answer shows (the bundle keeps them all)
CITATION = re.compile(r"\[(D?\d+)\]")


def cited_labels(answer: str) -> set[str]:
    """The evidence labels an answer cites: "1" for [1], "D1" for [D1]."""
    return set(CITATION.findall(answer))


def rows_said(count: int) -> str:
    """ "1 row", "3 rows", or "8 of 9 rows" when the answer shows fewer than the query found."""
    if count > SQL_ROWS_SHOWN:
        return f"{SQL_ROWS_SHOWN} of {count:,} rows"
    return "1 row" if count == 1 else f"{count:,} rows"


def sources_section(evidence: Evidence, answer: str) -> str:
    """Only what the answer cites; the rest stays in the bundle, as considered but not cited."""
    cited = cited_labels(answer)
    lines = ["## Sources", ""]
    lines += [f"- [{s.number}] {s.label}" for s in evidence.sources if str(s.number) in cited]
    if evidence.sql is not None:
        for number, query in enumerate(evidence.sql.matches, start=1):
            if f"D{number}" in cited:
                lines.append(
                    f"- [D{number}] `{query.database}` table `{query.table}` ({rows_said(len(query.rows))})"
                )
    return "\n".join(lines) + "\n"
