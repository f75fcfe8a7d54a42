"""pin_cpu=auto: one CPU while it pays; long pipelines let out, crowded CPUs left, strays put back.

Pinning is per process, so every case that pins runs in a child process or a server: the test
runner itself is never pinned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app.runs.cpu_placement import CpuSample, crowded
from tests.runs.test_cpu_affinity import ALLOWED, held, task_cpus
from tests.support.server import REPO_ROOT, Server, uvicorn_server

needs_two_cpus = pytest.mark.skipif(len(ALLOWED) < 2, reason="pinning needs a process allowed on 2+ CPUs")


def sample(at: float, own: float, busy: dict[int, float]) -> CpuSample:
    return CpuSample(at, own, busy)


def test_a_cpu_is_crowded_when_others_use_a_quarter_of_it_and_another_cpu_idles() -> None:
    before = sample(0.0, 0.0, {0: 0.0, 1: 0.0})
    # Over 4 s this process used 1 s of CPU 0 and others 1.2 s; CPU 1 was busy 1 s of 4.
    assert crowded(before, sample(4.0, 1.0, {0: 2.2, 1: 1.0}), 0)


def test_a_cpu_the_process_fills_itself_is_not_crowded() -> None:
    before = sample(0.0, 0.0, {0: 0.0, 1: 0.0})
    assert not crowded(before, sample(4.0, 3.8, {0: 4.0, 1: 0.5}), 0)


def test_a_crowded_cpu_is_kept_when_no_other_cpu_has_room() -> None:
    before = sample(0.0, 0.0, {0: 0.0, 1: 0.0})
    assert not crowded(before, sample(4.0, 1.0, {0: 4.0, 1: 3.5}), 0)


def test_only_the_cpus_that_were_sampled_count() -> None:
    before = sample(0.0, 0.0, {0: 0.0})
    assert not crowded(before, sample(4.0, 0.0, {0: 4.0}), 0)  # no other CPU to go to
    assert not crowded(before, sample(4.0, 0.0, {0: 4.0}), 1)  # a CPU not sampled
    assert not crowded(before, before, 0)  # an empty window


# A child pins itself under auto with fast ticks: a pipeline slot runs short, then long (and
# starts a thread meanwhile), and the answer says where each thread could run at each point.
# Nothing hangs on timing or on the machine's load: the watcher's readings are counted, say
# that nothing else ran (so no window finds the CPU crowded), and are held back while a thread
# is looked at, so that no window's put-back can come in between.
SLOTS = """
import json, os, sys, threading, time
from pathlib import Path
from app.runs.cpu_placement import CpuPlacement, CpuSample

here = lambda: sorted(os.sched_getaffinity(0))

def wait_until(check):
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.01)

readings = []
hold, holding, release = threading.Event(), threading.Event(), threading.Event()

def gated(cpus):
    if hold.is_set():
        holding.set()
        release.wait()
    readings.append(cpus)
    return CpuSample(time.monotonic(), 0.0, dict.fromkeys(cpus, 0.0))

placement = CpuPlacement(
    "auto", Path(sys.argv[1]), tick_s=0.02, widen_after_s=60, window_ticks=1, sample=gated
)
placement.start()
answer = {"cpu": placement.cpu, "allowed": placement.allowed}
# Short: the slot is younger than widen_after_s at each of the watcher's next ticks.
placement.enter_slot()
seen = len(readings)
wait_until(lambda: len(readings) >= seen + 3)
answer["short"] = here()
placement.leave_slot()
placement.widen_after_s = 0.2
placement.enter_slot()
wait_until(lambda: here() != [placement.cpu])
answer["long"] = here()
hold.set()
wait_until(holding.is_set)  # the watcher waits in its next window's reading
stray_done = threading.Event()
stray = threading.Thread(target=stray_done.wait, daemon=True)
stray.start()
answer["stray_at_start"] = sorted(os.sched_getaffinity(stray.native_id))
placement.leave_slot()
answer["after_long"] = here()
hold.clear()
release.set()
wait_until(lambda: sorted(os.sched_getaffinity(stray.native_id)) == [placement.cpu])
answer["stray_later"] = sorted(os.sched_getaffinity(stray.native_id))
stray_done.set()
placement.stop()
print(json.dumps(answer))
"""


def run_child(script: str, *args: str) -> tuple[dict[str, object], str]:
    """What a child script printed as JSON, and its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer, done.stderr


