"""Question and text analysis: keywords, question parts and sentences, shared by search and writers."""

from __future__ import annotations

import re

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    me more most my no nor not now of off on once only or other our ours out over own same she
    should so some such than that the their theirs them then there these they this those through
    to too under until up very was we were what when where which while who whom why will with
    would you your yours main key major tell give list describe explain show please much many
    does do did there what's whats kind kinds type types way ways""".split()
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
_PART_SPLIT = re.compile(r"\?\s+|;\s*|\s+and\s+(?=(?:what|how|when|where|which|who|why)\b)", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def normalise(word: str) -> str:
    """A light stem so that 'targets' finds 'target' and 'funding' finds 'funded' less often."""
    word = word.lower().strip("'-")
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2 and not word.endswith("ss"):
            return word[: -len(suffix)] + keep
    return word


def words(text: str) -> list[str]:
    return [normalise(match.group()) for match in _WORD.finditer(text)]


def keywords(text: str) -> list[str]:
    """Content words of a question, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word not in STOPWORDS and len(word) > 1:
            seen.setdefault(word, None)
    return list(seen)


def question_parts(question: str) -> list[str]:
    """The separate things a question asks ('What are X? How is Y funded?' -> two parts)."""
    parts = [part.strip(" ?.;,") for part in _PART_SPLIT.split(question.strip())]
    parts = [part for part in parts if keywords(part)]
    return parts or [question.strip()]


def sentences(text: str) -> list[str]:
    flat = " ".join(line.strip("-*> \t") for line in text.splitlines() if line.strip())
    return [sentence.strip() for sentence in _SENTENCE.split(flat) if sentence.strip()]
