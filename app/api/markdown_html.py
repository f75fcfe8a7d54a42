"""Markdown answers rendered to safe HTML for browsers: raw HTML off, citations linked."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

# "commonmark" with html=False: a document cannot inject <script> or any other tag.
_renderer = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_CITATION = re.compile(r"\[(D?\d+)\]")


def answer_html(markdown: str) -> str:
    html = _renderer.render(markdown)
    return _CITATION.sub(r'<a class="cite" href="#evidence-\1">[\1]</a>', html)
