"""`tierline report`: the demo's own table and the report read from Redis agree; with results
on PostgreSQL it reads the same, and compares shadow with live and spend with budgets."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from operators.report import build_report, parse_duration, quantile, report_from_redis
from operators.report_html import render_html
from ops.bench.scratch_db import PostgresServer
from producers.client import submit
from tests.support import RunningWorker
from tests.test_cli import run
from worker import overlay as ov
from worker.catalog import load_catalog
from worker.overlay_store import OverlayStore

LARGE = "mistral-large-latest"


def _demo_rows(stdout: str) -> dict[str, str]:
    table = stdout.split("tierline demo:", 1)[1].split("tierline report:", 1)[0]
    return {line.split("│")[1].strip(): line.split("│")[2].strip() for line in table.splitlines()
            if line.count("│") == 3}


def _first_int(text: str) -> int:
    return int(re.match(r"\d+", text).group())  # type: ignore[union-attr]


def _dollars(text: str) -> float:
    return float(re.search(r"\$([0-9.]+)", text).group(1))  # type: ignore[union-attr]


def test_report_json_after_the_demo_matches_the_demos_table(idle_db_url: str) -> None:
    # Given the demo run against a Redis the test owns
    demo = run(["demo", "--jobs", "40"], {"REDIS_URL": idle_db_url}, timeout=240)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    rows = _demo_rows(demo.stdout)
    # When the report reads the same Redis
    out = run(["report", "--since", "1h", "--json"], {"REDIS_URL": idle_db_url})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    # Then every measure of the demo's table is the report's
    assert report["jobs"] == 40 and report["failed"] == _first_int(rows["failures (expected 0)"])
    for tier in ("small", "medium", "large"):
        assert report["served_by_tier"].get(tier, 0) == _first_int(rows[f"served by {tier}"])
    assert report["jobs_fell_back"] == int(rows["jobs that fell back (provider failure)"])
    assert report["failed_provider_attempts"] == int(rows["failed provider attempts"])
    assert report["escalations"] == int(rows["escalations (quality gate)"])
    assert round(report["cost_usd"], 4) == _dollars(rows["total cost"])
    assert round(report["all_large_cost_usd"], 4) == _dollars(rows["same tokens, all on the large tier"])
    p50 = float(rows["processing latency p50 / p95"].split(" ms")[0])
    assert report["latency"]["p50_ms"] == pytest.approx(p50, rel=0.25)
    # and the demo printed the report itself, and its page
    assert "tierline report:" in demo.stdout and "tierline-demo-report.html" in demo.stdout


def test_quantiles_interpolate_inside_a_bucket() -> None:
    buckets = {0.1: 50.0, 0.2: 40.0, 0.4: 10.0}
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.7, buckets) == pytest.approx(0.15)
    assert quantile(0.95, buckets) == pytest.approx(0.3)
    assert quantile(0.5, {}) is None


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172_800), ("5", 5)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_an_empty_window_renders() -> None:
    report = build_report([], since_s=60)
    assert report.jobs == 0 and "<svg" in render_html(report)


def test_report_on_postgres_results_compares_shadow_and_live_and_shows_budgets(
    worker_factory: Callable[..., AbstractContextManager[RunningWorker]], postgres: PostgresServer,
) -> None:
    # Given a worker whose results go to PostgreSQL, a budget for team ops, every job shadowed on large
    with postgres.database() as results_url, worker_factory(env={"TIERLINE_RESULT_URL": results_url}) as w:
        store = OverlayStore(w.redis, w.keys)
        store.change(lambda o: ov.set_shadow(ov.set_budget(o, "ops", ov.Budget(usd_per_day=5.0)),
                                             ov.Shadow(model=LARGE, share=1.0)),
                     load_catalog(), by="test", what="budget and shadow")
        # When jobs of team ops and one failing job run (their results on the database)
        handles = [submit([{"role": "user", "content": f"Where is parcel {i}?"}], app=w.app,
                          metadata={"team": "ops"}) for i in range(6)]
        handles.append(submit([{"role": "user", "content": "hi"}], app=w.app, pin_model="no-such-model"))
        results = [h.result(timeout=60) for h in handles]
        assert w.app.backend.__class__.__name__ == "DatabaseBackend"
        ops = [r for r in results if r.ok]
        assert len(ops) == 6 and all(r.model != LARGE for r in ops)
        env = {"REDIS_URL": w.url, "TIERLINE_KEY_PREFIX": w.prefix, "TIERLINE_RESULT_URL": results_url}
        deadline = time.monotonic() + 30
        while True:  # the shadow tasks run after the jobs; workers flush within a second
            report = report_from_redis(w.redis, w.keys, since_s=3600)
            if report.jobs == 7 and LARGE in report.shadow and report.shadow[LARGE].jobs == 6:
                break
            assert time.monotonic() < deadline, report.to_json()
            time.sleep(0.2)
        out = run(["report", "--since", "1h", "--json"], env)
        tables = run(["report", "--since", "1h"], env)
    # Then the report, read from Redis alone, counts the jobs the database holds
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert (data["jobs"], data["failed"], data["failures_by_code"]) == (7, 1, {"unknown_pinned_model": 1})
    assert data["teams"]["ops"]["jobs"] == 6
    assert data["teams"]["ops"]["cost_usd"] == pytest.approx(sum(r.cost_usd for r in ops))
    # and spend against the budget: what the budget counts today, this run's cost
    budget = data["budgets"]["ops"]
    assert (budget["usd_per_day"], budget["action"]) == (5.0, "cheapest")
    assert budget["spent_today_usd"] == pytest.approx(sum(r.cost_usd for r in ops), rel=1e-4)
    assert budget["used"] == pytest.approx(budget["spent_today_usd"] / 5.0, abs=1e-4)
    # and shadow against live on the same six jobs: pass rate, cost, latency of each side
    shadow = data["shadow"][LARGE]
    assert shadow["jobs"] == 6 and shadow["shadow_errors"] == 0
    assert shadow["live"]["pass_rate"] == 1.0 and shadow["shadow"]["pass_rate"] == 1.0
    assert shadow["live"]["cost_usd"] == pytest.approx(sum(r.cost_usd for r in ops))
    assert shadow["shadow"]["cost_usd"] > shadow["live"]["cost_usd"] > 0  # large costs more than small
    assert shadow["live"]["mean_latency_ms"] > 0 and shadow["shadow"]["mean_latency_ms"] > 0
    assert "shadow against live" in tables.stdout and "daily budgets" in tables.stdout, tables.stdout
