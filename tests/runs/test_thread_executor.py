from __future__ import annotations

import errno
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.config import Settings
from app.modules.contract import Pipeline, PipelineResult, RunContext
from app.runs.pipeline_runner import PipelineRunner
from app.runs.run_reaper import RunReaper
from app.runs.run_service import RunService
from app.runs.run_state import RunState, RunStatus
from app.runs.run_store import RunStore
from app.runs.thread_executor import ThreadExecutor, thread_executor
from tests.conftest import wait_until
from tests.support.pipelines import GatedPipeline, StubbornPipeline, instant_pipeline, raising_pipeline

REQUEST = {"question": "q", "markdown_path": "documents"}


@pytest.fixture
def service(settings: Settings, gated: GatedPipeline) -> Iterator[RunService]:
    runs = RunService(settings, gated)
    runs.start()
    yield runs
    gated.gate.set()
    runs.shutdown()


def counting_pipeline() -> tuple[list[str], Pipeline]:
    """An instant pipeline that records the run id of every execution."""
    calls: list[str] = []

    def counting(ctx: RunContext) -> PipelineResult:
        calls.append(ctx.run_id)
        return instant_pipeline(ctx)

    return calls, counting


def wait_status(store: RunStore, run_id: str, status: RunStatus) -> None:
    wait_until(lambda: store.get(run_id).status is status, what=f"{run_id} -> {status}")


def test_queued_runs_left_on_disk_are_run_by_the_next_process(settings: Settings) -> None:
    store = RunStore(settings.output_dir)
    left = [store.create(REQUEST, None, 60).run_id for _ in range(3)]
    calls, counting = counting_pipeline()
    runs = RunService(settings, counting)
    runs.start()
    try:
        for run_id in left:
            wait_status(runs.store, run_id, RunStatus.COMPLETED)
    finally:
        runs.shutdown()
    assert sorted(calls) == sorted(left)


def test_two_processes_sharing_the_output_run_each_queued_run_exactly_once(settings: Settings) -> None:
    store = RunStore(settings.output_dir)
    left = [store.create(REQUEST, None, 60).run_id for _ in range(12)]
    calls, counting = counting_pipeline()
    services = [RunService(settings, counting) for _ in range(2)]
    for runs in services:
        runs.start()
    try:
        for run_id in left:
            wait_status(store, run_id, RunStatus.COMPLETED)
    finally:
        for runs in services:
            runs.shutdown()
    assert sorted(calls) == sorted(left)


def test_pipeline_error_fails_the_run_with_type_and_message_and_logs_the_traceback(
    settings: Settings,
) -> None:
    runs = RunService(settings, raising_pipeline)
    runs.start()
    try:
        state = runs.accept(REQUEST).state
        wait_status(runs.store, state.run_id, RunStatus.FAILED)
    finally:
        runs.shutdown()
    failed = runs.store.get(state.run_id)
    assert failed.error is not None
    assert (failed.error.type, failed.error.message) == ("ValueError", "the pipeline broke on purpose")
    assert failed.finish_reason == "error"
    log = orjson.loads((runs.store.root / state.run_id / "run.json").read_bytes())
    assert "Traceback" in log["errors"][0]["traceback"]
    assert "raising_pipeline" in log["errors"][0]["traceback"]


def test_heartbeat_is_refreshed_while_the_run_is_running(service: RunService, gated: GatedPipeline) -> None:
    run_id = service.accept(REQUEST).state.run_id
    assert gated.started.wait(10)
    heartbeat = service.store.root / run_id  # the folder's mtime
    first = heartbeat.stat().st_mtime_ns
    wait_until(lambda: heartbeat.stat().st_mtime_ns > first, what="a fresh heartbeat")


def test_running_run_is_stopped_as_cancelled_when_the_pipeline_checks(
    service: RunService, gated: GatedPipeline
) -> None:
    run_id = service.accept(REQUEST).state.run_id
    assert gated.started.wait(10)
    flagged = service.store.request_cancel(run_id)
    assert flagged.status is RunStatus.RUNNING and flagged.cancel_requested_at is not None
    wait_status(service.store, run_id, RunStatus.STOPPED)
    state = service.store.get(run_id)
    assert state.finish_reason == "cancelled" and state.has_output  # it keeps what it had