@needs_two_cpus
def test_a_pipeline_that_runs_long_may_use_every_cpu_until_it_returns(tmp_path: Path) -> None:
    answer, _ = run_child(SLOTS, str(tmp_path / "locks"))
    cpu = answer["cpu"]
    assert cpu in ALLOWED
    assert answer["allowed"] == ALLOWED
    assert answer["short"] == [cpu]  # a short pipeline never moves
    assert answer["long"] == ALLOWED
    assert answer["stray_at_start"] == ALLOWED  # started by the let-out thread: it inherits
    assert answer["after_long"] == [cpu]
    assert answer["stray_later"] == [cpu]  # put back at the end of a window


# A child under auto, its pipeline (the main thread, in a slot) never long enough to be let out,
# starting processes: one that picks its own CPU, one that does not, one that starts another;
# then, its pipeline over, one more.
CHILD_PROCESSES = """
import json, os, subprocess, sys, time
from pathlib import Path
from app.runs.cpu_placement import CpuPlacement, CpuSample

here = lambda pid: sorted(os.sched_getaffinity(pid))
quiet = lambda cpus: CpuSample(time.monotonic(), 0.0, dict.fromkeys(cpus, 0.0))

def wait_until(check):
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.01)

def start(code, *args):
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )

WAIT = "import sys; sys.stdin.read()"
placement = CpuPlacement(
    "auto", Path(sys.argv[1]), tick_s=0.02, widen_after_s=60, window_ticks=10**6, sample=quiet
)
placement.start()
other = next(cpu for cpu in placement.allowed if cpu != placement.cpu)
placement.enter_slot()
CHOOSE = "import os, sys; os.sched_setaffinity(0, {int(sys.argv[1])}); print(flush=True); "
chooser = start(CHOOSE + WAIT, str(other))
chooser.stdout.readline()  # it has chosen before the others start: every scan that frees them sees it
plain = start(WAIT)
parent = start(
    "import subprocess, sys; "
    "child = subprocess.Popen([sys.executable, '-c', sys.argv[1]], stdin=subprocess.PIPE); "
    "print(child.pid, flush=True); sys.stdin.read(); child.stdin.close(); child.wait()",
    WAIT,
)
grandchild = int(parent.stdout.readline())
wait_until(lambda: here(plain.pid) == here(grandchild) == placement.allowed)
answer = {
    "cpu": placement.cpu,
    "other": other,
    "plain": here(plain.pid),
    "grandchild": here(grandchild),
    "chooser": here(chooser.pid),
    "slot_thread": here(0),
}
placement.leave_slot()
late = start(WAIT)  # no pipeline runs now: the end of a window frees it
answer["late_at_start"] = here(late.pid)
placement.window_ticks = 3
wait_until(lambda: here(late.pid) == placement.allowed)
answer["late"] = here(late.pid)
placement.stop()
for process in (chooser, plain, parent, late):
    process.stdin.close()
    process.wait()
print(json.dumps(answer))
"""


@needs_two_cpus
def test_processes_the_server_starts_get_every_cpu_unless_they_chose_their_own(tmp_path: Path) -> None:
    answer, _ = run_child(CHILD_PROCESSES, str(tmp_path / "locks"))
    cpu = answer["cpu"]
    assert cpu in ALLOWED
    assert answer["plain"] == answer["grandchild"] == ALLOWED
    assert answer["chooser"] == [answer["other"]]
    assert answer["slot_thread"] == [cpu]  # the short pipeline itself stays on the CPU
    assert answer["late_at_start"] == [cpu]  # inherited: only the window's scan frees it
    assert answer["late"] == ALLOWED


