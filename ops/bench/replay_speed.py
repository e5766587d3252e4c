"""How fast the offline replay runs, and whether its memory stays flat.

The shipped Azure trace is repeated (each copy shifted by the trace's length) into CSV
files of growing size; each size is replayed in a fresh process under the default
scenario (length-dependent pass rates, so the quality gate escalates) and under a
small-tier outage. Each process reports its CPU time (one core: the replay is single
threaded), its wall time (the machine is shared) and its peak RSS.

    python -m ops.bench.replay_speed [--sizes 19366,200000,1000000]

Target: a million requests in under a minute on one core; peak RSS flat across sizes.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from operators.replay.run import replay_file
from operators.replay.scenario import OutageSpec, Scenario
from operators.replay.workload import SHIPPED_TRACE, read

SCENARIOS = {
    "default": Scenario(),
    "small outage": Scenario(outages=(OutageSpec(model="mistral-small-latest", start="20m", end="30m"),)),
}


def write_trace(path: Path, size: int) -> None:
    """`size` requests: the shipped trace again and again, each copy an hour later."""
    with open(path, "w") as out:
        out.write("TIMESTAMP,ContextTokens,GeneratedTokens\n")
        copy = 0
        while size > 0:
            for request in read(SHIPPED_TRACE):
                if size == 0:
                    break
                at = request.at_s + copy * 3600
                whole = int(at)
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole)) + f"{at - whole:.7f}"[1:]
                out.write(f"{stamp},{request.tokens_in},{request.tokens_out}\n")
                size -= 1
            copy += 1


def one(path: Path, scenario: str) -> dict[str, float]:
    """Replay `path` in this process; CPU and wall seconds, peak RSS in MB."""
    cpu, wall = time.process_time(), time.perf_counter()
    summary = replay_file(path, SCENARIOS[scenario])
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "requests": summary["requests"], "small": summary["tier_share"]["small"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="19366,200000,1000000")
    parser.add_argument("--one", nargs=2, metavar=("PATH", "SCENARIO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(Path(args.one[0]), args.one[1])))
        return
    table = Table(title="offline replay (one process per row, default catalog)")
    for column in ("requests", "scenario", "CPU", "µs/request", "wall (shared machine)", "peak RSS"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory(prefix="tierline-bench-replay-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            path = Path(tmp) / f"trace-{size}.csv"
            write_trace(path, size)
            for scenario in SCENARIOS:
                out = subprocess.run([sys.executable, "-m", "ops.bench.replay_speed", "--one", str(path), scenario],
                                     check=True, capture_output=True, text=True).stdout
                r = json.loads(out)
                table.add_row(f"{int(r['requests']):,}", scenario, f"{r['cpu_s']:.1f} s",
                              f"{r['cpu_s'] / r['requests'] * 1e6:.1f}", f"{r['wall_s']:.1f} s",
                              f"{r['rss_mb']:.0f} MB")
    Console().print(table)


if __name__ == "__main__":
    main()
