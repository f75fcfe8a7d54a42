"""Loading `*.md` files from a documents folder without ever reading outside it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class MarkdownFile:
    relative_path: str
    mtime_ns: int
    size: int
    path: Path


def list_markdown(folder: Path) -> list[MarkdownFile]:
    """Every `*.md` below `folder` whose real location is inside it (symbolic links leading
    out are skipped), in a stable order; files over MAX_FILE_BYTES are skipped too."""
    base = folder.resolve()
    found = []
    for directory, subdirs, names in os.walk(base, followlinks=False):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(names):
            if not name.endswith(".md") or name.startswith("."):
                continue
            path = Path(directory) / name
            real = path.resolve()
            if not real.is_relative_to(base) or not real.is_file():
                continue
            stat = real.stat()
            if stat.st_size > MAX_FILE_BYTES:
                continue
            found.append(
                MarkdownFile(path.relative_to(base).as_posix(), stat.st_mtime_ns, stat.st_size, real)
            )
    return found


def read_markdown(file: MarkdownFile) -> str:
    return file.path.read_bytes().decode("utf-8", errors="replace")