# A child under auto whose CPU readings are faked: crowded until told otherwise, then quiet,
# with the other CPU the less busy one.
CROWDING = """
import json, os, sys, threading, time
from pathlib import Path
from app.runs.cpu_placement import CpuPlacement, CpuSample

crowd = threading.Event()
crowd.set()
load = {}
readings = []  # (when, the CPU held then): the window ending there decides the next one

def fake_sample(cpus):
    now = time.monotonic()
    readings.append((now, placement.cpu))
    for cpu in cpus:
        share = 0.9 if crowd.is_set() and cpu == placement.cpu else 0.1 if cpu == cpus[-1] else 0.2
        load[cpu] = load.get(cpu, 0.0) + share * (now - load.get("at", now))
    load["at"] = now
    return CpuSample(now, time.process_time(), {cpu: load[cpu] for cpu in cpus})

placement = CpuPlacement(
    "auto", Path(sys.argv[1]), tick_s=0.02, window_ticks=5, backoff_s=(0.3, 5.0), sample=fake_sample
)
placement.start()
first = placement.cpu
worker = threading.Thread(target=crowd.wait)  # any thread of the process
worker.start()
everywhere = lambda: {len(os.sched_getaffinity(t)) for t in map(int, os.listdir("/proc/self/task"))}

def wait_until(check):
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.01)

wait_until(lambda: placement.cpu is None and everywhere() == {len(placement.allowed)})
crowd.clear()
wait_until(lambda: placement.cpu is not None and everywhere() == {1})
placement.stop()
# The windows that decided: the last one ending pinned before the first ending unpinned, and
# the last one ending unpinned.
first_unpinned = next(i for i, (_, cpu) in enumerate(readings) if cpu is None)
unpinned_at = readings[first_unpinned - 1][0]
repinned_at = [when for when, cpu in readings if cpu is None][-1]
answer = {
    "first": first,
    "again": placement.cpu,
    "waited": repinned_at - unpinned_at,
    "threads": sorted({c for t in map(int, os.listdir("/proc/self/task")) for c in os.sched_getaffinity(t)}),
}
print(json.dumps(answer))
"""


@needs_two_cpus
def test_a_crowded_cpu_is_left_and_the_least_busy_one_tried_after_a_back_off(tmp_path: Path) -> None:
    answer, _ = run_child(CROWDING, str(tmp_path / "locks"))
    assert answer["first"] == ALLOWED[0]
    assert answer["again"] == ALLOWED[-1]  # the least busy CPU in the last window
    assert answer["threads"] == [ALLOWED[-1]]
    assert answer["waited"] >= 0.3  # not before the back-off


@needs_two_cpus
def test_a_crowded_process_keeps_its_cpu_lock_and_skips_a_cpu_another_holds(tmp_path: Path) -> None:
    """Another Runlane process of the host must not take the CPU a crowded process left."""
    locks = tmp_path / "locks"
    with held(locks, ALLOWED[1:]):  # every CPU but the first belongs to other processes
        child = subprocess.Popen(
            [sys.executable, "-c", CROWDING, str(locks)],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            def wait_for(placement: set[tuple[int, ...]]) -> None:
                deadline = time.monotonic() + 30
                while {tuple(cpus) for cpus in task_cpus(child.pid).values()} != placement:
                    assert time.monotonic() < deadline, task_cpus(child.pid)
                    time.sleep(0.005)

            wait_for({(ALLOWED[0],)})
            wait_for({tuple(ALLOWED)})  # crowded out
            with pytest.raises(BlockingIOError), held(locks, ALLOWED[:1]):
                pass
            out, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert child.returncode == 0, err
    answer = json.loads(out)
    assert answer["first"] == answer["again"] == ALLOWED[0]  # the less busy CPU is held


@contextmanager
def default_server_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline: str
) -> Iterator[tuple[Server, Path, str]]:
    """A server with default settings (so pinned under auto) and one run of `pipeline`: the
    server, the run's documents folder and its status URL."""
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "note.md").write_text("# Note\n\nSolar subsidies fund rooftop panels.\n")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # its own CPU locks: nothing else competes
    monkeypatch.delenv("RUNLANE_PIN_CPU", raising=False)
    with uvicorn_server(tmp_path, pipeline=f"tests.support.pipelines:{pipeline}") as server:
        body = {"question": "Solar?", "markdown_path": "documents"}
        run_id = httpx.post(f"{server.url}/api/v1/runs", json=body, timeout=30).json()["run_id"]
        yield server, documents, f"{server.url}/api/v1/runs/{run_id}/status"


def release_and_wait_completed(documents: Path, status_url: str, deadline: float) -> None:
    (documents / "release").touch()
    while httpx.get(status_url).json()["status"] != "completed":
        assert time.monotonic() < deadline, "the run never finished"
        time.sleep(0.05)


@needs_two_cpus
def test_by_default_a_server_pins_its_threads_and_lets_a_long_pipeline_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with default_server_running(tmp_path, monkeypatch, "file_gated_pipeline") as (
        server,
        documents,
        status_url,
    ):

        def placements() -> list[list[int]]:
            return sorted(task_cpus(server.process.pid).values())

        deadline = time.monotonic() + 60
        while placements().count(ALLOWED) != 1:  # the pipeline's thread, once it has run long
            assert time.monotonic() < deadline, placements()
            time.sleep(0.05)
        others = [cpus for cpus in placements() if cpus != ALLOWED]
        assert len(others) >= 3
        assert len({tuple(cpus) for cpus in others}) == 1 and len(others[0]) == 1
        release_and_wait_completed(documents, status_url, deadline)
        while placements().count(ALLOWED):  # back on the server's CPU
            assert time.monotonic() < deadline, placements()
            time.sleep(0.05)
        assert {tuple(cpus) for cpus in placements()} == {tuple(others[0])}