def test_time_limit_stops_a_cooperative_pipeline_with_reason_timeout(
    service: RunService, gated: GatedPipeline
) -> None:
    run_id = service.accept({**REQUEST, "timeout_s": 0.2}).state.run_id
    wait_status(service.store, run_id, RunStatus.STOPPED)
    assert gated.saw_stop.is_set()
    assert service.store.get(run_id).finish_reason == "timeout"


def test_time_limit_stops_a_pipeline_that_never_checks(settings: Settings) -> None:
    stubborn = StubbornPipeline()
    runs = RunService(settings.model_copy(update={"timeout_grace_s": 0.0}), stubborn)
    runs.start()
    try:
        run_id = runs.accept({**REQUEST, "timeout_s": 0.2}).state.run_id
        wait_status(runs.store, run_id, RunStatus.STOPPED)
        assert runs.store.get(run_id).finish_reason == "timeout"
        stubborn.release.set()
        wait_until(lambda: runs.executor.running_count == 0, what="the stubborn thread to end")
        assert runs.store.get(run_id).status is RunStatus.STOPPED  # the late result is discarded
        assert not (Path(runs.store.root) / run_id / "final.md").exists()
    finally:
        stubborn.release.set()
        runs.shutdown()


def test_shutdown_interrupts_runs_that_outlive_the_grace_period(settings: Settings) -> None:
    stubborn = StubbornPipeline()
    runs = RunService(settings.model_copy(update={"shutdown_grace_s": 0.0}), stubborn)
    runs.start()
    run_id = runs.accept(REQUEST).state.run_id
    assert stubborn.started.wait(10)
    try:
        runs.executor.shutdown(stop_wait_s=0.1)  # the stubborn pipeline ignores the stop request
    finally:
        stubborn.release.set()
    state = runs.store.get(run_id)
    assert state.status is RunStatus.FAILED and state.finish_reason == "interrupted"


def test_load_pipeline_binds_a_pipeline_that_offers_bind(settings: Settings) -> None:
    from app.modules.orchestrator.module import AnswerPipeline
    from app.runs.pipeline_runner import load_pipeline

    bound = load_pipeline("app.modules.orchestrator.module:run_pipeline", settings)
    assert isinstance(bound, AnswerPipeline)
    assert bound.config.index_dir == settings.output_dir / ".runlane" / "indexes"
    assert load_pipeline("tests.support.pipelines:instant_pipeline", settings) is instant_pipeline


@pytest.mark.parametrize("spec", ["no_colon", "tests.support.pipelines:EVENT_TIMEOUT_S", ":x"])
def test_load_pipeline_rejects_what_is_not_a_pipeline(settings: Settings, spec: str) -> None:
    from app.runs.pipeline_runner import load_pipeline

    with pytest.raises(ValueError):
        load_pipeline(spec, settings)


def test_a_live_process_finds_a_queued_run_missing_from_the_index(settings: Settings) -> None:
    runs = RunService(settings, instant_pipeline)
    runs.start()
    try:
        orphan = RunStore(settings.output_dir).create(REQUEST, "never-indexed", 60)
        runs.store.index.remove(orphan.run_id)  # as if its creator died before indexing it
        wait_status(runs.store, orphan.run_id, RunStatus.COMPLETED)
    finally:
        runs.shutdown()


def folder_where_the_answer_goes(ctx: RunContext) -> PipelineResult:
    """Saving the answer fails with an OSError, as on a broken or full disk."""
    (ctx.run_dir / "final.md").mkdir()
    return instant_pipeline(ctx)


def test_an_error_while_saving_artifacts_fails_the_run_with_its_real_cause_and_is_logged(
    settings: Settings, runlane_logs: pytest.LogCaptureFixture
) -> None:
    runs = RunService(settings, folder_where_the_answer_goes)
    runs.start()
    try:
        run_id = runs.accept(REQUEST).state.run_id
        wait_status(runs.store, run_id, RunStatus.FAILED)
    finally:
        runs.shutdown()
    state = runs.store.get(run_id)
    assert state.error is not None and state.error.type == "IsADirectoryError"
    assert state.finish_reason == "error"
    logged = [r for r in runlane_logs.records if getattr(r, "run_id", None) == run_id and r.exc_info]
    assert logged and "final.md" in str(logged[0].exc_info[1])  # type: ignore[index]


