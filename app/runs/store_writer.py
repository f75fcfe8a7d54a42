"""The store's writer threads: file changes from every thread, made durable a batch at a time.

Group commit.  Callers hand over a `Change` (files replacing others in one folder, or a new run
folder to publish) and wait; a writer takes every change that is waiting, writes their temp
files, makes them all durable with one sync, renames them into place, and makes the renames
durable with a second sync.  Two syncs serve the whole batch however many runs it holds, and
two threads doing the file work (one stages while the other syncs) spare the rest the GIL
hand-offs that dominated a run's CPU.  The index rows of a batch's new states go into one
index transaction; a change made at once (a claim) leaves its row to the next batch's.  With
disk workers, a child process does a batch's file work on another CPU (see disk_worker).

On Linux a sync is `syncfs(2)` on the output root's file system (it waits for the data and
the metadata, and reports write-back errors since Linux 5.8); elsewhere each temp file and each
folder is fsynced, which is what `atomic_file` does for a single write.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import shutil
import sys
import threading
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from app import atomic_file
from app.runs.errors import storage_failure
from app.runs.regular_files import read_regular

if TYPE_CHECKING:
    from app.runs.disk_worker import DiskWorker

logger = logging.getLogger("runlane.store")

T = TypeVar("T")
# run_id, created_ns, status, finished_ns, key_id, webhook_due_ns, parent_run_id
IndexRow = tuple[str, int, str, int | None, str | None, int | None, str | None]

_MAX_BATCH = 256
# How long index rows alone wait for a change to carry them (a fast run's end follows its
# claim by about a millisecond).
ROWS_WAIT_S = 0.002


def _libc_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    function: Callable[[int], int] | None = getattr(libc, "syncfs", None)
    return function


_LIBC_SYNCFS = _libc_syncfs()


def syncfs(root: str) -> None:
    """Flush the file system holding `root`, data and metadata, and wait for it."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        syncfs_fd(fd)
    finally:
        os.close(fd)


