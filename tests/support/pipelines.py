"""Pipelines written for the tests: each pins down one way a pipeline can behave."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from app.config import Settings
from app.modules.contract import Gap, Pipeline, PipelineResult, RunContext
from app.modules.orchestrator.module import STAGES, run_pipeline

EVENT_TIMEOUT_S = 30.0


def completed(ctx: RunContext, text: str = "answer") -> PipelineResult:
    return PipelineResult(
        "completed",
        "answered",
        f"# {ctx.options.question}\n\n{text}\n",
        {"question": ctx.options.question, "run_id": ctx.run_id},
    )


class GatedPipeline:
    """Blocks each run until the test opens the gate; reports progress and honours stop."""

    stages = ("prepare", "wait", "write")

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.calls: list[str] = []
        self.saw_stop = threading.Event()

    def __call__(self, ctx: RunContext) -> PipelineResult:
        self.calls.append(ctx.run_id)
        ctx.report("prepare", "getting ready", 0.1)
        self.started.set()
        ctx.report("wait", "waiting for the gate", 0.5)
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while not self.gate.wait(0.01):
            if ctx.should_stop():
                self.saw_stop.set()
                return PipelineResult("stopped", "stop requested", "partial answer\n", None)
            if time.monotonic() > deadline:
                raise TimeoutError("the test never opened the gate")
        ctx.report("write", "writing", 0.9)
        return completed(ctx)


class StubbornPipeline:
    """Ignores should_stop entirely until released: only the reaper can end it on time."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self, ctx: RunContext) -> PipelineResult:
        self.started.set()
        self.release.wait(EVENT_TIMEOUT_S)
        return completed(ctx, "late")


def raising_pipeline(ctx: RunContext) -> PipelineResult:
    raise ValueError("the pipeline broke on purpose")


def gaps_pipeline(ctx: RunContext) -> PipelineResult:
    gap = Gap("question_part", "funding in 1850", "no document mentions it")
    return PipelineResult(
        "completed_with_gaps",
        "unsupported parts",
        "# Answer\n\n## Gaps\n- funding in 1850\n",
        {"gaps": [gap.as_dict()]},
        [gap],
    )


def instant_pipeline(ctx: RunContext) -> PipelineResult:
    ctx.report("answer", "done", 1.0)
    return completed(ctx)


def not_a_result_pipeline(ctx: RunContext) -> PipelineResult:
    return "oops"  # type: ignore[return-value]


# -- pipelines for server processes, synchronised through files -------------------------------


def file_gated_pipeline(ctx: RunContext) -> PipelineResult:
    """For real server processes: waits until a `release` file appears in the run's documents
    folder, and appends its run id to `executions.log` there (to count executions)."""
    folder = ctx.options.markdown_path
    with (folder / "executions.log").open("a") as log:
        log.write(f"{ctx.run_id} {os.getpid()}\n")
    ctx.report("wait", "waiting for release", 0.5)
    if not _released(folder, ctx):
        return PipelineResult("stopped", "stop requested", None, None)
    return completed(ctx)


def child_process_pipeline(ctx: RunContext) -> PipelineResult:
    """For real server processes: starts a process that waits on its input, names it in
    `child.pid` in the run's documents folder, and ends it once a `release` file appears."""
    folder = ctx.options.markdown_path
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        (folder / "child.pid.tmp").write_text(str(child.pid))
        os.replace(folder / "child.pid.tmp", folder / "child.pid")
        released = _released(folder, ctx)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()
    return completed(ctx) if released else PipelineResult("stopped", "stop requested", None, None)


def _released(folder: Path, ctx: RunContext) -> bool:
    """Wait for a `release` file in `folder`; False if the run is asked to stop first."""
    deadline = time.monotonic() + 120
    while not (folder / "release").exists():
        if ctx.should_stop():
            return False
        if time.monotonic() > deadline:
            raise TimeoutError("never released")
        time.sleep(0.02)
    return True


