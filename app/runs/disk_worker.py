"""Disk worker processes: a batch's file work (stage, sync, rename, sync) away from the server's CPU.

A server keeps its threads on one CPU (see cpu_placement), and under load that CPU is the
limit, while the kernel's share of a batch (new inodes, renames, the syncs) is a third of a
run's cost.  A writer thread therefore hands its batch to a child process that runs on the
other CPUs: one pipe round trip per batch, where doing the file work itself would pass the
GIL back and forth once per system call.

The worker changes nothing that a crash could see differently: it runs `write_batch`, the
same steps in the same order, and the writer thread answers its callers only after the
worker's reply, that is after the second sync.  A worker whose server died stops before
renaming anything (the server's run locks died with it), and one that dies itself fails its
batch: every published run folder of the batch is taken back, so no caller is told of a
failure for a run that exists.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import app
from app.runs.errors import storage_failure
from app.runs.store_writer import Change, syncfs_fd, write_batch

_LENGTH = struct.Struct("!I")
# folder, files, durable, publish
Item = tuple[str, dict[str, bytes], bool, str | None]
# errno, message, and the paths of the OSError that failed a change
Failure = tuple[int, str, str | None, str | None]
# published, and why the change failed
Outcome = tuple[bool, Failure | None]


class DiskWorker:
    """One child process, used by one writer thread at a time."""

    def __init__(self, root: str) -> None:
        source = str(Path(app.__file__).resolve().parents[1])
        path = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "app.runs.disk_worker", root],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
            close_fds=True,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._to: IO[bytes] = self._process.stdin
        self._from: IO[bytes] = self._process.stdout

    @property
    def pid(self) -> int:
        return self._process.pid

    def write_batch(self, changes: list[Change]) -> dict[Change, BaseException]:
        """As store_writer.write_batch, in the worker; OSError (EIO) if the worker is gone."""
        items: list[Item] = [(c.folder, dict(c.files), c.durable, c.publish) for c in changes]
        try:
            _send(self._to, (_avoided_cpu(), items))
            outcomes: list[Outcome] = _receive(self._from)
        except (OSError, EOFError) as exc:
            raise OSError(errno.EIO, f"the disk worker process stopped ({exc})") from exc
        failed: dict[Change, BaseException] = {}
        for change, (published, error) in zip(changes, outcomes, strict=True):
            change.published = published
            if error is not None:
                number, message, path, other_path = error
                failed[change] = storage_failure(OSError(number, message, path, None, other_path))
        return failed

    def close(self) -> None:
        """End the worker; it finishes the batch in hand first."""
        for stream in (self._to, self._from):
            with contextlib.suppress(OSError):
                stream.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _avoided_cpu() -> int | None:
    """The CPU the calling thread is pinned to, if it is pinned to one."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    return next(iter(cpus)) if len(cpus) == 1 else None


def _send(stream: IO[bytes], message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("the disk worker closed its pipe")
    (length,) = _LENGTH.unpack(head)
    data = stream.read(length)
    if len(data) < length:
        raise EOFError("the disk worker closed its pipe mid-message")
    return pickle.loads(data)


def _place(avoided: int | None) -> None:
    """Run on every CPU but the one the server's threads are pinned to (if another is allowed)."""
    if not hasattr(os, "sched_setaffinity"):
        return
    every = set(range(os.cpu_count() or 1))
    others = every - {avoided} if avoided is not None else every
    with contextlib.suppress(OSError):  # a cpuset without those CPUs: stay where the server is
        os.sched_setaffinity(0, others or every)


def serve(root: str, requests: IO[bytes], replies: IO[bytes]) -> None:
    """The worker's loop: one batch per message until the server closes the pipe."""
    # Ctrl+C reaches the whole process group; the worker finishes the batch in hand and ends
    # when the server, shutting down gracefully, closes the pipe (or dies, which closes it).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    server = os.getppid()
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    placed: object = object()
    while True:
        try:
            avoided, items = _receive(requests)
        except EOFError:
            return
        if os.getppid() != server:
            return
        if avoided != placed:
            _place(avoided)
            placed = avoided

        def sync() -> None:
            if os.getppid() != server:  # the server died: its callers and run locks are gone
                os._exit(0)
            syncfs_fd(root_fd)

        changes = [Change(folder, files, durable, publish) for folder, files, durable, publish in items]
        failed = write_batch(changes, sync)
        _send(replies, [(change.published, _error(failed.get(change))) for change in changes])


def _error(exc: BaseException | None) -> Failure | None:
    if exc is None:
        return None
    cause = exc if isinstance(exc, OSError) else exc.__cause__
    if isinstance(cause, OSError) and cause.errno is not None:
        paths = [None if path is None else os.fsdecode(path) for path in (cause.filename, cause.filename2)]
        return cause.errno, cause.strerror or str(cause), paths[0], paths[1]
    return errno.EIO, str(exc), None, None  # what a write that failed for an unknown reason is


if __name__ == "__main__":
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)
