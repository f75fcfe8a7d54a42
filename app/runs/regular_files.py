"""Reads that never block: only regular files are read (a FIFO or a device in a file's place is
refused at once instead of hanging the reader, the event loop included)."""

from __future__ import annotations

import os
import stat


class NotARegularFileError(OSError):
    """Something other than a regular file (a FIFO, a device, a folder) stands at the path."""


_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC


def read_regular(path: str) -> tuple[bytes, os.stat_result]:
    """The file's bytes and the stat of exactly those bytes, even if the file is replaced."""
    fd = os.open(path, _FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFileError(f"{path} is not a regular file")
        # A regular file reads short only at its end: when the first read returns less than it
        # asked for, there is no need for the second that would say so (a system call saved
        # on every state read).
        wanted = max(st.st_size, 4096) + 1
        chunks = [os.read(fd, wanted)]
        while len(chunks[-1]) == wanted:
            chunks.append(os.read(fd, wanted))
        return b"".join(chunks), st
    finally:
        os.close(fd)
