"""Benchmark of a run's whole lifecycle with a pipeline that does nothing; prints figures only.

    .venv/bin/python scripts/bench_lifecycle.py [--seconds 5] [--history 100000]
    .venv/bin/python scripts/bench_lifecycle.py --executor celery   # the scale-out figures
    .venv/bin/python scripts/bench_lifecycle.py --pin-cpu false   # RUNLANE_PIN_CPU (default auto)
    .venv/bin/python scripts/bench_lifecycle.py --pin-cpu --workers 2   # throughput of two processes

One uvicorn process serves the real app with a no-op pipeline; `wrk` (C, with a Lua script)
drives POSTs so the load generator is not the bottleneck, and completions are counted on the
server side (its index, through /api/v1/service-info).  Figures:
  * throughput: runs from POST to terminal per second, next to Celery 5 on the machine's Redis
    running the same no-op work (its producer and a prefork worker), in interleaved rounds
    (`--rounds`, medians), since the machine's other load moves both sides;
  * server CPU per run (utime + stime of the server process and its disk workers) and fsyncs per
    run (strace);
  * the whole machine's CPU per run and per Celery job (/proc/stat) over the same windows;
  * POST p50/p99 on one connection: idle, with 100 and with --history runs on disk (the ratio
    of the two in `--rounds` interleaved pairs of servers, medians), and while the default
    pipeline keeps the executor busy; next to the idle figure, what the disk alone
    makes a POST wait (the store's writer publishing a run folder durably, nothing else running);
  * pickup: created_at -> started_at of sequential runs on an idle server.
It first deletes what its earlier runs left and waits (`--settle`) until a new inode costs what
it does on a quiet disk: this machine's ext4 has no journal, and after a large deletion every
file created costs far more for minutes.  So it leaves its own files for the next run to delete.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from app.api.http_protocol import SERVER_OPTIONS  # noqa: E402
from app.modules.contract import PipelineResult, RunContext  # noqa: E402
from app.runs.run_reaper import RunReaper  # noqa: E402
from app.runs.run_state import RunState, RunStatus, iso, parse_iso, utc_now  # noqa: E402
from app.runs.run_store import RunStore  # noqa: E402
from app.runs.state_file import STATE_FILE  # noqa: E402
from app.runs.store_writer import Change, StoreWriter  # noqa: E402

BODY = b'{"question": "noop", "markdown_path": "documents"}'
LUA = f"""wrk.method = "POST"
wrk.body = '{BODY.decode()}'
wrk.headers["Content-Type"] = "application/json"
"""
TICKS = os.sysconf("SC_CLK_TCK")
URL_ROOTS: dict[str, Path] = {}


NOOP = "bench_lifecycle:noop_pipeline"


def noop_pipeline(ctx: RunContext) -> PipelineResult:
    """Does nothing, as the benchmark's Celery task does nothing."""
    return PipelineResult("completed", "answered", "# noop\n", {"question": ctx.options.question})


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(root: Path, pipeline: str, workers: int = 1, **settings: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'scripts'}",
        "RUNLANE_OUTPUT_DIR": str(root / "output"),
        "RUNLANE_DOCUMENTS_ROOT": str(root),
        "RUNLANE_PIPELINE": pipeline,
        "RUNLANE_MAX_QUEUED": "1000000",
        "RUNLANE_LOG_LEVEL": "WARNING",
        "RUNLANE_DATA_DIR": str(REPO_ROOT / "documents" / "data"),
        **{f"RUNLANE_{key.upper()}": value for key, value in settings.items()},
    }
    command = [sys.executable, "-m", "uvicorn", "app.api.main:app", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log", *SERVER_OPTIONS]
    if workers > 1:
        command += ["--workers", str(workers)]
    # A session of its own: its process group is the server and any worker processes.
    log = root / f"server-{port}.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=root, env=env, stderr=stderr, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    URL_ROOTS[url] = root
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            raise RuntimeError(f"the server did not become ready:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    try:
        yield url, process.pid
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


QUIET_INODE_US = 100.0  # a quiet disk here: about 40 us of CPU per new inode


def inode_cost_us(folder: Path, count: int = 200) -> float:
    """CPU per new inode in `folder` now.  On ext4 without a journal (this machine's) it grows
    with what was deleted in the last minutes, since every inode freed lately is skipped when
    one is allocated; the probe's folders stay until the benchmark's own clean-up."""
    probe = Path(tempfile.mkdtemp(prefix="inode-probe-", dir=folder))
    started = time.process_time()
    for number in range(count):
        (probe / str(number)).mkdir()
    return (time.process_time() - started) * 1e6 / count


QUIET_PROBES = 3  # in a row, 10 s apart: the slow state sets in some seconds after a deletion
TRASH_PREFIX = "runlane-bench-trash-"


def settle(folder: Path, limit_s: float) -> None:
    """Delete what earlier runs of this script left, then wait (up to `limit_s`) until new
    inodes cost what they do on a quiet disk, so that figures are not inflated by a clean-up
    (an earlier run, a test run).  One quiet probe is not enough: the slow state begins some
    seconds after a large deletion and comes and goes for minutes."""
    trash = sorted(Path(tempfile.gettempdir()).glob(f"{TRASH_PREFIX}*"))
    for old in trash:
        shutil.rmtree(old, ignore_errors=True)
    if trash:
        print(f"deleted {len(trash)} earlier benchmark folders; waiting for the file system to settle")
    os.sync()
    deadline = time.monotonic() + limit_s
    quiet = 0
    while True:
        cost = inode_cost_us(folder)
        quiet = quiet + 1 if cost <= QUIET_INODE_US else 0
        if quiet >= QUIET_PROBES or time.monotonic() >= deadline:
            break
        time.sleep(10)
    note = "" if quiet >= QUIET_PROBES else " (not settled: the figures below are inflated)"
    print(f"file system: {cost:.0f} us of CPU per new inode{note}")


def clean_up(root: Path) -> None:
    """Left for the next run to delete before it settles: deleting tens of thousands of run
    folders now would slow the file system for the first minutes of a run that follows."""
    trash = root.with_name(TRASH_PREFIX + root.name)
    root.rename(trash)
    print(f"benchmark files left in {trash} (the next run deletes them first; rm -r is safe)")


def creation_floor_ms(root: Path, count: int = 200) -> tuple[float, float]:
    """What the disk alone makes a POST wait for: the store's writer publishing a new run folder
    durably (stage its state file, sync, rename the folder into place, sync), one at a time,
    with nothing else running.  p50 and p99 in ms."""
    output = root / "creation-floor"
    (output / ".staging").mkdir(parents=True)
    writer = StoreWriter(str(output), lambda rows: None)
    times = []
    try:
        for number in range(count):
            change = Change(
                f"{output}/.staging/{number}", {STATE_FILE: b"x" * 700}, publish=f"{output}/{number}"
            )
            started = time.perf_counter()
            writer.write(change)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        writer.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def group(pid: int) -> list[int]:
    """A server's processes: itself, its disk workers and, with --workers, every process of its
    group."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == pid:
                found.append(int(entry.name))
        except ProcessLookupError:
            continue
    return found


def cpu_s(pid: int) -> float:
    """CPU seconds of a server's processes (see `group`)."""
    total = 0.0
    for member in group(pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += sum(cpu_split(member))
    return total


def machine_cpu_s() -> float:
    """CPU seconds every process of the machine has used (the load generator, Redis, ...)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / TICKS  # all but idle and iowait


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def finished(url: str) -> int:
    """Terminal runs, read from the server's index directly so that counting costs it nothing."""
    index = URL_ROOTS[url] / "output" / ".runlane" / "index.sqlite3"
    with sqlite3.connect(f"file:{index}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM runs WHERE status IN ('completed','completed_with_gaps','failed','stopped')"
        ).fetchone()
    return int(row[0])


def wrk(url: str, seconds: float, connections: int, script: Path) -> str:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"wrk failed: {done.stdout}{done.stderr}")
    out = done.stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} POSTs were refused:\n{out}")
    return out


def percentile_ms(out: str, label: str) -> float:
    match = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
    assert match, out
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def throughput(url: str, pid: int, seconds: float, script: Path) -> tuple[float, float, int]:
    """Runs/s from the first POST to the last terminal state, and server CPU ms per run."""
    before, cpu_before, started = finished(url), cpu_s(pid), time.monotonic()
    out = wrk(f"{url}/api/v1/runs", seconds, 16, script)
    posted = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    while finished(url) - before < posted:
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    return posted / elapsed, (cpu_s(pid) - cpu_before) * 1000 / posted, posted


def fsyncs_per_run(url: str, pid: int, script: Path) -> float:
    tracer = subprocess.Popen(
        ["strace", "-f", "-c", "-e", "trace=fsync,fdatasync,syncfs,sync_file_range"]
        + [argument for member in group(pid) for argument in ("-p", str(member))],
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)  # strace attaches to every thread
    before = finished(url)
    out = wrk(f"{url}/api/v1/runs", 2, 4, script)
    posted = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    while finished(url) - before < posted:
        time.sleep(0.01)
    time.sleep(0.5)
    tracer.send_signal(signal.SIGINT)
    report = tracer.communicate(timeout=30)[1]
    rows = re.finditer(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+\d*\s*(\w+)$", report, re.M)
    calls = sum(int(row.group(1)) for row in rows if row.group(2) != "total")
    return calls / posted


def post_latency(url: str, seconds: float, script: Path) -> tuple[float, float]:
    out = wrk(f"{url}/api/v1/runs", seconds, 1, script)
    return percentile_ms(out, "50"), percentile_ms(out, "99")


def pickup_ms(url: str, count: int = 60) -> float:
    """Median of created_at -> started_at (server clocks, millisecond resolution)."""
    delays = []
    with httpx.Client(timeout=30) as client:
        for _ in range(count):
            posted = client.post(
                f"{url}/api/v1/runs", content=BODY, headers={"content-type": "application/json"}
            )
            run = posted.json()["run_id"]
            while (status := client.get(f"{url}/api/v1/runs/{run}/status").json())["started_at"] is None:
                time.sleep(0.002)
            waited = parse_iso(status["started_at"]) - parse_iso(status["created_at"])
            delays.append(waited.total_seconds() * 1000)
            time.sleep(0.02)  # idle between runs
    return statistics.median(delays)


def seed_history(root: Path, count: int) -> None:
    """`count` finished runs on disk, written quickly (no fsync: they only need to exist)."""
    output = root / "output"
    stamp = iso(utc_now())
    assert stamp is not None
    for number in range(count):
        run_id = f"history-{number:07d}"
        state = RunState(
            run_id=run_id,
            status=RunStatus.COMPLETED,
            created_at=stamp,
            updated_at=stamp,
            completed_at=stamp,
            timeout_s=60,
            request={"question": "old"},
        )
        (output / run_id).mkdir(parents=True)
        (output / run_id / STATE_FILE).write_bytes(state.model_dump_json().encode())
    RunReaper(RunStore(output), orphan_after_s=30, timeout_grace_s=0).reconcile_index()
    # A history is old: on disk, not still in the page cache waiting for write-back (which the
    # server's first syncs would otherwise pay for).
    os.sync()


# -- Celery on Redis, the same no-op work --------------------------------------------------------

BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/15")


def celery_app() -> object:
    from celery import Celery

    app = Celery("bench_lifecycle", broker=BROKER)
    app.conf.update(task_ignore_result=True, worker_prefetch_multiplier=4, worker_hijack_root_logger=False)

    @app.task(name="bench.noop")
    def noop(counter: str) -> None:
        import redis

        redis.Redis.from_url(BROKER).incr(counter)

    return app


def celery_throughput(jobs: int, workers: int = 1) -> tuple[float, float]:
    """No-op jobs/s from the first send to the last completion, prefork workers of 2 processes,
    and the machine's CPU ms per job meanwhile (producer, workers and Redis)."""
    import redis

    queue = f"bench-{os.getpid()}"
    counter = f"{queue}-done"
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'scripts'}"}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bench_lifecycle:celery",
                "worker",
                "-Q",
                queue,
                "--pool",
                "prefork",
                "--concurrency",
                "2",
                "--loglevel",
                "warning",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"bench-{number}@%h",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for number in range(workers)
    ]
    client = redis.Redis.from_url(BROKER)
    try:
        app = celery
        app.send_task("bench.noop", args=["warm-up"], queue=queue)
        while client.get("warm-up") is None:
            time.sleep(0.05)
        client.delete("warm-up", counter)
        started, machine_before = time.monotonic(), machine_cpu_s()
        for _ in range(jobs):
            app.send_task("bench.noop", args=[counter], queue=queue)
        while int(client.get(counter) or 0) < jobs:
            time.sleep(0.005)
        elapsed, machine_ms = time.monotonic() - started, (machine_cpu_s() - machine_before) * 1000 / jobs
        return jobs / elapsed, machine_ms
    finally:
        for worker in processes:
            worker.terminate()
        for worker in processes:
            worker.wait(30)
        client.delete(counter, queue)


