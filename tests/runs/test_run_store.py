from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import socket
import threading
from pathlib import Path

import orjson
import pytest

from app import atomic_file
from app.runs.errors import (
    ArtifactMissingError,
    ArtifactNotProducedError,
    InvalidTransitionError,
    RunAlreadyFinishedError,
    RunGoneError,
    RunIdConflictError,
    RunNotFinishedError,
    RunNotFoundError,
)
from app.runs.run_artifacts import parse_context, read_artifact
from app.runs.run_events import run_events
from app.runs.run_ids import is_valid_run_id, new_run_id
from app.runs.run_log import RUN_LOG_FILE
from app.runs.run_owner import current_owner
from app.runs.run_state import TRANSITIONS, RunError, RunStatus
from app.runs.run_store import (
    CLAIM_FILE,
    CONTEXT_FILE,
    FINAL_FILE,
    STATE_FILE,
    Outcome,
    RunStore,
)

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
REQUEST = {"question": "q", "markdown_path": "documents"}


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "output")


def reach(store: RunStore, status: RunStatus) -> str:
    """A run brought to `status` through legal transitions only."""
    state = store.create(REQUEST, None, 60)
    if status is RunStatus.QUEUED:
        return state.run_id
    if status is RunStatus.STOPPED:
        store.transition(state.run_id, RunStatus.STOPPED)
        return state.run_id
    store.transition(state.run_id, RunStatus.RUNNING)
    if status is not RunStatus.RUNNING:
        store.transition(state.run_id, status)
    return state.run_id


ALL_PAIRS = [(a, b) for a in RunStatus for b in RunStatus]


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_transition_is_allowed_exactly_when_the_table_says_so(
    store: RunStore, source: RunStatus, target: RunStatus
) -> None:
    run_id = reach(store, source)
    if target in TRANSITIONS[source]:
        assert store.transition(run_id, target).status is target
        assert store.get(run_id).status is target
    else:
        with pytest.raises(InvalidTransitionError):
            store.transition(run_id, target)
        assert store.get(run_id).status is source


def test_the_table_is_the_documented_lifecycle() -> None:
    assert {s for s in RunStatus if s.is_terminal} == {
        RunStatus.COMPLETED,
        RunStatus.COMPLETED_WITH_GAPS,
        RunStatus.FAILED,
        RunStatus.STOPPED,
    }
    assert TRANSITIONS[RunStatus.QUEUED] == {RunStatus.RUNNING, RunStatus.STOPPED}


def test_timestamps_are_utc_z_and_completed_at_is_set_exactly_at_the_terminal_transition(
    store: RunStore,
) -> None:
    state = store.create(REQUEST, None, 60)
    assert ISO_Z.match(state.created_at)
    assert state.started_at is None and state.completed_at is None
    running = store.transition(state.run_id, RunStatus.RUNNING)
    assert running.started_at is not None and ISO_Z.match(running.started_at)
    assert running.completed_at is None
    done = store.transition(state.run_id, RunStatus.COMPLETED)
    assert done.completed_at is not None and ISO_Z.match(done.completed_at)
    assert done.completed_at == done.updated_at
    assert done.started_at == running.started_at


def test_created_run_is_on_disk_whole_before_create_returns(store: RunStore) -> None:
    state = store.create({"question": "durable?"}, "durable-1", 60)
    run_dir = store.root / "durable-1"
    on_disk = orjson.loads((run_dir / STATE_FILE).read_bytes())
    assert on_disk["status"] == "queued" and on_disk["run_id"] == state.run_id
    assert on_disk["request"] == {"question": "durable?"}
    assert not any((store.root / ".staging").iterdir())
    # A second store (another process after a crash) sees the same run.
    assert RunStore(store.root).get("durable-1").status is RunStatus.QUEUED


def test_duplicate_run_id_is_rejected_and_the_first_run_is_untouched(store: RunStore) -> None:
    store.create({"question": "first"}, "same", 60)
    with pytest.raises(RunIdConflictError):
        store.create({"question": "second"}, "same", 60)
    assert store.read_request("same") == {"question": "first"}
    assert not any((store.root / ".staging").iterdir())


