from __future__ import annotations

from app.api.markdown_html import answer_html


def test_raw_html_is_escaped_and_citations_become_links() -> None:
    html = answer_html("# Answer\n\n- fact <script>alert(1)</script> [1]\n- row [D2]\n")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<a class="cite" href="#evidence-1">[1]</a>' in html
    assert '<a class="cite" href="#evidence-D2">[D2]</a>' in html


def test_tables_render() -> None:
    assert "<table>" in answer_html("| a | b |\n| --- | --- |\n| 1 | 2 |\n")