def test_a_run_gives_its_slot_to_the_next_once_its_pipeline_returns(settings: Settings) -> None:
    """With one slot, a queued run starts while the previous run's end is still being made
    durable: a slow disk holds no pipeline back."""
    holding, held, release = threading.Event(), threading.Event(), threading.Event()

    def sync(root: str) -> None:
        if holding.is_set():
            held.set()
            release.wait(30)

    store = RunStore(settings.output_dir, sync=sync)
    first, second = (store.create(REQUEST, None, 60).run_id for _ in range(2))
    second_started = threading.Event()

    def pipeline(ctx: RunContext) -> PipelineResult:
        if ctx.run_id == second:
            second_started.set()
        return instant_pipeline(ctx)

    executor = ThreadExecutor(
        PipelineRunner(store, pipeline, settings.documents_root),
        max_workers=1,
        heartbeat_interval_s=5,
        shutdown_grace_s=5,
    )
    executor.start()
    holding.set()
    try:
        executor.submit(first)
        assert held.wait(30)  # the first run's terminal state waits for its sync
        executor.submit(second)
        assert second_started.wait(30)
        assert store.get(first).status is RunStatus.RUNNING
    finally:
        release.set()
    wait_status(store, first, RunStatus.COMPLETED)
    wait_status(store, second, RunStatus.COMPLETED)
    executor.shutdown()


class DiskFullOnFailStore(RunStore):
    """Recording a failure hits a full disk the first `times` times."""

    def __init__(self, root: Path, times: int) -> None:
        super().__init__(root)
        self.refusals = times

    def fail(self, *args: Any, **kwargs: Any) -> RunState | None:
        if self.refusals > 0:
            self.refusals -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().fail(*args, **kwargs)


def test_a_failure_that_cannot_be_written_is_retried_and_never_looks_like_a_dead_server(
    settings: Settings,
) -> None:
    store = DiskFullOnFailStore(settings.output_dir, times=3)
    executor = ThreadExecutor(
        PipelineRunner(store, raising_pipeline, settings.documents_root),
        max_workers=1,
        heartbeat_interval_s=0.02,
        shutdown_grace_s=0,
    )
    executor.start()
    try:
        run_id = store.create(REQUEST, None, 60).run_id
        executor.submit(run_id)
        reaper = RunReaper(RunStore(settings.output_dir), orphan_after_s=0.001, timeout_grace_s=0)
        wait_until(lambda: store.refusals < 3, what="the first refused write")
        assert reaper.fail_orphans() == []  # its owner is alive: not an interrupted run
        wait_status(store, run_id, RunStatus.FAILED)
    finally:
        executor.shutdown()
    state = store.get(run_id)
    assert state.error is not None
    assert (state.error.type, state.error.message) == ("ValueError", "the pipeline broke on purpose")


def test_stopped_and_failed_runs_say_in_which_stage_they_ended(
    service: RunService, gated: GatedPipeline
) -> None:
    run_id = service.accept(REQUEST).state.run_id
    assert gated.started.wait(10)
    service.cancel(run_id)
    wait_status(service.store, run_id, RunStatus.STOPPED)
    progress = service.store.get(run_id).progress
    assert progress is not None
    assert (progress.stage, progress.fraction, progress.message) == ("wait", 0.5, "stopped during wait")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="nice(2) per thread is Linux's")
@pytest.mark.parametrize("nice", [0, 7, 19])
def test_pipelines_run_the_configured_nice_steps_below_the_server(settings: Settings, nice: int) -> None:
    """Requests get the CPU before pipelines: their threads are niced (RUNLANE_PIPELINE_NICE),
    while the thread that made the executor keeps its own priority."""
    seen: list[int] = []

    def pipeline(ctx: RunContext) -> PipelineResult:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return instant_pipeline(ctx)

    server = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    store = RunStore(settings.output_dir)
    executor = thread_executor(settings.model_copy(update={"pipeline_nice": nice}), store, pipeline)
    executor.start()
    run_id = store.create(REQUEST, None, 60).run_id
    executor.submit(run_id)
    wait_status(store, run_id, RunStatus.COMPLETED)
    executor.shutdown()
    assert seen == [min(19, server + nice)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == server
