"""Bulk extraction: `tierline extract` on a folder against one `submit_extraction` at a time.

Writes `--documents` text files of mixed size (from `--min-tokens` to `--max-tokens`,
most of them small: tokens = min * (max/min) ** (u ** skew), u uniform), starts a private
Redis (unless REDIS_URL is set) and one real worker of `--concurrency` prefork processes
with the simulated provider at a latency that grows with the request's tokens
(`--latency-ms` + `--latency-ms-per-ktok` per thousand tokens). Documents go under the
``cascade`` policy, so anything above the small tier's 32K context is cut into chunks,
each a task of its own.

Two runs over the same documents, in one process of this script:

- pipeline: ``tierline extract DIR --schema S -o OUT --no-progress`` in a subprocess (its
  peak RSS and CPU from ``os.wait4``);
- one at a time: a subprocess that reads each file, calls ``submit_extraction`` and waits
  for its result before the next (what a team writes without the pipeline).

Measured: wall time, documents per minute, chunks and tokens (from the results), the
extraction tasks queued or running on the broker (documents, chunks and merges; sampled
every 0.25 s: peak and mean), and the producer's peak memory.

    python -m ops.bench.extraction [--documents 1000] [--max-tokens 500000] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from rich.console import Console
from rich.table import Table

from contract.names import QUEUE_EXTRACTION
from operators.embedded import PrivateRedis, redis_url_from_env
from operators.services import WorkerSpec, background_worker
from producers.client import producer_app_for
from worker.keys import Keys
from worker.providers.simulated import Behaviour, Script, publish_script

TIERLINE = str(Path(sys.executable).with_name("tierline"))
PREFIX = "bench-extract:"
SCHEMA = {"type": "object", "properties": {
    "parties": {"type": "array", "items": {"type": "string"}},
    "title": {"type": "string"}, "amount": {"type": "number"}}}
OPTIONS = {"policy": "cascade", "max_output_tokens": 256}
WORDS = ("the supplier shall deliver goods to buyer under this agreement within days of order and "
         "invoice payment terms net thirty warranty period clause liability limited to amount paid "
         "notice in writing governing law court of Lyon party parties signed effective date").split()


@dataclass(frozen=True)
class Run:
    mode: str
    documents: int
    wall_s: float
    cpu_s: float
    peak_mb: float
    exit_code: int
    chunks: int
    tokens: int
    peak_flying: int
    mean_flying: float


def write_documents(folder: Path, count: int, *, low: int, high: int, skew: float, seed: int = 11) -> int:
    """`count` text files of about `low` to `high` tokens (a word is about 1.2 tokens); their words."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(count):
        words = int(low * (high / low) ** (rng.random() ** skew) / 1.2)
        paragraphs = []
        left = words
        while left > 0:
            size = min(left, rng.randint(40, 160))
            paragraphs.append(" ".join(rng.choices(WORDS, k=size)) + ".")
            left -= size
        (folder / f"doc-{i:05d}.txt").write_text("\n\n".join(paragraphs))
        total += words
    return total