def syncfs_fd(fd: int) -> None:
    """`syncfs` through a folder already open."""
    assert _LIBC_SYNCFS is not None
    if _LIBC_SYNCFS(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


FileSystemSync = Callable[[str], None]
DEFAULT_SYNC: FileSystemSync | None = syncfs if _LIBC_SYNCFS is not None else None


class Change:
    """Files written in one folder, each replacing its namesake atomically.

    With `publish`, `folder` is a fresh private staging folder: the files go straight in and the
    folder is renamed to `publish`, which fails if that folder exists (the run-id uniqueness check).
    """

    __slots__ = ("_temps", "durable", "files", "folder", "index_row", "publish", "published")

    def __init__(
        self,
        folder: str,
        files: Mapping[str, bytes],
        durable: bool = True,
        publish: str | None = None,
        index_row: IndexRow | None = None,
    ) -> None:
        self.folder = folder
        self.files = files
        self.durable = durable
        self.publish = publish
        self.index_row = index_row
        self.published = False
        self._temps: list[tuple[str, str]] = []

    def stage(self, fsync: bool) -> None:
        if self.publish is not None:
            os.mkdir(self.folder)
            for name, data in self.files.items():
                atomic_file.write_new(f"{self.folder}/{name}", data, fsync)
            return
        for name, data in self.files.items():
            temp = atomic_file.stage(self.folder, name, data, fsync)
            self._temps.append((temp, f"{self.folder}/{name}"))

    def put_in_place(self) -> None:
        if self.publish is None:
            while self._temps:
                temp, target = self._temps[0]
                os.replace(temp, target)
                self._temps.pop(0)
            self.published = True
            return
        try:
            # rename(2) onto an existing, non-empty folder fails: the atomic, cross-process
            # uniqueness check for run ids.
            os.rename(self.folder, self.publish)
        except OSError:
            if not os.path.exists(self.publish):
                raise
            self.clean_up()  # someone else has this id: the caller answers the conflict
        else:
            self.published = True

    def folders(self) -> list[str]:
        """The folders whose entries this change altered, once it is in place."""
        if self.publish is None:
            return [self.folder]
        return [self.publish, os.path.dirname(self.publish)]

    def clean_up(self) -> None:
        """Remove what a failed change left: temp files, or the staging folder."""
        for temp, _ in self._temps:
            atomic_file.discard(temp)
        self._temps.clear()
        if self.publish is not None and not self.published:
            shutil.rmtree(self.folder, ignore_errors=True)

    def take_back(self) -> None:
        """A published run folder that could not be made durable is removed, so that the error
        the caller answers is true (no run was created)."""
        if self.publish is not None and self.published:
            shutil.rmtree(self.publish, ignore_errors=True)
            self.published = False


Prepared = tuple[Change | None, Callable[[Change | None], T]]


class _Job(Generic[T]):
    __slots__ = ("change", "complete", "future", "prepare")

    def __init__(self, prepare: Callable[[], Prepared[T]]) -> None:
        self.prepare = prepare
        self.future: Future[T] = Future()
        self.change: Change | None = None
        self.complete: Callable[[Change | None], T] | None = None


class StoreWriter:
    """Writer threads, started on demand, that commit changes in batches."""

    def __init__(
        self,
        root: str,
        on_indexed: Callable[[list[IndexRow]], None],
        *,
        sync: FileSystemSync | None = DEFAULT_SYNC,
        threads: int = 2,
        processes: int = 0,
        idle_exit_s: float = 5.0,
        rows_wait_s: float = ROWS_WAIT_S,
    ) -> None:
        """`sync` flushes a whole file system; without one, every file and folder is fsynced.
        A second thread takes the next batch while the first waits for its syncs, so a change
        never queues behind a whole batch.  With `processes`, up to that many disk worker
        processes do a batch's file work (see disk_worker)."""
        self._root = root
        self._on_indexed = on_indexed
        self._sync = sync
        # The default sync goes through the root held open (two system calls fewer per sync),
        # closed with the writer or when it is collected.
        self._root_fd: int | None = None
        self._close_root: Callable[[], object] | None = None
        if sync is syncfs:
            self._root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            self._close_root = weakref.finalize(self, _close_quietly, self._root_fd)
        self._max_threads = threads
        self._sync_now: Callable[[], None] | None = None
        if self._root_fd is not None:
            self._sync_now = functools.partial(syncfs_fd, self._root_fd)
        elif sync is not None:
            self._sync_now = functools.partial(sync, root)
        # Disk workers only where one syncfs covers every file: a worker cannot fsync folders
        # it did not stage for the caller.
        self._max_workers = processes if sync is syncfs else 0
        self._workers_started = 0
        self._free_workers: list[DiskWorker] = []
        self._idle_exit_s = idle_exit_s
        self._rows_wait_s = rows_wait_s
        self._queue: list[_Job[Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._closed = False
        # Index rows of changes made at once, for the next batch's index transaction; batches
        # taken but not yet indexed, which will carry them.
        self._deferred_rows: list[IndexRow] = []
        self._unindexed_batches = 0
        self._index_lock = threading.Lock()

    @property
    def syncs_filesystem(self) -> bool:
        return self._sync is not None

    def worker_pids(self) -> list[int]:
        """The disk worker processes waiting for a batch."""
        with self._lock:
            return [worker.pid for worker in self._free_workers]

    def submit(self, prepare: Callable[[], Prepared[T]]) -> Future[T]:
        """Run `prepare` on a writer thread; commit the change it returns with the next batch;
        the future resolves to what its completion returns once the change is durable."""
        return self._submit(prepare, inline=threading.current_thread() in self._threads)

    def _submit(self, prepare: Callable[[], Prepared[T]], inline: bool, at_once: bool = False) -> Future[T]:
        job: _Job[T] = _Job(prepare)
        if inline:
            self._commit([job], at_once=at_once)
            return job.future
        with self._lock:
            if self._closed:
                raise RuntimeError("the store writer is closed")
            self._queue.append(job)
            if self._idle:
                self._wake.notify()
            elif len(self._threads) < self._max_threads:
                thread = threading.Thread(target=self._run, name="runlane-writer", daemon=True)
                self._threads.add(thread)
                thread.start()
        return job.future

    def write(self, change: Change, at_once: bool = False) -> bool:
        """Commit one change and wait; False if a new run folder's id was taken meanwhile.

        `at_once` (a claim) makes a change that need not be durable on the calling thread: it
        has no sync to share, and waiting for a batch's syncs would hold a pipeline slot for
        nothing.  Progress reports wait for the next batch on purpose: that pause is what keeps
        a busy pipeline from taking the GIL from requests.  A completion that writes again is
        made at once too, rather than wait on itself.

        The index row of a change made at once goes with the next batch's index transaction:
        on its own, a transaction cost more CPU than the rest of a claim."""
        assert not (at_once and change.durable), "a durable change shares its batch's syncs"
        inline = at_once or threading.current_thread() in self._threads
        return self._submit(lambda: (change, _was_published), inline, at_once).result()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._threads)
            self._wake.notify_all()
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=30)
        with self._lock:
            workers, self._free_workers = self._free_workers, []
        for worker in workers:
            worker.close()
        if self._close_root is not None and not any(thread.is_alive() for thread in threads):
            self._close_root()  # a thread still syncing keeps the folder open until collection

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            with self._lock:
                # Only a whole idle period ends the thread: a wake-up whose job the other writer
                # took first is no reason to leave (under load that churned threads by the dozen).
                while not self._queue and not self._closed:
                    self._idle += 1
                    woken = self._wake.wait(self._idle_exit_s)
                    self._idle -= 1
                    if not woken:
                        break
                if not self._queue:
                    self._threads.discard(me)  # idle (or closed): the next submit starts another
                    return
                batch, self._queue = self._queue[:_MAX_BATCH], self._queue[_MAX_BATCH:]
                self._unindexed_batches += 1
                if not self._closed and all(job.prepare is _nothing_to_write for job in batch):
                    batch += self._carrier()
            self._commit(batch, counted=True)

    def _carrier(self) -> list[_Job[Any]]:
        """Changes that come within moments to carry a batch of deferred index rows alone.
        Called with the lock held; counted idle meanwhile, so that a submit wakes it."""
        self._idle += 1
        self._wake.wait(self._rows_wait_s)
        self._idle -= 1
        carriers, self._queue = self._queue[: _MAX_BATCH - 1], self._queue[_MAX_BATCH - 1 :]
        return carriers

    def _commit(self, batch: list[_Job[Any]], at_once: bool = False, counted: bool = False) -> None:
        try:
            self._commit_batch(batch, at_once, counted)
        except Exception as exc:  # the thread boundary: no caller may wait forever
            logger.exception("a batch of run changes failed")
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)

    def _commit_batch(self, batch: list[_Job[Any]], at_once: bool = False, counted: bool = False) -> None:
        rows: list[IndexRow] = []
        try:
            live = [job for job in batch if self._prepare(job)]
            changes = [job.change for job in live if job.change is not None]
            failed = self._write_batch(changes)
            written = [c for c in changes if c.published and c not in failed]
            rows = [c.index_row for c in written if c.index_row is not None]
        finally:
            if at_once:
                self._defer(rows)
            else:
                self._index(rows, counted)
        for job in live:
            if job.change is not None and job.change in failed:
                job.future.set_exception(failed[job.change])
                continue
            assert job.complete is not None
            try:
                job.future.set_result(job.complete(job.change))
            except Exception as exc:  # noqa: BLE001 - the thread boundary: handed to the caller
                job.future.set_exception(exc)

    def _index(self, rows: list[IndexRow], counted: bool) -> None:
        """Index a batch's rows after any deferred ones, in one transaction.  One thread at a
        time, so that a run's rows land in the order its changes were made."""
        with self._index_lock:
            with self._lock:
                if counted:
                    self._unindexed_batches -= 1
                rows, self._deferred_rows = self._deferred_rows + rows, []
            if not rows:
                return
            try:
                self._on_indexed(rows)
            except Exception:  # the thread boundary: folders are the truth, upkeep re-indexes
                logger.exception("runs written but not indexed yet")

    def _defer(self, rows: list[IndexRow]) -> None:
        """Leave rows to the next batch; with none coming, queue an empty one to carry them."""
        if not rows:
            return
        with self._lock:
            self._deferred_rows.extend(rows)
            if not self._closed and (self._unindexed_batches > 0 or self._queue):
                return
        try:
            self._submit(_nothing_to_write, inline=False)
        except RuntimeError:  # closed: no batch will come
            self._index([], counted=False)

    @staticmethod
    def _prepare(job: _Job[Any]) -> bool:
        try:
            job.change, job.complete = job.prepare()
        except Exception as exc:  # noqa: BLE001 - the thread boundary: handed to the caller
            job.future.set_exception(exc)
            return False
        return True

    def _write_batch(self, changes: list[Change]) -> dict[Change, BaseException]:
        """Stage, sync, put in place, sync: in a disk worker process when one is free."""
        worker = self._take_worker() if changes else None
        if worker is None:
            return write_batch(changes, self._sync_now)
        try:
            failed = worker.write_batch(changes)
        except OSError as exc:  # the worker died: no change of the batch is reported done
            self._drop_worker(worker)
            logger.exception("a disk worker process failed; its batch failed with it")
            return {change: undone(change, exc) for change in changes}
        self._give_worker(worker)
        return failed

    def _take_worker(self) -> DiskWorker | None:
        with self._lock:
            if self._free_workers:
                return self._free_workers.pop()
            if self._workers_started >= self._max_workers or self._closed:
                return None
            self._workers_started += 1
        from app.runs.disk_worker import DiskWorker  # it imports this module

        try:
            return DiskWorker(self._root)
        except OSError:
            logger.exception("a disk worker process could not start: the writer thread writes")
            with self._lock:
                self._workers_started -= 1
            return None

    def _give_worker(self, worker: DiskWorker) -> None:
        with self._lock:
            if not self._closed:
                self._free_workers.append(worker)
                return
        worker.close()

    def _drop_worker(self, worker: DiskWorker) -> None:
        worker.close()
        with self._lock:
            self._workers_started -= 1


