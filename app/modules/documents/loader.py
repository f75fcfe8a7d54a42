"""Loading `*.md` files from a documents folder without ever reading outside it."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class MarkdownFile:
    relative_path: str
    mtime_ns: int
    size: int
    path: str  # its real location


def list_markdown(folder: Path) -> list[MarkdownFile]:
    """Every `*.md` below `folder` whose real location is inside it (symbolic links leading
    out are skipped), in a stable order: each folder's files by name, then its subfolders by
    name; hidden files and folders, and files over MAX_FILE_BYTES, are skipped too."""
    base = str(folder.resolve())
    found: list[MarkdownFile] = []
    _list_into(found, base, base, "")
    return found


def _list_into(found: list[MarkdownFile], base: str, directory: str, prefix: str) -> None:
    # Every run lists its documents folder: one stat per file, and realpath only for a link
    # (a folder reached without following links is its own real path below the real base).
    try:
        with os.scandir(directory) as listing:
            entries = sorted((entry for entry in listing if not entry.name.startswith(".")), key=_name)
    except OSError:  # vanished or unreadable meanwhile: nothing to list there
        return
    subfolders = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            subfolders.append(entry)
            continue
        if not entry.name.endswith(".md"):
            continue
        real = entry.path
        try:
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
                if not real.startswith(base.rstrip("/") + "/"):
                    continue
            info = os.stat(real)
        except OSError:  # a dangling link, a loop, a file removed meanwhile
            continue
        if stat.S_ISREG(info.st_mode) and info.st_size <= MAX_FILE_BYTES:
            found.append(MarkdownFile(prefix + entry.name, info.st_mtime_ns, info.st_size, real))
    for entry in subfolders:
        _list_into(found, base, entry.path, f"{prefix}{entry.name}/")


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def read_markdown(file: MarkdownFile) -> str:
    return Path(file.path).read_bytes().decode("utf-8", errors="replace")
