"""The Celery executor, end to end: an API process and `runlane worker` processes with their own
host ids sharing one output root, on the machine's real Redis and PostgreSQL."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from app.runs.run_ids import is_valid_run_id
from app.runs.run_state import RunState
from app.runs.state_file import STATE_FILE, load_state
from tests.conftest import wait_until
from tests.support.pipelines import attempt_intervals
from tests.support.server import REPO_ROOT, free_port, server_env, uvicorn_server, worker_process
from tests.support.services import DATABASE_URL, REDIS_URL, pg_schema, redis_prefix

pytestmark = pytest.mark.slow

TERMINAL = {"completed", "completed_with_gaps", "failed", "stopped"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "documents").mkdir()
    return tmp_path


@pytest.fixture
def scale(root: Path) -> Iterator[dict[str, str]]:
    """Settings of one scaled-out deployment: its own Redis key prefix and PostgreSQL schema."""
    with redis_prefix() as prefix, pg_schema() as schema:
        yield {
            "executor": "celery",
            "broker_url": REDIS_URL,
            "broker_key_prefix": prefix,
            "database_url": DATABASE_URL,
            "database_schema": schema,
            "pipeline": "tests.support.pipelines:worker_pipeline",
            "host_id": "api-host",
            "orphan_after_s": "2",
        }


def states(root: Path) -> dict[str, RunState]:
    output = root / "output"
    return {
        entry.name: load_state(entry.name, str(entry / STATE_FILE))[0]
        for entry in output.iterdir()
        if is_valid_run_id(entry.name) and (entry / STATE_FILE).exists()
    }


def post(client: httpx.Client, question: str) -> str:
    response = client.post("/api/v1/runs", json={"question": question, "markdown_path": "documents"})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    return run_id


def wait_status(client: httpx.Client, run_id: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
    def current() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}/status").json()
        return body if body["status"] in statuses else None

    result: dict[str, Any] = wait_until(current, timeout=timeout, what=f"{run_id} in {statuses}")
    return result


def wait_all_terminal(root: Path, count: int, timeout: float = 120) -> dict[str, RunState]:
    def done() -> dict[str, RunState] | None:
        found = states(root)
        finished = [state for state in found.values() if state.status.value in TERMINAL]
        return found if len(finished) == count else None

    result: dict[str, RunState] = wait_until(done, timeout=timeout, what=f"{count} terminal runs")
    return result


@contextmanager
def api(root: Path, settings: dict[str, str]) -> Iterator[httpx.Client]:
    with uvicorn_server(root, **settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def test_two_workers_execute_each_of_200_runs_exactly_once(root: Path, scale: dict[str, str]) -> None:
    with (
        api(root, scale) as client,
        worker_process(root, "worker-a", 2, scale),
        worker_process(root, "worker-b", 2, scale),
    ):
        run_ids = {post(client, "sleep 0.01") for _ in range(200)}
        finished = wait_all_terminal(root, 200)
    assert set(finished) == run_ids
    assert {state.status.value for state in finished.values()} == {"completed"}
    intervals = attempt_intervals(root / "documents")
    assert {run_id: len(runs) for run_id, runs in intervals.items()} == dict.fromkeys(run_ids, 1)
    hosts = {state.owner.host for state in finished.values() if state.owner is not None}
    assert hosts == {"worker-a", "worker-b"}
    assert {state.attempt for state in finished.values()} == {1}


def test_a_killed_workers_run_ends_interrupted_and_its_queue_moves_to_another(
    root: Path, scale: dict[str, str]
) -> None:
    with api(root, scale) as client:
        with worker_process(root, "worker-a", 1, scale) as doomed:
            held = post(client, "gated")
            wait_status(client, held, "running")
            waiting = post(client, "sleep 0")
            doomed.kill()
        with worker_process(root, "worker-b", 1, scale):
            failed = wait_status(client, held, "failed")
            assert failed["finish_reason"] == "interrupted"
            assert "worker-a" not in str(failed)  # which process it was is for operators only
            wait_status(client, waiting, "completed")
        assert client.get("/api/v1/runs", params={"status": "running"}).json()["runs"] == []
    assert states(root)[waiting].owner.host == "worker-b"  # type: ignore[union-attr]


def test_with_two_attempts_a_killed_workers_run_is_run_again_by_another(
    root: Path, scale: dict[str, str]
) -> None:
    settings = {**scale, "max_attempts": "2"}
    with api(root, settings) as client:
        with worker_process(root, "worker-a", 1, settings) as doomed:
            run_id = post(client, "gated")
            wait_until(lambda: run_id in attempt_intervals(root / "documents"), what="the first attempt")
            doomed.kill()
        (root / "documents" / "release").touch()
        with worker_process(root, "worker-b", 1, settings):
            wait_status(client, run_id, "completed")
    state = states(root)[run_id]
    assert state.attempt == 2 and state.owner is not None and state.owner.host == "worker-b"
    assert len(attempt_intervals(root / "documents")[run_id]) == 2


def test_a_redelivered_message_never_runs_a_run_twice_at_once(root: Path, scale: dict[str, str]) -> None:
    settings = {**scale, "visibility_timeout_s": "2"}
    with (
        api(root, settings) as client,
        worker_process(root, "worker-a", 4, settings) as first,
        worker_process(root, "worker-b", 4, settings) as second,
    ):
        run_ids = {post(client, "sleep 5") for _ in range(3)}
        finished = wait_all_terminal(root, 3)
        deliveries = first.deliveries() + second.deliveries()
    assert deliveries > len(run_ids), "the broker did not redeliver: the test proved nothing"
    assert {state.status.value for state in finished.values()} == {"completed"}
    intervals = attempt_intervals(root / "documents")
    assert {run_id: len(runs) for run_id, runs in intervals.items()} == dict.fromkeys(run_ids, 1)


def test_a_cancel_on_the_api_host_stops_the_run_on_the_worker_and_its_events_stream_live(
    root: Path, scale: dict[str, str]
) -> None:
    with api(root, scale) as client, worker_process(root, "worker-a", 1, scale):
        run_id = post(client, "gated")
        wait_status(client, run_id, "running")
        with client.stream("GET", f"/api/v1/runs/{run_id}/events") as events:
            lines = events.iter_lines()
            seen = [next(line for line in lines if line.startswith("event:"))]
            assert seen == ["event: status"]
            wait_until(lambda: run_id in attempt_intervals(root / "documents"), what="the pipeline")
            assert client.post(f"/api/v1/runs/{run_id}/cancel").status_code == 202
            seen += list(lines)
        stopped = wait_status(client, run_id, "stopped")
    assert stopped["finish_reason"] == "cancelled"
    assert {"event: progress", "event: cancel_requested", "event: end"} <= set(seen)
    assert attempt_intervals(root / "documents")[run_id][0][1] != float("inf")


def loaded_span(root: Path, client: httpx.Client, runs: int, slots: int) -> float:
    """Seconds from the moment every slot holds a run to the end of the last of `runs` runs that
    sleep 1 s each: long beside a run's own cost, which the 2 cores share among all the slots.
    The runs wait in their slots until all are loaded: started as their messages arrive, the
    first ones would be tens of milliseconds apart, and each slot would keep its lag to the
    end, so the span would measure Celery's dispatch rather than the slots."""
    documents = root / "documents"
    (documents / "release").unlink(missing_ok=True)
    before = len(states(root))
    run_ids = {post(client, "gated sleep 1") for _ in range(runs)}
    wait_until(
        lambda: len(run_ids & set(attempt_intervals(documents))) == slots, what=f"{slots} loaded slots"
    )
    released = time.time()
    (documents / "release").touch()
    wait_all_terminal(root, before + runs)
    intervals = attempt_intervals(documents)
    return max(intervals[run_id][0][1] for run_id in run_ids) - released


