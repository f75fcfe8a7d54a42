from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.runs.store_writer import DEFAULT_SYNC, Change, IndexRow, StoreWriter, undone
from tests.runs.test_store_writer import new_run

pytestmark = pytest.mark.skipif(DEFAULT_SYNC is None, reason="disk workers need syncfs(2)")


@pytest.fixture
def writer(root: Path, indexed: list[IndexRow]) -> Iterator[StoreWriter]:
    writer = StoreWriter(str(root), indexed.extend, processes=1)
    yield writer
    writer.close()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_batch_is_written_whole_by_a_worker_process(
    writer: StoreWriter, root: Path, indexed: list[IndexRow]
) -> None:
    assert writer.write(new_run(root, "first"))
    [pid] = writer.worker_pids()
    assert pid != os.getpid()
    assert writer.write(Change(f"{root}/first", {"state.json": b"second version", "final.md": b"# answer"}))
    assert (root / "first" / "state.json").read_bytes() == b"second version"
    assert (root / "first" / "final.md").read_bytes() == b"# answer"
    assert sorted(os.listdir(root / "first")) == ["final.md", "state.json"]  # no temp files
    assert not os.listdir(root / ".staging")
    assert [row[0] for row in indexed] == ["first"]
    assert writer.worker_pids() == [pid]  # one worker serves batch after batch


def test_a_taken_run_id_is_refused_through_a_worker(writer: StoreWriter, root: Path) -> None:
    assert writer.write(new_run(root, "taken"))
    assert not writer.write(new_run(root, "taken"))
    assert (root / "taken" / "state.json").read_bytes() == b"taken"
    assert not os.listdir(root / ".staging")


def test_a_worker_error_reaches_the_caller_with_its_errno(writer: StoreWriter, root: Path) -> None:
    with pytest.raises(FileNotFoundError):
        writer.write(Change(f"{root}/no-such-run", {"state.json": b"x"}))
    assert writer.write(new_run(root, "after"))


def test_a_worker_that_died_fails_its_batch_and_the_next_batch_gets_a_new_one(
    writer: StoreWriter, root: Path
) -> None:
    assert writer.write(new_run(root, "before"))
    [pid] = writer.worker_pids()
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(OSError):  # a broken pipe: nothing was written
        writer.write(new_run(root, "lost"))
    assert not (root / "lost").exists()
    assert writer.write(new_run(root, "after"))
    assert writer.worker_pids() != [pid]


def test_a_run_folder_published_before_its_worker_died_is_taken_back(root: Path) -> None:
    mine = new_run(root, "mine")
    (root / "mine").mkdir()
    (root / "mine" / "state.json").write_bytes(b"mine")
    undone(mine, OSError("worker died"))
    assert not (root / "mine").exists()
    # The same id published by another writer is not this change's to take back.
    theirs = new_run(root, "theirs")
    (root / "theirs").mkdir()
    (root / "theirs" / "state.json").write_bytes(b"another writer's state")
    undone(theirs, OSError("worker died"))
    assert (root / "theirs" / "state.json").exists()


def test_closing_the_writer_ends_its_workers(root: Path) -> None:
    writer = StoreWriter(str(root), lambda rows: None, processes=2)
    assert writer.write(new_run(root, "one"))
    pids = writer.worker_pids()
    assert pids
    writer.close()
    assert all(gone(pid) for pid in pids)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_a_worker_runs_off_the_cpu_its_server_thread_is_pinned_to(writer: StoreWriter, root: Path) -> None:
    cpu = min(os.sched_getaffinity(0))
    done: list[bool] = []

    def pinned_write() -> None:
        os.sched_setaffinity(0, {cpu})
        done.append(writer.write(new_run(root, "pinned")))

    thread = threading.Thread(target=pinned_write)
    thread.start()
    thread.join(60)
    assert done == [True]
    [pid] = writer.worker_pids()
    assert cpu not in os.sched_getaffinity(pid)


def test_a_worker_outlives_ctrl_c_until_its_server_closes_the_pipe(writer: StoreWriter, root: Path) -> None:
    assert writer.write(new_run(root, "before"))
    [pid] = writer.worker_pids()
    os.kill(pid, signal.SIGINT)  # a terminal's Ctrl+C reaches the whole process group
    assert writer.write(new_run(root, "after"))
    assert writer.worker_pids() == [pid]


def test_a_worker_error_names_the_file_it_failed_on(writer: StoreWriter, root: Path) -> None:
    assert writer.write(new_run(root, "run"))
    (root / "run" / "final.md").mkdir()  # a folder where the answer goes
    with pytest.raises(IsADirectoryError, match=r"final\.md"):
        writer.write(Change(f"{root}/run", {"final.md": b"# answer"}))
