"""Feedback on an earlier answer, as a regenerated run carries it: what to leave out, what to
focus on.  The extractive writer follows these two; an LLM writer gets the words as they are."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.modules.search.text import keywords

_CLAUSE = re.compile(
    # A clause ends at ; , a line end, or a full stop followed by a space (not the one in a.md).
    r"\b(?P<verb>leave out|omit|exclude|drop|focus on|focus more on|more about)\s+"
    r"(?P<what>.+?)(?=[;,\n]|\.(?:\s|$)|$)",
    re.IGNORECASE,
)
_LEAVE_OUT = ("leave out", "omit", "exclude", "drop")


@dataclass(frozen=True)
class Feedback:
    text: str
    leave_out: tuple[str, ...] = ()  # phrases: a source file that names one, a sentence that says one
    focus_on: tuple[str, ...] = ()  # content words to search and prefer

    def leaves_out_file(self, file: str) -> bool:
        name = file.lower()
        return any(phrase in name for phrase in self.leave_out)

    def leaves_out_sentence(self, sentence: str) -> bool:
        said = set(keywords(sentence))
        return any(set(keywords(phrase)) <= said for phrase in self.leave_out if keywords(phrase))


def parse_feedback(text: str | None) -> Feedback | None:
    if not text or not text.strip():
        return None
    leave_out: list[str] = []
    focus_on: list[str] = []
    for match in _CLAUSE.finditer(text):
        what = match.group("what").strip().lower().removeprefix("the ").strip()
        if match.group("verb").lower() in _LEAVE_OUT:
            leave_out.append(what)
        else:
            focus_on += [word for word in keywords(what) if word not in focus_on]
    return Feedback(text.strip(), tuple(leave_out), tuple(focus_on))