def test_duplicate_run_id_from_many_threads_gives_exactly_one_winner(store: RunStore) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(16)

    def attempt() -> None:
        barrier.wait()
        try:
            store.create({"question": "race"}, "contested", 60)
            outcomes.append("created")
        except RunIdConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == ["conflict"] * 15 + ["created"]


def _create_in_child(args: tuple[str, str]) -> str:
    root, run_id = args
    try:
        RunStore(Path(root)).create({"question": "race"}, run_id, 60)
    except RunIdConflictError:
        return "conflict"
    return "created"


def test_duplicate_run_id_from_several_processes_gives_exactly_one_winner(store: RunStore) -> None:
    pool = multiprocessing.get_context("spawn").Pool(4)
    try:
        outcomes = pool.map(_create_in_child, [(str(store.root), "cross-process")] * 24, chunksize=1)
    finally:
        pool.close()
        pool.join()
    assert sorted(outcomes) == ["conflict"] * 23 + ["created"]


def test_generated_run_ids_are_unique_within_one_second_and_follow_the_contract() -> None:
    ids = {new_run_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(re.fullmatch(r"\d{8}_\d{6}_[0-9a-f]{8}", run_id) for run_id in ids)


@pytest.mark.parametrize("run_id", ["..", ".", "a/b", "%2e%2e", "a\x00b", "a b", "", "-lead", "x" * 129, "ü"])
def test_unsafe_run_ids_are_invalid(store: RunStore, run_id: str) -> None:
    assert not is_valid_run_id(run_id)
    with pytest.raises(RunNotFoundError):
        store.get(run_id)


def test_valid_run_ids_are_accepted() -> None:
    for run_id in ["a", "A.b_c-1", "0" * 128, "20260209_1201"]:
        assert is_valid_run_id(run_id)


def test_finish_writes_artifacts_before_the_terminal_status(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = reach(store, RunStatus.RUNNING)
    replaced: list[str] = []
    real_replace = os.replace

    def recording_replace(source: str, target: str) -> None:
        replaced.append(os.path.basename(target))
        real_replace(source, target)

    monkeypatch.setattr(atomic_file.os, "replace", recording_replace)
    outcome = Outcome(RunStatus.COMPLETED, "answered", "# A\n", {"k": 1}, [])
    finished = store.finish(run_id, outcome)
    assert finished is not None and finished.status is RunStatus.COMPLETED
    # A crash between any two of these leaves a run that is still running, never a finished
    # run without its answer.
    assert replaced == [FINAL_FILE, CONTEXT_FILE, "run.json", STATE_FILE]
    assert read_artifact(store, run_id, FINAL_FILE).content == b"# A\n"


def test_finish_is_refused_once_the_run_was_stopped_and_the_stop_is_final(store: RunStore) -> None:
    run_id = reach(store, RunStatus.RUNNING)
    assert store.stop(run_id, "timeout", only_if=RunStatus.RUNNING) is not None
    outcome = Outcome(RunStatus.COMPLETED, "answered", "# late\n", {}, [])
    assert store.finish(run_id, outcome) is None
    assert store.fail(run_id, RunError(type="X", message="y"), "error") is None
    state = store.get(run_id)
    assert state.status is RunStatus.STOPPED and state.finish_reason == "timeout"
    assert not (store.root / run_id / FINAL_FILE).exists()


def test_artifacts_of_unfinished_runs_are_not_served(store: RunStore) -> None:
    for status in (RunStatus.QUEUED, RunStatus.RUNNING):
        run_id = reach(store, status)
        with pytest.raises(RunNotFinishedError) as caught:
            read_artifact(store, run_id, FINAL_FILE)
        assert caught.value.status == status.value


def test_terminal_run_without_artifact_says_it_produced_none(store: RunStore) -> None:
    run_id = reach(store, RunStatus.FAILED)
    with pytest.raises(ArtifactNotProducedError):
        read_artifact(store, run_id, CONTEXT_FILE)


def test_missing_or_corrupt_artifact_is_reported_as_missing(store: RunStore) -> None:
    run_id = reach(store, RunStatus.RUNNING)
    store.finish(run_id, Outcome(RunStatus.COMPLETED, "ok", "# A\n", {"a": 1}, []))
    (store.root / run_id / FINAL_FILE).unlink()
    with pytest.raises(ArtifactMissingError):
        read_artifact(store, run_id, FINAL_FILE)
    (store.root / run_id / CONTEXT_FILE).write_text("{not json")
    with pytest.raises(ArtifactMissingError):
        parse_context(read_artifact(store, run_id, CONTEXT_FILE))


def test_status_view_follows_writes_from_another_store_instance(store: RunStore) -> None:
    """Two processes share the folder: a cached view must never hide the other's writes."""
    other = RunStore(store.root)
    run_id = reach(store, RunStatus.QUEUED)
    assert store.status_view(run_id).state.status is RunStatus.QUEUED
    for target in (RunStatus.RUNNING, RunStatus.COMPLETED):
        other.transition(run_id, target)
        view = store.status_view(run_id)
        assert view.state.status is target
        assert orjson.loads(view.body)["status"] == target.value


def test_progress_never_goes_backwards(store: RunStore) -> None:
    run_id = reach(store, RunStatus.RUNNING)
    stages = ("load", "index", "write")
    store.record_progress(run_id, "index", "indexing", 0.5, stages)
    store.record_progress(run_id, "load", "late report", 0.2, stages)
    progress = store.get(run_id).progress
    assert progress is not None
    assert (progress.stage_index, progress.fraction, progress.seq) == (1, 0.5, 2)
    assert progress.stage_count == 3


def test_cancel_of_a_queued_run_stops_it_and_repeats_answer_the_same(store: RunStore) -> None:
    run_id = reach(store, RunStatus.QUEUED)
    first = store.request_cancel(run_id)
    assert first.status is RunStatus.STOPPED and first.finish_reason == "cancelled"
    assert store.request_cancel(run_id).updated_at == first.updated_at


def test_cancel_of_a_finished_run_is_refused(store: RunStore) -> None:
    run_id = reach(store, RunStatus.COMPLETED)
    with pytest.raises(RunAlreadyFinishedError):
        store.request_cancel(run_id)


def test_deleted_run_leaves_a_tombstone(store: RunStore) -> None:
    run_id = reach(store, RunStatus.COMPLETED)
    store.delete(run_id)
    with pytest.raises(RunGoneError):
        store.get(run_id)
    assert sorted(p.name for p in (store.root / run_id).iterdir()) == ["tombstone.json"]
    with pytest.raises(RunGoneError):  # run ids are never reused
        store.create(REQUEST, run_id, 60)


def test_claim_is_exclusive(store: RunStore) -> None:
    run_id = reach(store, RunStatus.QUEUED)
    other = RunStore(store.root)
    assert store.claim(run_id, current_owner(socket.gethostname())) is not None
    assert other.claim(run_id, current_owner(socket.gethostname())) is None
    assert store.get(run_id).owner == current_owner(socket.gethostname())


def test_a_claim_goes_to_the_claim_file_and_the_runs_next_write_supersedes_it(store: RunStore) -> None:
    run_id = reach(store, RunStatus.QUEUED)
    owner = current_owner(socket.gethostname())
    claimed = store.claim(run_id, owner)
    assert claimed is not None
    folder = store.root / run_id
    assert orjson.loads((folder / STATE_FILE).read_bytes())["status"] == "queued"
    assert orjson.loads((folder / CLAIM_FILE).read_bytes())["status"] == "running"
    other = RunStore(store.root)  # another process sharing the output folder
    assert other.get(run_id) == claimed == store.get(run_id)
    assert other.claim(run_id, owner) is None
    other.request_cancel(run_id)  # a running run's cancel: a flag, written to the state file
    on_disk = orjson.loads((folder / STATE_FILE).read_bytes())
    assert on_disk["status"] == "running" and on_disk["cancel_requested_at"] is not None
    store.finish(run_id, Outcome(RunStatus.STOPPED, "cancelled", None, None, []))
    assert other.get(run_id).status is RunStatus.STOPPED
    assert orjson.loads((folder / CLAIM_FILE).read_bytes())["status"] == "running"  # history now


@pytest.mark.parametrize(
    "claim",
    [b"", b'{"run_id": "', b"[]"],
    ids=["empty", "torn", "not-a-state"],
)
def test_a_claim_file_that_cannot_be_read_is_a_claim_that_never_happened(
    store: RunStore, claim: bytes
) -> None:
    run_id = reach(store, RunStatus.QUEUED)
    (store.root / run_id / CLAIM_FILE).write_bytes(claim)  # what a power loss may leave
    assert store.get(run_id).status is RunStatus.QUEUED
    assert RunStore(store.root).get(run_id).status is RunStatus.QUEUED
    claimed = store.claim(run_id, current_owner(socket.gethostname()))
    assert claimed is not None and claimed.attempt == 1
    assert store.get(run_id).status is RunStatus.RUNNING


def test_the_store_that_claimed_a_run_ends_it_from_its_own_claim(store: RunStore) -> None:
    run_id = reach(store, RunStatus.QUEUED)
    claimed = store.claim(run_id, current_owner(socket.gethostname()))
    assert claimed is not None
    # Only a person could do this to a live run; it shows that the end does not read it back.
    (store.root / run_id / CLAIM_FILE).write_bytes(b"")
    assert RunStore(store.root).get(run_id).status is RunStatus.QUEUED
    ended = store.finish(run_id, Outcome(RunStatus.COMPLETED, "answered", "# a\n", {}, []), claimed.attempt)
    assert ended is not None and ended.status is RunStatus.COMPLETED
    assert ended.owner == claimed.owner and ended.started_at == claimed.started_at
    assert RunStore(store.root).get(run_id).status is RunStatus.COMPLETED


def test_a_claim_file_that_does_not_follow_the_queued_state_is_ignored(store: RunStore) -> None:
    run_id = reach(store, RunStatus.QUEUED)
    claimed = store.claim(run_id, current_owner(socket.gethostname()))
    assert claimed is not None
    folder = store.root / run_id
    later = claimed.model_copy(update={"attempt": 2})
    (folder / CLAIM_FILE).write_bytes(later.model_dump_json().encode())
    assert RunStore(store.root).get(run_id).status is RunStatus.QUEUED


def test_a_run_held_by_one_thread_never_holds_up_another_run(store: RunStore) -> None:
    run_ids = [f"other-{number}" for number in range(1000)]
    for run_id in ["held", *run_ids]:
        (store.root / run_id).mkdir()
    passed = threading.Event()

    def lock_the_others() -> None:
        for run_id in run_ids:
            with store.locked(run_id):
                pass
        passed.set()

    with store.locked("held"):
        threading.Thread(target=lock_the_others, daemon=True).start()
        assert passed.wait(30)


def test_threads_taking_one_run_take_turns(store: RunStore) -> None:
    (store.root / "shared").mkdir()
    inside, most, guard = [0], [0], threading.Lock()

    def take_turns() -> None:
        for _ in range(200):
            with store.locked("shared"):
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                os.stat(store.root / "shared")  # a system call: other threads run meanwhile
                with guard:
                    inside[0] -= 1

    threads = [threading.Thread(target=take_turns) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert most[0] == 1


def test_a_claim_is_logged_with_the_next_write_and_streamed_with_the_same_id_before(store: RunStore) -> None:
    run_id = store.create(REQUEST, None, 60).run_id
    claimed = store.claim(run_id, current_owner(socket.gethostname()))
    assert claimed is not None and claimed.started_at is not None
    assert not (store.root / run_id / RUN_LOG_FILE).exists()  # the claim wrote the state only

    async def first_events(count: int) -> list[dict[str, str]]:
        stream = run_events(store, run_id)
        try:
            return [await anext(stream) for _ in range(count)]
        finally:
            await stream.aclose()

    live = asyncio.run(first_events(2))
    assert [(e["id"], orjson.loads(e["data"])["status"]) for e in live] == [("1", "queued"), ("2", "running")]

    store.finish(run_id, Outcome(RunStatus.COMPLETED, "answered", "# a\n", None, []))
    events = orjson.loads((store.root / run_id / RUN_LOG_FILE).read_bytes())["events"]
    assert [e.get("status") for e in events] == ["queued", "running", "completed"]
    # The same event, but which host and process ran it stays on disk, out of client streams.
    assert events[1]["owner"]["pid"] > 0
    assert {k: v for k, v in events[1].items() if k != "owner"} == orjson.loads(live[1]["data"])
    assert events[1]["at"] == claimed.started_at
