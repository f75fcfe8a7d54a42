"""A damaged run is its own problem: it answers 500 RUN_STATE_UNREADABLE, stays deletable, and
start-up, upkeep, listing and every other run carry on."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from app.config import Settings
from app.runs.run_store import RunStore
from tests.api.routes.test_runs import assert_problem
from tests.conftest import running_app, wait_for_status, wait_until
from tests.support.owners import dead_owner
from tests.support.pipelines import instant_pipeline

REQUEST = {"question": "q", "markdown_path": "documents"}
STATE = "api_state.json"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:37])


def empty_list(path: Path) -> None:
    path.write_bytes(b"[]")


def fraction_out_of_range(path: Path) -> None:
    state = orjson.loads(path.read_bytes())
    state["progress"] = {"stage": "x", "stage_index": 0, "fraction": 7.5, "message": "", "seq": 1}
    path.write_bytes(orjson.dumps(state))


def folder_in_place(path: Path) -> None:
    path.unlink()
    path.mkdir()


def another_runs_id(path: Path) -> None:
    state = orjson.loads(path.read_bytes())
    state["run_id"] = "someone-else"
    path.write_bytes(orjson.dumps(state))


def fifo_in_place(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


DAMAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (truncate, "not valid JSON"),
    "a list": (empty_list, "api_state.json"),
    "out of range": (fraction_out_of_range, "progress.fraction"),
    "a folder": (folder_in_place, "cannot be read"),
    "another run's id": (another_runs_id, "names another run, 'someone-else'"),
    "a FIFO": (fifo_in_place, "cannot be read"),
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_run_is_reported_alone_and_can_be_deleted(
    settings: Settings, damage: tuple[Callable[[Path], None], str], runlane_logs: pytest.LogCaptureFixture
) -> None:
    spoil, reason = damage
    with running_app(settings, instant_pipeline) as client:
        healthy = [client.post("/api/v1/runs", json=REQUEST).json()["run_id"] for _ in range(3)]
        for run_id in healthy:
            wait_for_status(client, run_id, "completed")
        victim = healthy[1]
        spoil(settings.output_dir / victim / STATE)

        for path in (f"/api/v1/runs/{victim}/status", f"/api/v1/runs/{victim}"):
            body = assert_problem(client.get(path), 500, "RUN_STATE_UNREADABLE")
            assert reason in body["message"] and victim in body["message"]
        assert any(getattr(r, "path", "").endswith(f"{victim}/{STATE}") for r in runlane_logs.records)

        listing = client.get("/api/v1/runs")
        assert listing.status_code == 200
        listed = [item["run_id"] for item in listing.json()["runs"]]
        assert victim not in listed and set(listed) == set(healthy) - {victim}
        assert listing.json()["damaged_runs"] == 1
        assert "runlane_damaged_runs 1.0" in client.get("/metrics").text
        assert client.get("/api/v1/service-info").json()["runs"]["damaged"] == 1

        assert_problem(client.post(f"/api/v1/runs/{victim}/cancel"), 500, "RUN_STATE_UNREADABLE")
        assert client.delete(f"/api/v1/runs/{victim}").status_code == 204
        assert_problem(client.get(f"/api/v1/runs/{victim}/status"), 410, "RUN_GONE")
        assert client.get("/api/v1/runs").json()["damaged_runs"] == 0
        for run_id in set(healthy) - {victim}:
            assert client.get(f"/api/v1/runs/{run_id}/status").status_code == 200


def orphan(store: RunStore) -> str:
    """A run left running by a server process that died."""
    run_id = store.create(REQUEST, None, 60).run_id
    assert store.claim(run_id, dead_owner()) is not None
    return run_id


def orphan_appearing_in(output: Path, scratch: Path) -> str:
    """An orphan that appears in a live server's output root at once, already running (so the
    server cannot claim it first); only the server's periodic index check finds it."""
    run_id = orphan(RunStore(scratch))
    os.rename(scratch / run_id, output / run_id)
    return run_id


def test_start_up_and_upkeep_carry_on_past_a_truncated_running_run(settings: Settings) -> None:
    store = RunStore(settings.output_dir)
    damaged = orphan(store)
    truncate(settings.output_dir / damaged / STATE)
    left_running = orphan(store)
    left_queued = store.create(REQUEST, None, 60).run_id
    with running_app(settings, instant_pipeline) as client:  # start-up must not fail
        failed = wait_for_status(client, left_running, "failed")
        assert failed["finish_reason"] == "interrupted"
        wait_for_status(client, left_queued, "completed")
        assert_problem(client.get(f"/api/v1/runs/{damaged}/status"), 500, "RUN_STATE_UNREADABLE")


def test_upkeep_carries_on_when_a_run_is_damaged_while_the_server_runs(
    settings: Settings, tmp_path: Path
) -> None:
    with running_app(settings, instant_pipeline) as client:
        damaged = orphan_appearing_in(settings.output_dir, tmp_path / "elsewhere")
        truncate(settings.output_dir / damaged / STATE)
        later = orphan_appearing_in(settings.output_dir, tmp_path / "elsewhere")
        assert wait_for_status(client, later, "failed")["finish_reason"] == "interrupted"
        queued = client.post("/api/v1/runs", json=REQUEST).json()["run_id"]
        wait_for_status(client, queued, "completed")


def test_a_garbled_request_file_of_an_older_run_is_reported_not_an_internal_error(settings: Settings) -> None:
    with running_app(settings, instant_pipeline) as client:
        run_id = client.post("/api/v1/runs", json=REQUEST).json()["run_id"]
        wait_for_status(client, run_id, "completed")
        state_path = settings.output_dir / run_id / STATE
        state = orjson.loads(state_path.read_bytes())
        state["request"] = None  # as runs made before the request moved into the state
        state_path.write_bytes(orjson.dumps(state))
        (settings.output_dir / run_id / "request.json").write_bytes(b"{garbled")
        wait_until(lambda: client.get(f"/api/v1/runs/{run_id}").status_code == 500, what="the new state")
        body = assert_problem(client.get(f"/api/v1/runs/{run_id}"), 500, "RUN_STATE_UNREADABLE")
        assert "request.json" in body["message"]
        assert client.get(f"/api/v1/runs/{run_id}/status").status_code == 200


def test_a_stray_folder_is_marked_damaged_once_not_logged_at_every_pass(
    settings: Settings, runlane_logs: pytest.LogCaptureFixture
) -> None:
    from app.runs.run_reaper import RunReaper

    store = RunStore(settings.output_dir)
    (settings.output_dir / "stray-folder").mkdir()
    reaper = RunReaper(store, orphan_after_s=30, timeout_grace_s=0)
    for _ in range(3):
        reaper.reconcile_index()
    damaged_lines = [r for r in runlane_logs.records if r.getMessage() == "damaged run"]
    assert len(damaged_lines) == 1
    assert store.index.count("damaged") == 1
    shutil.rmtree(settings.output_dir / "stray-folder")
    reaper.reconcile_index()
    assert store.index.count("damaged") == 0
