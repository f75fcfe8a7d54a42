from __future__ import annotations

from pathlib import Path

from app.runs.run_index import RunIndex


def test_count_reads_no_more_rows_than_asked_for(tmp_path: Path) -> None:
    index = RunIndex(tmp_path)
    with index.batch():
        for number in range(30):
            index.upsert(f"run-{number}", number, "queued" if number < 25 else "completed", None)
    assert index.count("queued") == 25
    assert index.count("queued", up_to=10) == 10
    assert index.count("queued", up_to=100) == 25
    assert index.count("completed", up_to=10) == 5
    assert index.count("failed") == 0