def test_two_workers_run_a_sleep_bound_load_at_least_1_8x_as_fast_as_one(
    root: Path, scale: dict[str, str]
) -> None:
    runs = 24
    with api(root, scale) as client:
        with worker_process(root, "worker-a", 4, scale):
            alone = loaded_span(root, client, runs, slots=4)
        with worker_process(root, "worker-a", 4, scale), worker_process(root, "worker-b", 4, scale):
            together = loaded_span(root, client, runs, slots=8)
    ratio = alone / together
    assert ratio >= 1.8, f"two workers ran {ratio:.2f}x as fast as one"


@contextmanager
def private_redis(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A Redis server of this test's own, keeping nothing on disk, as the machine's does."""
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _answers(port), what="redis to start")
        yield process
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=1).ping())
    except redis.ConnectionError:
        return False


def test_a_restarted_redis_loses_no_accepted_run(root: Path) -> None:
    port = free_port()
    settings = {
        "executor": "celery",
        "broker_url": f"redis://127.0.0.1:{port}/0",
        "pipeline": "tests.support.pipelines:worker_pipeline",
        "host_id": "api-host",
        "requeue_after_s": "1",
    }
    with private_redis(port) as broker, api(root, settings) as client:
        sent = {post(client, "sleep 0") for _ in range(3)}  # in the broker's queue, no worker yet
        wait_until(lambda: _queued_messages(port) == 3, what="three messages in the broker")
        broker.send_signal(signal.SIGKILL)  # the queue dies with the server
        broker.wait(30)
        during = {post(client, "sleep 0") for _ in range(2)}  # accepted while the broker is down
        with private_redis(port), worker_process(root, "worker-a", 2, settings):
            finished = wait_all_terminal(root, 5)
    assert set(finished) == sent | during
    assert {state.status.value for state in finished.values()} == {"completed"}


def _queued_messages(port: int) -> int:
    return int(redis.Redis(port=port).llen("runlane"))


def test_the_smoke_gate_passes_against_two_api_replicas_and_two_workers(tmp_path: Path) -> None:
    """The compose scale-out profile's shape: every process shares the output root, Redis and
    PostgreSQL; the gate creates on one replica while runs execute on the workers."""
    shutil.copytree(REPO_ROOT / "documents", tmp_path / "documents")
    with redis_prefix() as prefix, pg_schema() as schema:
        settings = {
            "executor": "celery",
            "broker_url": REDIS_URL,
            "broker_key_prefix": prefix,
            "database_url": DATABASE_URL,
            "database_schema": schema,
            "data_dir": str(tmp_path / "documents" / "data"),
        }
        with (
            uvicorn_server(tmp_path, **{**settings, "host_id": "api-1"}) as first,
            uvicorn_server(tmp_path, **{**settings, "host_id": "api-2"}) as second,
            worker_process(tmp_path, "worker-a", 2, settings),
            worker_process(tmp_path, "worker-b", 2, settings),
        ):
            command = [sys.executable, "-m", "app.scripts.test_async_backend_flow", "--base-url", first.url]
            command += ["--run-id", "scaled-1", "--enable-sql", "--poll-interval", "0.2"]
            command += ["--output-dir", str(tmp_path / "smoke")]
            result = subprocess.run(
                command, cwd=tmp_path, env=server_env(tmp_path), capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert "contract held: run scaled-1 ended completed" in result.stdout
            with httpx.Client(base_url=second.url, timeout=30) as other:
                answer = other.get("/api/v1/runs/scaled-1/output").json()
                again = other.post("/api/v1/runs", json={"question": "q", "run_id": "scaled-1"})
    assert "Renewable Power Programme" in answer["content"]
    assert again.status_code == 409  # the id is taken on every replica
    owner = states(tmp_path)["scaled-1"].owner
    assert owner is not None and owner.host in {"worker-a", "worker-b"}


def test_backpressure_and_idempotency_keys_hold_across_api_replicas(
    root: Path, scale: dict[str, str]
) -> None:
    settings = {**scale, "max_queued": "3"}
    with api(root, settings) as first, api(root, settings) as second:  # no worker: runs stay queued
        codes = [
            (first if n % 2 else second)
            .post("/api/v1/runs", json={"question": "sleep 0", "markdown_path": "documents"})
            .status_code
            for n in range(6)
        ]
        assert codes[:3] == [202, 202, 202] and set(codes[3:]) == {429}
        body = {"question": "sleep 0", "markdown_path": "documents"}
        headers = {"Idempotency-Key": "replicas-1"}
        with (
            api(root, {**scale, "max_queued": "10"}) as third,
            api(root, {**scale, "max_queued": "10"}) as fourth,
        ):
            made = third.post("/api/v1/runs", json=body, headers=headers)
            again = fourth.post("/api/v1/runs", json=body, headers=headers)
    assert made.status_code == 202 and again.status_code == 200
    assert again.json()["run_id"] == made.json()["run_id"]


def test_a_time_limit_stops_a_run_on_a_worker(root: Path, scale: dict[str, str]) -> None:
    with api(root, scale) as client, worker_process(root, "worker-a", 1, scale):
        body = {"question": "sleep 60", "markdown_path": "documents", "timeout_s": 1}
        run_id = client.post("/api/v1/runs", json=body).json()["run_id"]
        stopped = wait_status(client, run_id, "stopped")
    assert stopped["finish_reason"] == "timeout"
