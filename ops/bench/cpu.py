"""CPU time of the processes a benchmark measures: the figure a noisy machine moves least.

Wall-clock rates on a shared 2-core machine move by ±10 % between runs; the CPU a job
costs in the worker and in Redis moves far less, so the benchmarks print both.
"""

from __future__ import annotations

import os
from pathlib import Path

import redis

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> list[str]:
    # After the command's closing parenthesis: field 3 (state) onwards.
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK


def group_cpu_s(pgid: int) -> float:
    """CPU seconds of a process group: every live member, plus the children its leader reaped
    (a pool process that was replaced)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(entry.name)
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) != pgid:
            continue
        total += int(fields[11]) + int(fields[12])
        if int(entry.name) == pgid:
            total += int(fields[13]) + int(fields[14])
    return total / TICK


def redis_cpu_s(client: redis.Redis) -> float:
    """The Redis server's own CPU seconds (INFO cpu: main thread and I/O, user + system)."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
