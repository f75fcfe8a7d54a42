"""Which evidence an answer cites, and from which sentence: recorded in the context bundle."""

from __future__ import annotations

from typing import Any

from app.modules.writers.evidence import cited_labels


def explain_citations(bundle: dict[str, Any], markdown: str) -> None:
    """Mark each passage and SQL result cited or not, list the answer's citing lines, and name
    the passages that were considered but not cited (Sources in final.md lists only the cited)."""
    answer = markdown.split("\n## Sources", 1)[0]
    lines = [line.strip().removeprefix("- ").strip() for line in answer.splitlines()]
    citing = [{"sentence": line, "cites": sorted(cited_labels(line))} for line in lines if cited_labels(line)]
    cited = {label for entry in citing for label in entry["cites"]}
    for passage in bundle.get("passages", []):
        passage["cited"] = str(passage.get("id")) in cited
    sql = bundle.get("sql")
    if isinstance(sql, dict):
        for query in sql.get("queries", []):
            query["cited"] = query.get("label") in cited
    bundle["citations"] = citing
    bundle["also_considered"] = [p.get("id") for p in bundle.get("passages", []) if not p["cited"]]
