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

    python -m ops.bench.batch_throughput [--sizes 10000 100000] [--concurrency 2] [--window 256]
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
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from operators.embedded import PrivateRedis, redis_url_from_env
from operators.samples import conversation
from operators.services import WorkerSpec, background_worker
from producers.client import producer_app_for

TIERLINE = str(Path(sys.executable).with_name("tierline"))


@dataclass(frozen=True)
class Run:
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


def run_producer(url: str, source: Path, out: Path, *, window: int, kind: str, lines: int) -> Run:
    """The command in a subprocess; its own peak RSS from wait4."""
    env = dict(os.environ, REDIS_URL=url)
    command = [TIERLINE, "batch", "run", str(source), "-o", str(out), "--no-progress", "--window", str(window)]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    with open(out, "rb") as file:
        written = sum(1 for _ in file)
    cpu = usage.ru_utime + usage.ru_stime
    return Run(lines, kind, wall, cpu, usage.ru_maxrss / 1024, process.returncode, written)


def measure(url: str, sizes: list[int], concurrency: int, window: int, folder: Path) -> list[Run]:
    app = producer_app_for(url, url)
    env = dict(os.environ, REDIS_URL=url, TIERLINE_KEY_PREFIX="bench-batch:",
               TIERLINE_PROVIDER_MODE="simulated", TIERLINE_CONCURRENCY=str(concurrency))
    runs = []
    spec = WorkerSpec(concurrency, name="bench-batch@localhost")
    with background_worker(app, env, spec, log_path=folder / "worker.log"):
        for size in sizes:
            source = write_file(folder / f"in-{size}.jsonl", size)
            out = folder / f"out-{size}.jsonl"
            runs.append(run_producer(url, source, out, window=window, kind="fresh", lines=size))
            runs.append(run_producer(url, source, out, window=window, kind="re-run, all done", lines=size))
    return runs


def table(runs: list[Run], concurrency: int, window: int) -> Table:
    out = Table(title=f"tierline batch run: zero-latency simulated provider, {concurrency} worker "
                f"processes, window {window}, {os.cpu_count()} CPUs")
    for column in ("lines", "run", "wall s", "lines/s", "producer CPU s", "producer peak RSS MB", "exit",
                   "output lines"):
        out.add_column(column, justify="right")
    for r in runs:
        out.add_row(f"{r.lines:,}", r.kind, f"{r.wall_s:.1f}", f"{r.lines / r.wall_s:,.0f}", f"{r.cpu_s:.1f}",
                    f"{r.peak_mb:.0f}", str(r.exit_code), f"{r.output_lines:,}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--window", type=int, default=256)
    args = parser.parse_args()
    console = Console(width=120)
    with tempfile.TemporaryDirectory(prefix="tierline-bench-batch-") as tmp:
        url = redis_url_from_env()
        if url:
            runs = measure(url, args.sizes, args.concurrency, args.window, Path(tmp))
        else:
            with PrivateRedis(appendonly=False) as server:
                runs = measure(server.url, args.sizes, args.concurrency, args.window, Path(tmp))
    console.print(table(runs, args.concurrency, args.window))


if __name__ == "__main__":
    main()