def held_default_pipeline(ctx: RunContext) -> PipelineResult:
    """For real server processes: the default pipeline, held at its first progress report until
    a `release` file appears in the run's documents folder, so that a client sees it running."""
    held = False

    def report(stage: str, message: str = "", fraction: float | None = None) -> None:
        nonlocal held
        ctx.report(stage, message, fraction)
        if not held:
            held = True
            _released(ctx.options.markdown_path, ctx)

    return run_pipeline(dataclasses.replace(ctx, report=report))


held_default_pipeline.stages = STAGES  # type: ignore[attr-defined]


def worker_pipeline(ctx: RunContext) -> PipelineResult:
    """For Celery workers: "sleep S" sleeps S seconds, "gated" waits for a `release` file in the
    documents folder, "gated sleep S" waits for it and then sleeps S seconds; each stops when
    asked, and logs `start`/`end` lines with the pid and time to `attempts.log` there (one write
    each, appended, so processes never interleave a line)."""
    folder = ctx.options.markdown_path
    _log_attempt(folder, "start", ctx.run_id)
    question = ctx.options.question
    gated = question.startswith("gated")
    seconds = float(question.rsplit(" ", 1)[1]) if "sleep " in question else 0.0
    ctx.report("work", question, 0.5)
    try:
        if gated and not _released(folder, ctx):
            return PipelineResult("stopped", "stop requested", None, None)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ctx.should_stop():
                return PipelineResult("stopped", "stop requested", None, None)
            time.sleep(0.01)
        return completed(ctx)
    finally:
        _log_attempt(folder, "end", ctx.run_id)


def _log_attempt(folder: Path, what: str, run_id: str) -> None:
    fd = os.open(folder / "attempts.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{what} {run_id} {os.getpid()} {time.time():.6f}\n".encode())
    finally:
        os.close(fd)


def attempt_intervals(folder: Path) -> dict[str, list[tuple[float, float]]]:
    """Each run's executions as (start, end) times, from `worker_pipeline`'s log."""
    started: dict[tuple[str, str], float] = {}
    intervals: dict[str, list[tuple[float, float]]] = {}
    log = folder / "attempts.log"
    for line in log.read_text().splitlines() if log.exists() else []:
        what, run_id, pid, at = line.split()
        if what == "start":
            started[(run_id, pid)] = float(at)
        else:
            intervals.setdefault(run_id, []).append((started.pop((run_id, pid)), float(at)))
    for (run_id, _), at in started.items():  # still running, or its process was killed
        intervals.setdefault(run_id, []).append((at, float("inf")))
    return intervals


def executions(folder: Path) -> list[str]:
    log = folder / "executions.log"
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


class ConsolePipeline:
    """For the browser tests: the real pipeline, except that a question containing 'slow' runs
    until it is cancelled, one containing 'explode' fails, and one containing 'table' answers
    with a wide table."""

    def __init__(self, real: Pipeline) -> None:
        self.real = real
        self.stages = getattr(real, "stages", ())

    def __call__(self, ctx: RunContext) -> PipelineResult:
        question = ctx.options.question.lower()
        if "explode" in question:
            raise RuntimeError("the console test asked this run to explode")
        if "table" in question:
            rows = "\n".join(
                f"| Renewable Power Programme {n} | {2025 + n} | {1_250_000 * n:,} | Offshore wind capacity |"
                for n in range(1, 6)
            )
            table = "| Programme | Year | Budget (EUR) | Focus |\n|---|---|---|---|\n" + rows
            return PipelineResult("completed", "answered", f"# Budgets\n\n{table}\n", {"passages": []})
        if "slow" not in question:
            return self.real(ctx)
        ctx.report("load", "working slowly until cancelled", 0.2)
        deadline = time.monotonic() + 120
        while not ctx.should_stop() and time.monotonic() < deadline:
            time.sleep(0.05)
        partial = "# So far\n\nThe first part of an answer, cut short.\n"
        return PipelineResult("stopped", "stop requested", partial, {"passages": []})


def console_pipeline(ctx: RunContext) -> PipelineResult:
    raise RuntimeError("console_pipeline is bound at start-up")


def _bind_console(settings: Settings) -> ConsolePipeline:
    from app.modules.orchestrator.module import bind

    return ConsolePipeline(bind(settings))


console_pipeline.bind = _bind_console  # type: ignore[attr-defined]
