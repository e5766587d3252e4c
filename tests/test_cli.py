"""The command line, run as a user runs it: `tierline ...` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import ROOT, RunningWorker
from worker.keys import Keys

TIERLINE = [sys.executable, "-c", "from operators.cli import main; main()"]


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TIERLINE_") and k != "REDIS_URL"}
    full.update(env, PYTHONPATH=str(ROOT), COLUMNS="160")
    return subprocess.run([*TIERLINE, *args], env=full, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_submit_prints_the_job_result(worker: RunningWorker) -> None:
    out = run(["submit", "Which tier serves me?"], {"REDIS_URL": worker.url, "TIERLINE_KEY_PREFIX": worker.prefix})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["status"], result["tier"]) == ("succeeded", "small")


def test_models_shows_the_catalog_with_busy_flags(worker: RunningWorker) -> None:
    worker.redis.set(worker.keys.busy("mistral-medium-latest"), "transient:unavailable", ex=42)
    out = run(["models"], {"REDIS_URL": worker.url, "TIERLINE_KEY_PREFIX": worker.prefix})
    assert out.returncode == 0, out.stderr
    assert "mistral-small-latest" in out.stdout and "0.20" in out.stdout
    medium = next(line for line in out.stdout.splitlines() if "mistral-medium-latest" in line)
    assert "transient:unavailable" in medium and "s left" in medium


def test_stats_shows_the_counters_workers_flushed(worker: RunningWorker) -> None:
    # A prefix of its own: the module's worker flushes its own counters within a second.
    worker.redis.hset(Keys("stats-test:").metrics, mapping={"attempts:ok": 7, "quality:refusal": 2})
    out = run(["stats"], {"REDIS_URL": worker.url, "TIERLINE_KEY_PREFIX": "stats-test:"})
    assert out.returncode == 0, out.stderr
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in out.stdout.splitlines()
            if line.count("│") == 3}
    assert rows["attempts:ok"] == "7" and rows["quality:refusal"] == "2"


def test_worker_refuses_a_bad_catalog_with_the_line(tmp_path: object) -> None:
    bad = ROOT / "worker" / "catalog.toml"
    path = tmp_path / "tiers.toml"  # type: ignore[operator]
    path.write_text(bad.read_text().replace("context_tokens = 32000", "context_tokens = -1"))
    out = run(["worker"], {"TIERLINE_CATALOG_PATH": str(path)}, timeout=60)
    assert out.returncode == 2
    assert "line 16" in out.stdout and "context_tokens" in out.stdout


def test_demo_routes_a_sample_and_prints_its_table() -> None:
    out = run(["demo", "--jobs", "40"], {}, timeout=180)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "simulated provider" in out.stdout
    for row in ("served by small", "served by medium", "failures (expected 0)", "all on the large tier"):
        assert row in out.stdout
    failures = next(line for line in out.stdout.splitlines() if "failures (expected 0)" in line)
    assert failures.rstrip(" │").endswith("0")
