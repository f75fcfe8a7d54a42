from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from app.config import Settings
from app.runs.errors import StorageFullError
from app.runs.run_service import RunService
from app.runs.store_writer import DEFAULT_SYNC, Change, IndexRow, Prepared, StoreWriter
from tests.conftest import wait_until
from tests.support.pipelines import instant_pipeline


class Syncs:
    """A file-system sync that counts its calls and can be made to fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.failure: OSError | None = None

    def __call__(self, root: str) -> None:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        if DEFAULT_SYNC is not None:
            DEFAULT_SYNC(root)


@pytest.fixture
def syncs() -> Syncs:
    return Syncs()


@pytest.fixture
def writer(root: Path, indexed: list[IndexRow], syncs: Syncs) -> Iterator[StoreWriter]:
    writer = StoreWriter(str(root), indexed.extend, sync=syncs)
    yield writer
    writer.close()


def new_run(root: Path, run_id: str) -> Change:
    return Change(
        f"{root}/.staging/{run_id}",
        {"state.json": run_id.encode()},
        publish=f"{root}/{run_id}",
        index_row=(run_id, 1, "queued", None),
    )


def published(change: Change | None) -> bool:
    return change is not None and change.published


def held(
    gate: threading.Event, change: Change, taken: threading.Event | None = None
) -> Callable[[], Prepared[bool]]:
    """A job whose preparation waits for `gate`, keeping the writer busy meanwhile."""

    def prepare() -> Prepared[bool]:
        if taken is not None:
            taken.set()
        gate.wait(30)
        return change, published

    return prepare


def test_changes_waiting_together_share_two_syncs(root: Path, syncs: Syncs) -> None:
    writer = StoreWriter(str(root), lambda rows: None, sync=syncs, threads=1)
    gate, taken = threading.Event(), threading.Event()
    first = writer.submit(held(gate, new_run(root, "first"), taken))
    assert taken.wait(30)  # the writer took the first change alone
    waiting = [writer.submit(lambda i=i: (new_run(root, f"run-{i}"), published)) for i in range(10)]
    gate.set()
    assert first.result(30) is True
    assert all(future.result(30) for future in waiting)
    # One batch for the first run, one for the ten that queued behind it: two syncs each.
    assert syncs.calls == 4
    assert sorted(os.listdir(root)) == sorted([".staging", "first", *[f"run-{i}" for i in range(10)]])
    assert not os.listdir(root / ".staging")
    writer.close()


def test_a_change_never_waits_behind_a_batch_that_another_thread_holds(
    writer: StoreWriter, root: Path
) -> None:
    gate, taken = threading.Event(), threading.Event()
    held_back = writer.submit(held(gate, new_run(root, "slow"), taken))
    assert taken.wait(30)
    assert writer.write(new_run(root, "quick"))  # the second thread commits it meanwhile
    assert not held_back.done()
    gate.set()
    assert held_back.result(30) is True


def test_a_claim_is_made_at_once_while_a_batch_syncs_and_a_progress_report_waits_for_it(
    root: Path,
) -> None:
    """A claim never waits for other changes' syncs (it would hold its run's pipeline slot for
    nothing); a progress report waits for the next batch, which paces a busy pipeline."""
    syncing, release = threading.Event(), threading.Event()

    def slow_sync(path: str) -> None:
        syncing.set()
        release.wait(30)

    writer = StoreWriter(str(root), lambda rows: None, sync=slow_sync, threads=1)
    (root / "run").mkdir()
    (root / "other").mkdir()
    durable = writer.submit(lambda: (Change(f"{root}/run", {"final.md": b"# a\n"}), published))
    assert syncing.wait(30)
    claimed, reported = threading.Event(), threading.Event()

    def claim() -> None:
        writer.write(Change(f"{root}/run", {"state.json": b"running"}, durable=False), at_once=True)
        claimed.set()

    def report() -> None:
        writer.write(Change(f"{root}/other", {"state.json": b"progress"}, durable=False))
        reported.set()

    threading.Thread(target=claim, daemon=True).start()
    threading.Thread(target=report, daemon=True).start()
    try:
        assert claimed.wait(30)
        assert (root / "run" / "state.json").read_bytes() == b"running"
        assert not durable.done()
        assert not reported.is_set()
        assert not (root / "other" / "state.json").exists()
    finally:
        release.set()
    assert durable.result(30) is True
    assert reported.wait(30)
    assert (root / "other" / "state.json").read_bytes() == b"progress"
    assert (root / "run" / "final.md").read_bytes() == b"# a\n"
    writer.close()


def test_a_claims_index_row_goes_with_the_batch_in_flight_before_the_runs_next_row(root: Path) -> None:
    """A change made at once is not indexed in a transaction of its own: the batch being
    synced takes its row, ahead of its own rows, and a later change of that run comes after."""
    syncing, release = threading.Event(), threading.Event()

    def slow_sync(path: str) -> None:
        syncing.set()
        release.wait(30)

    calls: list[list[IndexRow]] = []
    writer = StoreWriter(str(root), calls.append, sync=slow_sync, threads=1)
    created = writer.submit(lambda: (new_run(root, "b"), published))
    assert syncing.wait(30)
    (root / "a").mkdir()
    claim = Change(
        f"{root}/a", {"state.json": b"running"}, durable=False, index_row=("a", 1, "running", None)
    )
    try:
        assert writer.write(claim, at_once=True)
        assert (root / "a" / "state.json").read_bytes() == b"running"
        assert calls == []
        finished = writer.submit(
            lambda: (
                Change(f"{root}/a", {"state.json": b"done"}, index_row=("a", 1, "completed", 2)),
                published,
            )
        )
    finally:
        release.set()
    assert created.result(30) and finished.result(30)
    writer.close()
    assert calls == [[("a", 1, "running", None), ("b", 1, "queued", None)], [("a", 1, "completed", 2)]]


def test_a_claims_index_row_is_written_soon_with_no_batch_to_carry_it(
    writer: StoreWriter, root: Path, indexed: list[IndexRow]
) -> None:
    (root / "a").mkdir()
    claim = Change(
        f"{root}/a", {"state.json": b"running"}, durable=False, index_row=("a", 1, "running", None)
    )
    assert writer.write(claim, at_once=True)
    wait_until(lambda: indexed == [("a", 1, "running", None)])


def test_a_claims_index_row_waits_a_moment_for_the_runs_next_change_to_carry_it(root: Path) -> None:
    calls: list[list[IndexRow]] = []
    writer = StoreWriter(str(root), calls.append, rows_wait_s=60.0)
    (root / "a").mkdir()
    claim = Change(
        f"{root}/a", {"state.json": b"running"}, durable=False, index_row=("a", 1, "running", None)
    )
    assert writer.write(claim, at_once=True)
    end = Change(f"{root}/a", {"state.json": b"done"}, index_row=("a", 1, "completed", 2))
    assert writer.write(end)  # wakes the waiting writer at once: this would otherwise take 60 s
    assert calls == [[("a", 1, "running", None), ("a", 1, "completed", 2)]]
    writer.close()


def test_a_claim_on_a_closed_writer_is_indexed_on_its_own_thread(root: Path) -> None:
    indexed: list[IndexRow] = []
    writer = StoreWriter(str(root), indexed.extend)
    writer.close()
    (root / "a").mkdir()
    claim = Change(
        f"{root}/a", {"state.json": b"running"}, durable=False, index_row=("a", 1, "running", None)
    )
    assert writer.write(claim, at_once=True)
    assert indexed == [("a", 1, "running", None)]


def test_published_runs_are_indexed_in_one_call_per_batch(
    writer: StoreWriter, root: Path, indexed: list[IndexRow]
) -> None:
    assert writer.write(new_run(root, "a"))
    assert indexed == [("a", 1, "queued", None)]


def test_files_replace_their_namesakes_and_leave_no_temp_files(writer: StoreWriter, root: Path) -> None:
    (root / "run").mkdir()
    (root / "run" / "state.json").write_text("old")
    assert writer.write(Change(f"{root}/run", {"final.md": b"# answer\n", "state.json": b"new"}))
    assert (root / "run" / "state.json").read_text() == "new"
    assert sorted(os.listdir(root / "run")) == ["final.md", "state.json"]


def test_a_taken_run_id_is_not_published_and_its_staging_is_removed(writer: StoreWriter, root: Path) -> None:
    assert writer.write(new_run(root, "same"))
    assert writer.write(new_run(root, "same")) is False
    assert (root / "same" / "state.json").read_text() == "same"
    assert not os.listdir(root / ".staging")


def test_a_failed_sync_fails_the_batch_and_takes_new_runs_back(
    writer: StoreWriter, root: Path, syncs: Syncs, indexed: list[IndexRow]
) -> None:
    syncs.failure = OSError(errno.EIO, "Input/output error")
    with pytest.raises(OSError, match="Input/output"):
        writer.write(new_run(root, "lost"))
    assert not (root / "lost").exists() and not os.listdir(root / ".staging")
    assert indexed == []


def test_a_full_disk_fails_only_the_change_that_did_not_fit(writer: StoreWriter, root: Path) -> None:
    gate, taken = threading.Event(), threading.Event()
    first = writer.submit(held(gate, new_run(root, "first"), taken))
    assert taken.wait(30)

    class DoesNotFit(Change):
        def stage(self, fsync: bool) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    full = writer.submit(lambda: (DoesNotFit(f"{root}/first", {"big": b"x"}), published))
    fits = writer.submit(lambda: (new_run(root, "fits"), published))
    gate.set()
    assert first.result(30) is True
    with pytest.raises(StorageFullError):
        full.result(30)
    assert fits.result(30) is True


def test_an_error_while_preparing_reaches_its_caller_only(writer: StoreWriter, root: Path) -> None:
    def broken() -> Prepared[bool]:
        raise ValueError("invalid request")

    failing = writer.submit(broken)
    with pytest.raises(ValueError, match="invalid request"):
        failing.result(30)
    assert writer.write(new_run(root, "after"))


def test_a_completion_may_write_again_without_waiting_on_itself(writer: StoreWriter, root: Path) -> None:
    def then_another(change: Change | None) -> bool:
        return writer.write(new_run(root, "second"))

    assert writer.submit(lambda: (new_run(root, "first"), then_another)).result(30) is True
    assert (root / "second" / "state.json").exists()


def test_without_a_file_system_sync_every_file_and_folder_is_fsynced(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    writer = StoreWriter(str(root), lambda rows: None, sync=None)
    assert not writer.syncs_filesystem
    try:
        assert writer.write(new_run(root, "run"))
    finally:
        writer.close()
    # The state file, then the published folder and its parent.
    assert len(synced) == 3


def test_the_thread_leaves_when_idle_and_comes_back_on_demand(root: Path) -> None:
    writer = StoreWriter(str(root), lambda rows: None, idle_exit_s=0.01)
    try:
        assert writer.write(new_run(root, "one"))
        wait_until(lambda: not any(t.name == "runlane-writer" for t in threading.enumerate()))
        assert writer.write(new_run(root, "two"))
    finally:
        writer.close()


def test_a_writer_thread_stays_while_work_keeps_coming(root: Path) -> None:
    writer = StoreWriter(str(root), lambda rows: None, idle_exit_s=60)
    seen: set[threading.Thread] = set()

    def prepare(name: str) -> Prepared[bool]:
        seen.add(threading.current_thread())
        return new_run(root, name), published

    def client(number: int) -> None:
        for turn in range(150):
            name = f"c{number}-{turn}"
            writer.submit(lambda name=name: prepare(name)).result(30)

    clients = [threading.Thread(target=client, args=(number,)) for number in range(8)]
    try:
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(60)
    finally:
        writer.close()
    assert len(list(root.glob("c*-*"))) == 1200
    # Two writer threads at most, for the whole writer's life: none left and came back.
    assert len(seen) <= 2


def test_a_closed_writer_refuses_work(root: Path) -> None:
    writer = StoreWriter(str(root), lambda rows: None)
    writer.close()
    with pytest.raises(RuntimeError):
        writer.submit(lambda: (None, published))


def test_futures_resolve_for_waiters_on_other_threads(writer: StoreWriter, root: Path) -> None:
    results: list[Future[bool]] = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(writer.submit(lambda: (new_run(root, f"t{i}"), published)))
        )
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(str(f.result(30)) for f in results) == ["True"] * 8


def test_the_setting_chooses_how_batches_are_made_durable(settings: Settings) -> None:
    files = RunService(settings.model_copy(update={"durable_sync": "files"}), instant_pipeline)
    default = RunService(settings, instant_pipeline)
    try:
        assert files.store.writer.syncs_filesystem is False
        assert default.store.writer.syncs_filesystem is (DEFAULT_SYNC is not None)
        assert files.accept({"question": "q", "markdown_path": "documents"}).created
    finally:
        files.shutdown()
        default.shutdown()


def test_an_unexpected_error_fails_its_batch_and_leaves_no_caller_waiting(
    writer: StoreWriter, root: Path
) -> None:
    class Broken(Change):
        def stage(self, fsync: bool) -> None:
            raise ValueError("a bug while staging")

    with pytest.raises(ValueError, match="a bug"):
        writer.submit(lambda: (Broken(f"{root}/x", {}), published)).result(30)
    assert writer.write(new_run(root, "after"))


def folders_open_on(path: Path) -> int:
    """How many of this process's file descriptors are open on the folder `path`."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:  # the listing's own descriptor, closed meanwhile
            continue
    return count


@pytest.mark.skipif(DEFAULT_SYNC is None, reason="syncfs(2) is Linux's")
def test_the_default_sync_holds_the_output_folder_open_until_the_writer_closes(
    root: Path, indexed: list[IndexRow]
) -> None:
    writer = StoreWriter(str(root), indexed.extend)
    assert folders_open_on(root) == 1

    assert writer.write(new_run(root, "run-a"))
    assert (root / "run-a" / "state.json").read_bytes() == b"run-a"
    assert folders_open_on(root) == 1, "syncs reuse the folder they hold"

    writer.close()
    assert folders_open_on(root) == 0
