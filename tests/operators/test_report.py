"""`tierline report`: the demo's own table and the report read from Redis agree."""

from __future__ import annotations

import json
import re

import pytest

from operators.report import build_report, parse_duration, quantile
from operators.report_html import render_html
from tests.test_cli import run


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
