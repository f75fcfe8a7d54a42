"""The sections of an answer's markdown, which people edit one at a time.

Section 0 is what comes before the first `## ` heading (the `# ` title and what follows it);
every `## ` heading starts the next one.  Headings inside code fences are text.  An answer's
sentences cite their evidence as [n] or [Dn]; an edited sentence that cites nothing is listed,
so that nobody takes it for something the evidence says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.modules.validation import uncited_sentences

__all__ = ["Section", "find_section", "replace_section", "section_text", "sections", "uncited_sentences"]

_FENCE = re.compile(r"^\s*(```|~~~)")
_SECTION = re.compile(r"^##\s+(.+?)\s*#*\s*$")
_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Section:
    index: int
    heading: str
    start: int  # the line its body starts on (after its heading line)
    end: int  # the line after its last


def sections(markdown: str) -> list[Section]:
    lines = markdown.splitlines()
    found: list[Section] = []
    heading, start, in_fence = "", 0, False
    for number, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
        if in_fence:
            continue
        if not found and not heading and number == start and (title := _TITLE.match(line)):
            heading, start = title.group(1), number + 1
            continue
        if match := _SECTION.match(line):
            found.append(Section(len(found), heading, start, number))
            heading, start = match.group(1), number + 1
    found.append(Section(len(found), heading, start, len(lines)))
    return found


def find_section(markdown: str, wanted: str | int) -> Section | None:
    """By index, or by heading (any case, surrounding spaces ignored)."""
    found = sections(markdown)
    if isinstance(wanted, int):
        return found[wanted] if 0 <= wanted < len(found) else None
    name = " ".join(wanted.split()).casefold()
    return next((s for s in found if " ".join(s.heading.split()).casefold() == name), None)


def replace_section(markdown: str, section: Section, content: str) -> str:
    lines = markdown.splitlines()
    body = ["", *content.strip("\n").splitlines(), ""] if content.strip() else [""]
    if section.index == 0 and section.start == 0:
        body = body[1:]  # no title line to keep apart from
    return "\n".join([*lines[: section.start], *body, *lines[section.end :]]).rstrip("\n") + "\n"


def section_text(markdown: str, section: Section) -> str:
    return "\n".join(markdown.splitlines()[section.start : section.end])