@needs_two_cpus
def test_by_default_a_process_a_pipeline_starts_gets_every_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with default_server_running(tmp_path, monkeypatch, "child_process_pipeline") as (
        server,
        documents,
        status_url,
    ):
        deadline = time.monotonic() + 60
        while not (documents / "child.pid").exists():
            assert time.monotonic() < deadline, "the pipeline never started its process"
            time.sleep(0.05)
        child = int((documents / "child.pid").read_text())
        pinned = [cpus for cpus in task_cpus(server.process.pid).values() if cpus != ALLOWED]
        assert len(pinned) >= 3 and all(len(cpus) == 1 for cpus in pinned)  # the server is pinned
        while any(cpus != ALLOWED for cpus in task_cpus(child).values()):
            assert time.monotonic() < deadline, task_cpus(child)
            time.sleep(0.05)
        release_and_wait_completed(documents, status_url, deadline)


# A child whose CPU readings cannot be had: pipelines are still let out, and it says so once.
NO_READINGS = """
import json, logging, os, sys, time
from pathlib import Path
from app.runs.cpu_placement import CpuPlacement

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
calls = []

def unreadable(cpus):
    calls.append(cpus)
    raise PermissionError("/proc/stat")

placement = CpuPlacement(
    "auto", Path(sys.argv[1]), tick_s=0.02, widen_after_s=0.1, window_ticks=2, sample=unreadable
)
placement.start()
placement.enter_slot()
deadline = time.monotonic() + 30
while sorted(os.sched_getaffinity(0)) == [placement.cpu]:
    assert time.monotonic() < deadline, "never let out"
    time.sleep(0.01)
placement.leave_slot()
time.sleep(0.2)  # ten more ticks, five windows
placement.stop()
print(json.dumps({"cpu": placement.cpu, "after": sorted(os.sched_getaffinity(0)), "readings": len(calls)}))
"""


@needs_two_cpus
def test_without_cpu_readings_long_pipelines_are_still_let_out_and_it_is_said_once(tmp_path: Path) -> None:
    answer, stderr = run_child(NO_READINGS, str(tmp_path / "locks"))
    assert answer["cpu"] in ALLOWED
    assert answer["after"] == [answer["cpu"]]
    assert answer["readings"] == 1
    assert stderr.count("CPU readings unavailable") == 1
    assert "Traceback" not in stderr


# A child under auto that stays crowded: the time unpinned before each new try doubles.
ALWAYS_CROWDED = """
import json, sys, time
from pathlib import Path
from app.runs.cpu_placement import CpuPlacement, CpuSample

load = {}
readings = []  # (when, the CPU held then): the window ending there decides the next one

def crowded_sample(cpus):
    now = time.monotonic()
    readings.append((now, placement.cpu))
    for cpu in cpus:
        load[cpu] = load.get(cpu, 0.0) + (0.9 if cpu == placement.cpu else 0.0) * (now - load.get("at", now))
    load["at"] = now
    return CpuSample(now, time.process_time(), {cpu: load[cpu] for cpu in cpus})

placement = CpuPlacement(
    "auto", Path(sys.argv[1]), tick_s=0.02, window_ticks=3, backoff_s=(0.2, 5.0), sample=crowded_sample
)
placement.start()

def changes():  # (the CPU held after, when the window that decided it ended)
    seen = list(readings)
    return [(later[1], earlier[0]) for earlier, later in zip(seen, seen[1:]) if later[1] != earlier[1]]

deadline = time.monotonic() + 60
while len(changes()) < 4:
    assert time.monotonic() < deadline, changes()
    time.sleep(0.01)
placement.stop()
print(json.dumps({"changes": changes()[:4]}))
"""


@needs_two_cpus
def test_a_cpu_crowded_again_and_again_is_tried_less_and_less_often(tmp_path: Path) -> None:
    answer, _ = run_child(ALWAYS_CROWDED, str(tmp_path / "locks"))
    (off1, t1), (on1, t2), (off2, t3), (on2, t4) = answer["changes"]  # type: ignore[misc]
    assert off1 is None and off2 is None and on1 in ALLOWED and on2 in ALLOWED
    assert t2 - t1 >= 0.2
    assert t4 - t3 >= 0.4  # doubled
