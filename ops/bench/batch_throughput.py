"""Batch files through a real worker: lines per second and the producer's peak memory.

Generates OpenAI Batch API files (short conversations, 20-300 words) of each size into a
temporary folder, starts a private Redis (unless REDIS_URL is set) and a real worker
with the simulated provider at zero latency, and runs the real command,
``tierline batch run IN -o OUT --no-progress``, in a subprocess per file. Then runs the
same command again on the finished output (the resume scan: every line already done).

Measured per run: wall time of the command (Python start, the duplicate check pass, the
resume scan, sending, collecting, writing), lines/s = lines / wall time, and the peak
resident memory and CPU time of that producer process alone (``ru_maxrss``, ``ru_utime``
+ ``ru_stime`` from ``os.wait4`` on it; the worker is a different process, not counted).
With a zero-latency provider the worker processes are the bottleneck, so lines/s is
the worker's rate on this machine; the producer's CPU time shows what it costs. Target: under 300 MB at 100,000
lines, and about the same at 10,000 (memory does not grow with the file).

`--results redis postgres` runs every size once per result backend in the same run,
rounds interleaved: results on the private Redis (the default), then on a PostgreSQL
database of the benchmark's own (Celery's database backend, `TIERLINE_RESULT_URL`,
dropped after), and prints the lines/s of each and their ratio.

    python -m ops.bench.batch_throughput [--sizes 10000 100000] [--concurrency 2] [--window 256]
        [--results redis postgres] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from operators.embedded import PrivateRedis, redis_url_from_env
from operators.samples import conversation
from operators.services import WorkerSpec, background_worker
from ops.bench.scratch_db import SERVER_URL, PostgresServer
from producers.client import producer_app_for

TIERLINE = str(Path(sys.executable).with_name("tierline"))


@dataclass(frozen=True)
class Run:
    results: str
    lines: int
    kind: str
    wall_s: float
    cpu_s: float
    peak_mb: float
    exit_code: int
    output_lines: int


def write_file(path: Path, lines: int, *, seed: int = 5) -> Path:
    """`lines` OpenAI Batch API lines of short conversations."""
    rng = random.Random(seed)
    with open(path, "w") as file:
        for i in range(lines):
            body = {"model": "mistral-small-latest", "messages": conversation(rng, rng.randint(20, 300)),
                    "max_tokens": 256}
            line = {"custom_id": f"request-{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
            file.write(json.dumps(line) + "\n")
    return path


def run_producer(url: str, results: str, source: Path, out: Path, *, window: int, kind: str, lines: int) -> Run:
    """The command in a subprocess; its own peak RSS from wait4."""
    env = dict(os.environ, REDIS_URL=url, TIERLINE_RESULT_URL=results)
    command = [TIERLINE, "batch", "run", str(source), "-o", str(out), "--no-progress", "--window", str(window)]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    with open(out, "rb") as file:
        written = sum(1 for _ in file)
    cpu = usage.ru_utime + usage.ru_stime
    return Run(source_results(results), lines, kind, wall, cpu, usage.ru_maxrss / 1024, process.returncode, written)


def source_results(results: str) -> str:
    return "postgres" if results.startswith("db+") else "redis"


def measure(url: str, results: str, sizes: list[int], concurrency: int, window: int, folder: Path,
            round_: int = 0) -> list[Run]:
    """Every size through one worker whose results go to `results`, fresh then re-run."""
    app = producer_app_for(url, results)
    env = dict(os.environ, REDIS_URL=url, TIERLINE_RESULT_URL=results, TIERLINE_KEY_PREFIX="bench-batch:",
               TIERLINE_PROVIDER_MODE="simulated", TIERLINE_CONCURRENCY=str(concurrency))
    runs = []
    name = source_results(results)
    spec = WorkerSpec(concurrency, name=f"bench-batch-{name}@localhost")
    with background_worker(app, env, spec, log_path=folder / f"worker-{name}.log"):
        for size in sizes:
            source = write_file(folder / f"in-{size}.jsonl", size)
            out = folder / f"out-{name}-{round_}-{size}.jsonl"
            runs.append(run_producer(url, results, source, out, window=window, kind="fresh", lines=size))
            runs.append(run_producer(url, results, source, out, window=window, kind="re-run, all done", lines=size))
    return runs


def table(runs: list[Run], concurrency: int, window: int) -> Table:
    out = Table(title=f"tierline batch run: zero-latency simulated provider, {concurrency} worker "
                f"processes, window {window}, {os.cpu_count()} CPUs")
    for column in ("results", "lines", "run", "wall s", "lines/s", "producer CPU s", "producer peak RSS MB",
                   "exit", "output lines"):
        out.add_column(column, justify="right")
    for r in runs:
        out.add_row(r.results, f"{r.lines:,}", r.kind, f"{r.wall_s:.1f}", f"{r.lines / r.wall_s:,.0f}",
                    f"{r.cpu_s:.1f}", f"{r.peak_mb:.0f}", str(r.exit_code), f"{r.output_lines:,}")
    return out


def ratios(runs: list[Run]) -> Table:
    """Fresh runs: lines/s on PostgreSQL results against Redis results, per size (sums over rounds)."""
    out = Table(title="fresh runs: results on PostgreSQL against results on Redis")
    for column in ("lines", "Redis lines/s", "PostgreSQL lines/s", "ratio"):
        out.add_column(column, justify="right")
    for size in sorted({r.lines for r in runs}):
        rate = {b: sum(r.lines for r in runs if (r.results, r.lines, r.kind) == (b, size, "fresh")) /
                sum(r.wall_s for r in runs if (r.results, r.lines, r.kind) == (b, size, "fresh"))
                for b in ("redis", "postgres")}
        out.add_row(f"{size:,}", f"{rate['redis']:,.0f}", f"{rate['postgres']:,.0f}",
                    f"{rate['postgres'] / rate['redis']:.2f}")
    return out


def measure_all(url: str, backends: list[str], args: argparse.Namespace, folder: Path) -> list[Run]:
    """Rounds interleaved over the backends; a PostgreSQL database of its own, dropped after."""
    with ExitStack() as stack:
        urls = {"redis": url}
        if "postgres" in backends:
            urls["postgres"] = stack.enter_context(PostgresServer(SERVER_URL).database())
        return [run for round_ in range(args.rounds) for backend in backends for run in
                measure(url, urls[backend], args.sizes, args.concurrency, args.window, folder, round_)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--results", nargs="+", choices=["redis", "postgres"], default=["redis"])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    console = Console(width=140)
    with tempfile.TemporaryDirectory(prefix="tierline-bench-batch-") as tmp:
        url = redis_url_from_env()
        if url:
            runs = measure_all(url, args.results, args, Path(tmp))
        else:
            with PrivateRedis(appendonly=False) as server:
                runs = measure_all(server.url, args.results, args, Path(tmp))
    console.print(table(runs, args.concurrency, args.window))
    if len(set(args.results)) == 2:
        console.print(ratios(runs))


if __name__ == "__main__":
    main()
