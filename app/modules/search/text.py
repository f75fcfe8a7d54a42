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
    does do did there what's whats kind kinds type types way ways get got getting sit happen
    happened big bigger biggest small smaller smallest large larger largest high higher highest
    compare compared comparison come came per every long far apart often soon""".split()
)
# Past forms a question uses ("led by", "paid for") that a light stem cannot bring back.
IRREGULAR = {
    "led": "lead",
    "paid": "pay",
    "bought": "buy",
    "sold": "sell",
    "spent": "spend",
    "built": "build",
}
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
_PART_SPLIT = re.compile(r"\?\s+|;\s*|\s+and\s+(?=(?:what|how|when|where|which|who|why)\b)", re.I)
# "Which is larger, A or B?", "Compare A with B", "How do A and B compare?": two things asked.
_COMPARISONS = (
    re.compile(r"^\s*which\b[^,]*,\s*(?P<a>.+?)\s+or\s+(?P<b>.+?)[\s?.]*$", re.I),
    re.compile(r"^\s*compare\s+(?P<a>.+?)\s+(?:with|to|and|against)\s+(?P<b>.+?)[\s?.]*$", re.I),
    re.compile(r"^\s*how (?:do|does)\s+(?P<a>.+?)\s+and\s+(?P<b>.+?)\s+compare\b[\s?.]*$", re.I),
)
# "What grants exist for heat pumps and for insulation?": the same question about two things.
_DISTRIBUTED = re.compile(
    r"^(?P<head>.+?\b(?P<prep>for|of|in|on|about|to))\s+(?P<a>.+?)\s+and\s+(?P=prep)\s+(?P<b>.+?)[\s?.]*$",
    re.I,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def normalise(word: str) -> str:
    """A light stem so that 'targets' finds 'target' and 'funding' finds 'funded' less often."""
    word = word.lower().strip("'-")
    word = IRREGULAR.get(word, word)
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2 and not word.endswith("ss"):
            return word[: -len(suffix)] + keep
    return word


def words(text: str) -> list[str]:
    return [normalise(match.group()) for match in _WORD.finditer(text)]


def keywords(text: str) -> list[str]:
    """Content words of a question, in order, without repeats."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(text):
        word = normalise(match.group())
        # Both forms: "does" is a stopword, its light stem "doe" is not.
        if word not in STOPWORDS and match.group().lower() not in STOPWORDS and len(word) > 1:
            seen.setdefault(word, None)
    return list(seen)


def question_parts(question: str) -> list[str]:
    """The separate things a question asks ('What are X? How is Y funded?' -> two parts; 'Which
    is larger, X or Y?' -> X and Y)."""
    for comparison in _COMPARISONS:
        match = comparison.match(question)
        if match and keywords(match["a"]) and keywords(match["b"]):
            return [match["a"].strip(" ,"), match["b"].strip(" ,")]
    distributed = _DISTRIBUTED.match(question)
    if distributed and keywords(distributed["a"]) and keywords(distributed["b"]):
        return [f"{distributed['head']} {distributed['a']}", f"{distributed['head']} {distributed['b']}"]
    parts = [part.strip(" ?.;,") for part in _PART_SPLIT.split(question.strip())]
    parts = [part for part in parts if keywords(part)]
    return parts or [question.strip()]


def sentences(text: str) -> list[str]:
    flat = " ".join(line.strip("-*> \t") for line in text.splitlines() if line.strip())
    return [sentence.strip() for sentence in _SENTENCE.split(flat) if sentence.strip()]