def write_batch(changes: list[Change], sync: Callable[[], None] | None) -> dict[Change, BaseException]:
    """Stage, sync, put in place, sync; returns the changes that failed, with why.  Without a
    file-system `sync`, every durable file is fsynced as it is staged and every folder after."""
    failed: dict[Change, BaseException] = {}
    fsync_each = sync is None
    for change in changes:
        try:
            change.stage(fsync=fsync_each and change.durable)
        except OSError as exc:
            change.clean_up()
            failed[change] = storage_failure(exc)
    staged = [change for change in changes if change not in failed]
    durable = [change for change in staged if change.durable]
    if durable and sync is not None:
        _sync_or_fail(durable, failed, sync)
    for change in staged:
        if change in failed:
            continue
        try:
            change.put_in_place()
        except OSError as exc:
            change.clean_up()
            failed[change] = storage_failure(exc)
    durable = [change for change in durable if change not in failed]
    if durable:
        _sync_or_fail(durable, failed, sync)
    return failed


def _sync_or_fail(
    changes: list[Change], failed: dict[Change, BaseException], sync: Callable[[], None] | None
) -> None:
    try:
        if sync is None:
            for folder in {folder for change in changes for folder in change.folders()}:
                atomic_file.fsync_dir(folder)
        else:
            sync()
    except OSError as exc:
        for change in changes:
            change.clean_up()
            change.take_back()
            failed[change] = storage_failure(exc)


def undone(change: Change, exc: Exception) -> Exception:
    """A change whose worker died: a run folder it may have published is taken back, so that
    the caller's error is true (no run was created)."""
    change.published = change.publish is not None and _holds(change.publish, change.files)
    change.clean_up()
    change.take_back()
    return exc


def _holds(folder: str, files: Mapping[str, bytes]) -> bool:
    """Whether `folder` holds exactly these files' bytes (a run folder this change published,
    not another writer's of the same id)."""
    try:
        return all(read_regular(f"{folder}/{name}")[0] == data for name, data in files.items())
    except OSError:  # missing, or not a regular file (never waited on)
        return False


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _nothing_to_write() -> Prepared[bool]:
    return None, _was_published


def _was_published(change: Change | None) -> bool:
    return change is not None and change.published
