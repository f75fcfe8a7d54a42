from __future__ import annotations

from app.modules.documents.passages import MAX_PASSAGE_LINES, split_passages

DOC = """# Strategy

Intro text.

## Targets

Cut emissions by half.

### Transport

More trains.

```
# not a heading inside code
```

## Funding

Money from bonds.
"""


def test_passages_follow_headings_with_their_path_and_lines() -> None:
    passages = split_passages("strategy.md", DOC)
    assert [(p.heading, p.start_line, p.end_line) for p in passages] == [
        ("Strategy", 1, 4),
        ("Strategy > Targets", 5, 8),
        ("Strategy > Targets > Transport", 9, 16),
        ("Strategy > Funding", 17, 19),
    ]
    assert passages[2].text.startswith("More trains.") and "# not a heading" in passages[2].text
    assert all(p.file == "strategy.md" for p in passages)


def test_long_sections_are_cut_into_several_passages() -> None:
    text = "# Long\n" + "\n".join(f"line {i}" for i in range(MAX_PASSAGE_LINES * 2 + 5))
    passages = split_passages("long.md", text)
    assert len(passages) == 3
    assert all(p.heading == "Long" for p in passages)
    assert passages[1].start_line == passages[0].end_line + 1


def test_text_without_headings_is_one_passage_named_after_the_file() -> None:
    [passage] = split_passages("plain.md", "Just words.\nMore words.")
    assert (passage.heading, passage.start_line, passage.end_line) == ("plain.md", 1, 2)