celery = celery_app()


@contextmanager
def runlane_workers(root: Path, count: int, settings: dict[str, str]) -> Iterator[None]:
    """`count` `runlane worker` processes (prefork pools of 2, like the raw Celery workers)."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'scripts'}",
        "RUNLANE_OUTPUT_DIR": str(root / "output"),
        "RUNLANE_DOCUMENTS_ROOT": str(root),
        "RUNLANE_LOG_LEVEL": "WARNING",
        **{f"RUNLANE_{key.upper()}": value for key, value in settings.items()},
    }
    processes = []
    for number in range(count):
        with (root / f"worker-{number}.log").open("wb") as sink:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", "from app.cli import main; main()", "worker", "--concurrency=2"],
                    cwd=root,
                    env={**env, "RUNLANE_HOST_ID": f"bench-worker-{number}"},
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:
        yield
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(60)


def warm_up(url: str, runs: int) -> None:
    """A few runs through every worker process before measuring (connections, imports)."""
    before = finished(url)
    with httpx.Client(timeout=30) as client:
        for _ in range(runs):
            client.post(f"{url}/api/v1/runs", content=BODY, headers={"content-type": "application/json"})
    while finished(url) - before < runs:
        time.sleep(0.02)


def celery_mode(root: Path, seconds: int, jobs: int, rounds: int, script: Path) -> None:
    """`--executor celery`: runs/s through the API with Runlane's Celery workers, next to raw
    Celery on the same broker and the same worker processes, with one and with two workers."""
    import redis

    for workers in (1, 2):
        rates, celery_rates = [], []
        for number in range(rounds):
            prefix = f"bench-{os.getpid()}-{workers}-{number}:"
            settings = {"executor": "celery", "broker_url": BROKER, "broker_key_prefix": prefix}
            folder = _fresh(root, f"celery-{workers}-{number}")
            try:
                with (
                    server(folder, NOOP, **settings) as (url, pid),
                    runlane_workers(folder, workers, {**settings, "pipeline": NOOP}),
                ):
                    warm_up(url, workers * 4)
                    rate, _, _ = throughput(url, pid, seconds, script)
            finally:
                client = redis.Redis.from_url(BROKER)
                keys = list(client.scan_iter(match=f"{prefix}*"))
                if keys:
                    client.delete(*keys)
            rates.append(rate)
            celery_rates.append(celery_throughput(jobs, workers)[0])
        cost = [theirs / ours for ours, theirs in zip(rates, celery_rates, strict=True)]
        print(
            f"celery mode, {workers} worker(s) of 2 processes, median of {rounds} rounds: "
            f"{statistics.median(rates):,.0f} runs/s through the API; raw Celery "
            f"{statistics.median(celery_rates):,.0f} jobs/s -> cost per run {statistics.median(cost):.2f}x "
            f"bare Celery's (rounds: {', '.join(f'{c:.2f}x' for c in cost)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--celery-jobs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved Runlane/Celery throughput rounds")
    parser.add_argument(
        "--executor", choices=["threads", "celery"], default="threads", help="celery: the scale-out figures"
    )
    parser.add_argument(
        "--settle", type=float, default=300, help="seconds to wait at most for a quiet file system first"
    )
    parser.add_argument(
        "--pin-cpu",
        nargs="?",
        const="true",
        choices=["auto", "true", "false"],
        help="RUNLANE_PIN_CPU for the servers (without it, the server's default: auto)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes of the throughput rounds' servers"
    )
    args = parser.parse_args()
    if args.pin_cpu:
        os.environ["RUNLANE_PIN_CPU"] = args.pin_cpu  # the servers' environment starts from this one
    root = Path(tempfile.mkdtemp(prefix="runlane-bench-lifecycle-"))
    script = root / "post.lua"
    script.write_text(LUA)
    (root / "documents").mkdir()
    (root / "documents" / "note.md").write_text("# Note\n\nSolar subsidies fund rooftop panels.\n")
    settle(root, args.settle)
    if args.executor == "celery":
        try:
            celery_mode(root, args.seconds, args.celery_jobs, args.rounds, script)
        finally:
            clean_up(root)
        return
    try:
        with server(_fresh(root, "a"), NOOP) as (url, pid):
            pickup = pickup_ms(url)
            idle_p50, idle_p99 = post_latency(url, args.seconds, script)
            fsyncs = fsyncs_per_run(url, pid, script)
        # The machine's other load moves both sides; interleaved rounds and medians even it out.
        rates, cpus, celery_rates, machine_ms, celery_machine_ms = [], [], [], [], []
        for number in range(args.rounds):
            with server(_fresh(root, f"round-{number}"), NOOP, args.workers) as (url, pid):
                machine_before = machine_cpu_s()
                rate, cpu_ms, posted = throughput(url, pid, args.seconds, script)
                machine_ms.append((machine_cpu_s() - machine_before) * 1000 / posted)
            rates.append(rate)
            cpus.append(cpu_ms)
            celery_rate, celery_ms = celery_throughput(args.celery_jobs)
            celery_rates.append(celery_rate)
            celery_machine_ms.append(celery_ms)
        ratios = [ours / theirs for ours, theirs in zip(rates, celery_rates, strict=True)]
        processes = f" ({args.workers} uvicorn worker processes)" if args.workers > 1 else ""
        print(
            f"no-op lifecycle{processes}, median of {args.rounds} interleaved rounds: "
            f"{statistics.median(rates):,.0f} runs/s, "
            f"Celery 5 + Redis: {statistics.median(celery_rates):,.0f} jobs/s"
            f" -> {statistics.median(ratios):.2f}x (rounds: {', '.join(f'{r:.2f}x' for r in ratios)})"
        )
        print(f"server CPU per run: {statistics.median(cpus):.2f} ms; fsyncs per run: {fsyncs:.1f}")
        ours, theirs = statistics.median(machine_ms), statistics.median(celery_machine_ms)
        print(
            f"machine CPU per run (everything the machine ran meanwhile, load generator included): "
            f"{ours:.2f} ms; per Celery job (producer, workers, Redis): {theirs:.2f} ms"
            f" -> {ours / theirs:.2f}x"
        )
        print(f"POST latency, no-op pipeline, one connection: p50 {idle_p50:.2f} ms, p99 {idle_p99:.2f} ms")
        floor_p50, floor_p99 = creation_floor_ms(root)
        print(
            f"  the disk's share: a run folder published durably by the store's writer alone "
            f"(stage, sync, rename, sync): p50 {floor_p50:.2f} ms, p99 {floor_p99:.2f} ms"
        )
        print(f"pickup (created_at -> started_at), idle server: p50 {pickup:.1f} ms")
        small_p50, big_p50, history_ratios = history_cost(
            root, args.history, args.rounds, args.seconds, script
        )
        pairs = ", ".join(f"{ratio:.2f}x" for ratio in history_ratios)
        print(
            f"POST p50 with 100 runs on disk: {small_p50:.2f} ms; with {args.history:,}: {big_p50:.2f} ms"
            f" -> {statistics.median(history_ratios):.2f}x (interleaved pairs: {pairs})"
        )
        with server(_fresh(root, "busy"), "app.modules.orchestrator.module:run_pipeline") as (url, _):
            busy_p50, busy_p99 = post_latency(url, args.seconds, script)
        print(f"POST latency while the default pipeline runs: p50 {busy_p50:.2f} ms, p99 {busy_p99:.2f} ms")
        print_goals(
            [
                ("throughput against Celery", statistics.median(ratios), 1.0, True),
                ("server CPU per run, ms", statistics.median(cpus), 2.0, False),
                ("fsyncs per run", fsyncs, 8.0, False),
                ("POST p50, one connection, ms", idle_p50, 2.0, False),
                ("POST p99, one connection, ms", idle_p99, 10.0, False),
                ("POST p50 with a history, against 100 runs", statistics.median(history_ratios), 1.2, False),
                ("POST p50 beside the default pipeline, ms", busy_p50, 5.0, False),
                ("pickup p50, ms", pickup, 5.0, False),
            ]
        )
    finally:
        clean_up(root)


def print_goals(figures: list[tuple[str, float, float, bool]]) -> None:
    """Each figure against the issue's goal for it, so that a run's verdict needs no table
    beside it: (what, value, limit, whether the value must reach the limit rather than stay
    within it)."""
    print("against the goals:")
    for name, value, limit, reach in figures:
        met = value >= limit if reach else value <= limit
        bound = "at least" if reach else "at most"
        print(f"  {name}: {value:.2f} ({bound} {limit:g}: {'met' if met else 'MISSED'})")


def history_cost(
    root: Path, history: int, rounds: int, seconds: int, script: Path
) -> tuple[float, float, list[float]]:
    """POST p50 on one connection with 100 runs on disk and with `history`, in interleaved pairs
    of fresh servers (one pair alone moved by a fifth either way between servers of the same
    code).  The large history is seeded once; the small one anew for each pair, since every
    round adds thousands of runs.  Medians of both p50s, and each pair's ratio."""
    big = _fresh(root, "big")
    seed_history(big, history)
    small_p50s, big_p50s, ratios = [], [], []
    for number in range(rounds):
        small = _fresh(root, f"small-{number}")
        seed_history(small, 100)
        with server(small, NOOP) as (url, _):
            small_p50s.append(post_latency(url, seconds, script)[0])
        with server(big, NOOP) as (url, _):
            big_p50s.append(post_latency(url, seconds, script)[0])
        ratios.append(big_p50s[-1] / small_p50s[-1])
    return statistics.median(small_p50s), statistics.median(big_p50s), ratios


def _fresh(root: Path, name: str) -> Path:
    folder = root / name
    (folder / "documents").mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "documents", folder / "documents", dirs_exist_ok=True)
    return folder


if __name__ == "__main__":
    main()