class FlyingSampler(threading.Thread):
    """Extraction tasks waiting in the queue or taken by a worker (unacked), every 0.25 s."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self._client = redis.Redis.from_url(url)
        self._done = threading.Event()
        self.samples: list[int] = []

    def run(self) -> None:
        while not self._done.wait(0.25):
            pipe = self._client.pipeline(transaction=False)
            pipe.llen(QUEUE_EXTRACTION)
            pipe.hlen("unacked")
            queued, unacked = pipe.execute()
            self.samples.append(int(queued) + int(unacked))

    def stop(self) -> tuple[int, float]:
        self._done.set()
        self.join()
        self._client.close()
        return max(self.samples, default=0), sum(self.samples) / max(len(self.samples), 1)


def timed(url: str, command: list[str], mode: str, documents: int, out: Path) -> Run:
    """`command` in a subprocess, its broker load sampled; its own peak RSS from wait4."""
    sampler = FlyingSampler(url)
    sampler.start()
    start = time.perf_counter()
    process = subprocess.Popen(command, env=dict(os.environ, REDIS_URL=url), stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    peak, mean = sampler.stop()
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    chunks = sum(r.get("chunks") or 0 for r in records)
    tokens = sum(sum(a["tokens_in"] + a["tokens_out"] for a in r["tierline"]["attempts"]) for r in records)
    return Run(mode, len(records), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
               os.waitstatus_to_exitcode(status), chunks, tokens, peak, mean)


def one_at_a_time(folder: Path, out: Path, url: str) -> None:
    """Each document through `submit_extraction`, waiting for it before the next."""
    from producers import submit_extraction
    from producers.batch.records import routing_fields

    app = producer_app_for(url, url)
    with open(out, "w") as file:
        for path in sorted(folder.iterdir()):
            result = submit_extraction(path.read_text(), SCHEMA, app=app, **OPTIONS).result(timeout=3600)
            file.write(json.dumps({"id": path.name, "chunks": result.chunks,
                                   "tierline": routing_fields(result)}) + "\n")


def measure(url: str, args: argparse.Namespace, tmp: Path) -> tuple[list[Run], int]:
    words = write_documents(tmp / "docs", args.documents, low=args.min_tokens, high=args.max_tokens, skew=args.skew)
    (tmp / "schema.json").write_text(json.dumps(SCHEMA))
    env = dict(os.environ, REDIS_URL=url, TIERLINE_KEY_PREFIX=PREFIX, TIERLINE_PROVIDER_MODE="simulated",
               TIERLINE_CONCURRENCY=str(args.concurrency), TIERLINE_SIM_REFRESH_S="1")
    publish_script(redis.Redis.from_url(url), Keys(PREFIX).sim_script, Script(default=Behaviour(
        latency_ms=args.latency_ms, latency_ms_per_ktok=args.latency_ms_per_ktok)), ttl_s=24 * 3600)
    spec = WorkerSpec(args.concurrency, name="bench-extract@localhost")
    pipeline = [TIERLINE, "extract", str(tmp / "docs"), "--schema", str(tmp / "schema.json"), "-o",
                str(tmp / "out.jsonl"), "--no-progress", "--window", str(args.window),
                "--policy", OPTIONS["policy"], "--max-output-tokens", str(OPTIONS["max_output_tokens"])]
    sequential = [sys.executable, "-m", "ops.bench.extraction", "--one-at-a-time", str(tmp)]
    with background_worker(producer_app_for(url, url), env, spec, log_path=tmp / "worker.log", timeout_s=120):
        runs = [timed(url, pipeline, "tierline extract", args.documents, tmp / "out.jsonl")]
        if not args.skip_one_at_a_time:
            runs.append(timed(url, sequential, "one submit_extraction at a time", args.documents,
                              tmp / "sequential.jsonl"))
    return runs, words


def table(runs: list[Run], args: argparse.Namespace, words: int) -> Table:
    out = Table(title=(
        f"{args.documents:,} documents of {args.min_tokens:,}-{args.max_tokens:,} tokens (~{words * 1.2 / 1e6:.1f}M), "
        f"{args.concurrency} worker processes, latency {args.latency_ms:g} ms + {args.latency_ms_per_ktok:g} ms/1K "
        f"tokens, {os.cpu_count()} CPUs"))
    for column in ("run", "documents", "wall s", "documents/min", "chunks", "tokens", "tasks in flight peak/mean",
                   "producer CPU s", "producer peak RSS MB", "exit"):
        out.add_column(column, justify="right")
    for r in runs:
        out.add_row(r.mode, f"{r.documents:,}", f"{r.wall_s:.1f}", f"{r.documents / r.wall_s * 60:,.1f}",
                    f"{r.chunks:,}", f"{r.tokens / 1e6:.1f}M", f"{r.peak_flying} / {r.mean_flying:.1f}",
                    f"{r.cpu_s:.1f}", f"{r.peak_mb:.0f}", str(r.exit_code))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=1_000)
    parser.add_argument("--min-tokens", type=int, default=1_000)
    parser.add_argument("--max-tokens", type=int, default=500_000)
    parser.add_argument("--skew", type=float, default=4.0, help="higher: more small documents")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--latency-ms-per-ktok", type=float, default=4.0)
    parser.add_argument("--skip-one-at-a-time", action="store_true")
    parser.add_argument("--one-at-a-time", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_at_a_time is not None:
        one_at_a_time(args.one_at_a_time / "docs", args.one_at_a_time / "sequential.jsonl", os.environ["REDIS_URL"])
        return
    with tempfile.TemporaryDirectory(prefix="tierline-bench-extract-") as tmp:
        url = redis_url_from_env()
        if url:
            runs, words = measure(url, args, Path(tmp))
        else:
            with PrivateRedis(appendonly=False) as server:
                runs, words = measure(server.url, args, Path(tmp))
    console = Console(width=160)
    console.print(table(runs, args, words))
    if len(runs) == 2:
        console.print(f"documents/min ratio, pipeline / one at a time: {runs[1].wall_s / runs[0].wall_s:.2f}x")


if __name__ == "__main__":
    main()
