from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import orjson
import pytest

from app import atomic_file


def test_readers_never_see_half_a_file_while_it_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    versions = [{"v": "a" * 200_000}, {"v": "b" * 10}]
    atomic_file.write_json(path, versions[0])
    stop = threading.Event()
    bad: list[bytes] = []

    def read_constantly() -> None:
        while not stop.is_set():
            data = path.read_bytes()
            try:
                if orjson.loads(data) not in versions:
                    bad.append(data[:50])
            except orjson.JSONDecodeError:
                bad.append(data[:50])

    reader = threading.Thread(target=read_constantly)
    reader.start()
    for i in range(200):
        atomic_file.write_json(path, versions[i % 2])
    stop.set()
    reader.join(10)
    assert bad == []


def test_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_file.write_bytes(path, b"old")
    with pytest.raises(TypeError):
        atomic_file.write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_written_files_honour_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "final.md"
    atomic_file.write_text(path, "# hi")
    assert path.stat().st_mode & 0o777 == atomic_file.FILE_MODE


def test_sweep_removes_only_stale_temp_files(tmp_path: Path) -> None:
    stale = tmp_path / ".api_state.json.abc.tmp"
    young = tmp_path / ".final.md.def.tmp"
    keep = tmp_path / "final.md"
    for path in (stale, young, keep):
        path.write_text("x")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(keep, (old, old))
    assert atomic_file.sweep_temp_files(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".final.md.def.tmp", "final.md"]
