"""Benchmark of the answer pipeline; prints figures, asserts nothing.

    .venv/bin/python scripts/bench_pipeline.py [--files 1000] [--queries 200]

Generates a corpus of markdown files (about 5 KB each), then reports: index build time and
size, re-index time after changing 10 files, retrieval latency p50/p99, and the end-to-end
time of the extractive pipeline (warm index).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from app.modules.contract import RunContext, RunOptions  # noqa: E402
from app.modules.orchestrator.module import AnswerPipeline, PipelineConfig  # noqa: E402
from app.modules.search.passage_index import PassageIndex, index_path_for  # noqa: E402
from app.modules.search.text import keywords  # noqa: E402

TOPICS = [
    "solar",
    "wind",
    "hydrogen",
    "retrofit",
    "insulation",
    "forest",
    "methane",
    "flood",
    "transport",
    "rail",
    "cycling",
    "carbon",
    "price",
    "fund",
    "bond",
    "coal",
    "heat",
    "cooling",
    "recycling",
    "skills",
]
FILLER = (
    "programme region budget target year agency municipality plan measure report review progress "
    "investment household energy emission reduction capacity network storage grant loan"
).split()


def paragraph(rng: random.Random, topic: str) -> str:
    words = [rng.choice(FILLER) for _ in range(30)] + [topic] * 2
    rng.shuffle(words)
    return " ".join(words).capitalize() + "."


def generate(folder: Path, files: int, rng: random.Random) -> int:
    folder.mkdir(parents=True)
    total = 0
    for i in range(files):
        topic = rng.choice(TOPICS)
        sections = [f"# {topic.title()} initiative {i}\n\n{paragraph(rng, topic)}\n"]
        for s in range(9):
            body = f"{paragraph(rng, topic)}\n\n{paragraph(rng, topic)}"
            sections.append(f"## Section {s} on {rng.choice(TOPICS)}\n\n{body}\n")
        text = "\n".join(sections)
        (folder / f"doc{i:05d}.md").write_text(text)
        total += len(text)
    return total


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    root = Path(tempfile.mkdtemp(prefix="runlane-bench-pipeline-"))
    try:
        docs = root / "documents"
        size = generate(docs, args.files, rng)
        print(f"corpus: {args.files} markdown files, {size / 1e6:.1f} MB")
        index_file = index_path_for(root / "indexes", docs)
        started = time.perf_counter()
        stats = PassageIndex(index_file).sync(docs)
        build = time.perf_counter() - started
        megabytes = index_file.stat().st_size / 1e6
        print(f"index build: {build:.2f} s, {stats.passages} passages, {megabytes:.1f} MB on disk")
        for path in sorted(docs.iterdir())[:10]:
            path.write_text(path.read_text() + f"\n## Update\n\n{paragraph(rng, 'update')}\n")
        started = time.perf_counter()
        stats = PassageIndex(index_file).sync(docs)
        elapsed = time.perf_counter() - started
        print(f"re-index after changing 10 files: {elapsed:.3f} s (changed={stats.changed})")
        started = time.perf_counter()
        PassageIndex(index_file).sync(docs)
        print(f"re-index with nothing changed: {time.perf_counter() - started:.3f} s")
        index = PassageIndex(index_file)
        latencies = []
        for _ in range(args.queries):
            question = f"What is the {rng.choice(TOPICS)} {rng.choice(FILLER)} {rng.choice(TOPICS)} target?"
            started = time.perf_counter()
            index.search(keywords(question), 5)
            latencies.append((time.perf_counter() - started) * 1000)
        print(
            f"retrieval latency ({args.queries} queries): p50 {statistics.median(latencies):.2f} ms, "
            f"p99 {percentile(latencies, 0.99):.2f} ms"
        )
        pipeline = AnswerPipeline(PipelineConfig(root / "indexes", root / "no-data"))
        run_dir = root / "run"
        run_dir.mkdir()
        runs = []
        for _ in range(20):
            question = (
                f"What are the {rng.choice(TOPICS)} targets and how is the {rng.choice(TOPICS)} funded?"
            )
            ctx = RunContext(
                "bench", run_dir, RunOptions(question, docs), lambda *a, **k: None, lambda: False
            )
            started = time.perf_counter()
            pipeline(ctx)
            runs.append((time.perf_counter() - started) * 1000)
        print(
            f"end-to-end extractive run (warm index, 20 runs): p50 {statistics.median(runs):.1f} ms, "
            f"max {max(runs):.1f} ms"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
