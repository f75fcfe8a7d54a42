"""Splitting markdown into passages along its headings, keeping file, heading path and lines."""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
MAX_PASSAGE_LINES = 40


@dataclass(frozen=True)
class Passage:
    file: str
    heading: str
    start_line: int
    end_line: int
    text: str


def split_passages(file: str, text: str) -> list[Passage]:
    """One passage per heading section (long sections are cut every MAX_PASSAGE_LINES lines)."""
    lines = text.splitlines()
    trail: list[tuple[int, str]] = []
    passages: list[Passage] = []
    body: list[str] = []
    start = 1
    in_fence = False

    def flush(end: int) -> None:
        content = "\n".join(body).strip()
        if content:
            heading = " > ".join(title for _, title in trail) or file
            passages.append(Passage(file, heading, start, end, content))
        body.clear()

    for number, line in enumerate(lines, start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            flush(number - 1)
            level = len(match.group(1))
            trail = [(lvl, title) for lvl, title in trail if lvl < level] + [(level, match.group(2))]
            start = number
            continue
        if len(body) >= MAX_PASSAGE_LINES:
            flush(number - 1)
            start = number
        body.append(line)
    flush(len(lines))
    return passages
