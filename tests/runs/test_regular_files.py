"""read_regular: a regular file's bytes, whole, whatever its size; anything else refused at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.runs.regular_files import NotARegularFileError, read_regular


@pytest.mark.parametrize("size", [0, 1, 4096, 4097, 4098, 8194, 100_000])
def test_a_regular_file_is_read_whole_at_any_size(tmp_path: Path, size: int) -> None:
    path = tmp_path / "file"
    data = os.urandom(size)
    path.write_bytes(data)
    read, st = read_regular(str(path))
    assert read == data
    assert st.st_size == size and st.st_ino == path.stat().st_ino


def test_a_fifo_in_a_files_place_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    with pytest.raises(NotARegularFileError):
        read_regular(str(path))
