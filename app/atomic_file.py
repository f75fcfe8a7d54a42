"""Crash-safe file writes for every layer: readers see the old file or the new one, never half.

A durable write is temp file, fsync, `os.replace`, fsync of the folder; several files written
together share the one folder fsync.  A write that need not survive power loss (progress)
skips both fsyncs but is still atomic for readers.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Mapping
from pathlib import Path

import orjson

TEMP_SUFFIX = ".tmp"
# Run folders are meant to be read by people: files get the umask's mode, as `open` would give.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
_counter = itertools.count()


def fsync_dir(directory: Path | str) -> None:
    """Make a directory entry change (create, rename, unlink) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new(path: str, data: bytes, fsync: bool) -> None:
    """Create `path`, which must not exist yet, holding `data`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def stage(folder: str, name: str, data: bytes, durable: bool) -> str:
    """Write `data` to a temp file beside `folder/name` and return its path; the caller renames it."""
    # A name unique to this process and write: cheaper than mkstemp's random probing.
    temp = f"{folder}/.{name}.{os.getpid()}.{next(_counter)}{TEMP_SUFFIX}"
    try:
        write_new(temp, data, durable)
    except BaseException:
        discard(temp)
        raise
    return temp


def discard(temp: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)


def _replace(folder: str, name: str, data: bytes, durable: bool) -> None:
    temp = stage(folder, name, data, durable)
    try:
        os.replace(temp, f"{folder}/{name}")
    except BaseException:
        discard(temp)
        raise


def write_files(folder: Path | str, files: Mapping[str, bytes], durable: bool = True) -> None:
    """Replace several files of one folder, each atomically, with one folder fsync at the end."""
    folder = str(folder)
    for name, data in files.items():
        _replace(folder, name, data, durable)
    if durable:
        fsync_dir(folder)


def write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    write_files(path.parent, {path.name: data}, durable)


def json_bytes(value: object) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def write_json(path: Path, value: object, durable: bool = True) -> None:
    write_bytes(path, json_bytes(value), durable)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def sweep_temp_files(directory: Path, older_than_s: float = 60.0) -> int:
    """Remove temp files a crashed writer left behind; young ones may still be in use."""
    removed = 0
    cutoff = time.time() - older_than_s
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(directory):
            if not (entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)):
                continue
            with contextlib.suppress(FileNotFoundError):
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
    return removed
