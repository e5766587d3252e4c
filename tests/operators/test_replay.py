"""`tierline replay` offline: the shipped trace, outages, determinism, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from operators.cli import cli
from operators.replay.run import replay_file
from operators.replay.scenario import Scenario, load_scenario
from operators.replay.sweep import cheapest, parse_sweep
from operators.replay.workload import SHIPPED_TRACE, WorkloadError, read
from worker.catalog import load_catalog

PERFECT = """
[quality.small]
base = 1.0
[quality.medium]
base = 1.0
[quality.large]
base = 1.0
"""


def _scenario(tmp_path: Path, text: str) -> Scenario:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return load_scenario(path)


def test_shipped_trace_tier_share_and_cost_equal_a_direct_count(tmp_path: Path) -> None:
    # given the default catalog and answers that always pass
    catalog = load_catalog()
    small, medium, large = (t.models[0] for t in catalog.tiers)
    counts, cost, all_large = [0, 0, 0], 0.0, 0.0
    with open(SHIPPED_TRACE, newline="") as file:
        for row in csv.DictReader(file):
            tokens_in, tokens_out = int(row["ContextTokens"]), int(row["GeneratedTokens"])
            tier = catalog.natural_tier(tokens_in)
            counts[tier] += 1
            cost += (small, medium, large)[tier].cost_usd(tokens_in, tokens_out)
            all_large += large.cost_usd(tokens_in, tokens_out)
    # when the trace is replayed offline
    summary = replay_file(SHIPPED_TRACE, _scenario(tmp_path, PERFECT))
    # then its numbers are the direct count's
    total = sum(counts)
    assert summary["requests"] == total == 19_366
    for name, count in zip(("small", "medium", "large"), counts, strict=True):
        assert summary["tier_share"][name] == pytest.approx(count / total, abs=1e-12)
    assert summary["cost_vs_all_large"] == pytest.approx(cost / all_large, rel=1e-9)
    assert summary["user_visible_failures"] == 0 and summary["escalations"] == 0
    assert 0.89 < summary["tier_share"]["small"] < 0.92  # "about nine requests in ten"


def test_small_tier_outage_shifts_traffic_to_medium_without_failures(tmp_path: Path) -> None:
    # given the small model down for ten minutes in the middle of the trace
    scenario = _scenario(tmp_path, PERFECT + """
[[outages]]
model = "mistral-small-latest"
start = "20m"
end = "30m"
error = "unavailable"
""")
    # when the trace is replayed
    summary = replay_file(SHIPPED_TRACE, scenario)
    # then the window's small traffic went to medium, and no user saw a failure
    assert summary["user_visible_failures"] == 0
    assert summary["failed_calls"] >= 1
    rows = summary["timeline"]["rows"]
    width = summary["timeline"]["width_s"]
    inside = [r for r in rows if 20 * 60 + 60 <= r["start_s"] and r["start_s"] + width <= 30 * 60]
    before = [r for r in rows if r["start_s"] + width <= 20 * 60]
    assert inside and before
    assert all(r["small"] == 0 for r in inside)
    assert sum(r["medium"] for r in inside) > 0.85 * sum(r["medium"] + r["small"] + r["large"] for r in inside)
    assert all(r["small"] > r["medium"] for r in before)
    baseline = replay_file(SHIPPED_TRACE, _scenario(tmp_path, PERFECT))
    assert summary["tier_share"]["medium"] > baseline["tier_share"]["medium"] + 0.1


def test_replay_repeats_with_its_seed_and_default_quality_escalates() -> None:
    first = replay_file(SHIPPED_TRACE, Scenario(seed=3), policy="cascade")
    again = replay_file(SHIPPED_TRACE, Scenario(seed=3), policy="cascade")
    assert first == again
    assert first["escalations"] > 0
    assert first["cost_vs_all_large"] < 0.2


def test_categories_get_their_own_numbers(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens,Category\n"
                     + "".join(f"2024-01-01 00:00:{i:02d},{200 + 300 * i},50,{'code' if i % 2 else 'chat'}\n"
                               for i in range(20)))
    summary = replay_file(trace, _scenario(tmp_path, PERFECT))
    assert set(summary["categories"]) == {"chat", "code"}
    assert summary["categories"]["code"]["requests"] == 10


@pytest.mark.parametrize(("content", "line", "words"), [
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2024-01-01 00:00:00,10,5\n2024-01-01 00:00:01,ten,5\n",
     3, "ten"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2024-01-01 00:00:00,10\n", 2, "too few fields"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,10,5\n", 2, "yesterday"),
    ("TIMESTAMP,Tokens\n", 1, "lacks ContextTokens, GeneratedTokens"),
    ("", None, "empty file"),
])
def test_a_bad_line_names_its_line(tmp_path: Path, content: str, line: int | None, words: str) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text(content)
    with pytest.raises(WorkloadError) as caught:
        list(read(trace))
    assert words in str(caught.value)
    if line is not None:
        assert f"bad.csv, line {line}:" in str(caught.value)


def test_batch_jsonl_is_counted_and_a_bad_line_named(tmp_path: Path) -> None:
    good = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "word " * 5000}],
                     "max_tokens": 100, "metadata": {"category": "summaries"}}}
    batch = tmp_path / "in.jsonl"
    batch.write_text(json.dumps(good) + "\n" + json.dumps({"custom_id": "b", "body": {"messages": [
        {"role": "user", "content": "hello"}]}}) + "\n")
    first, second = read(batch, small_tokens=3000)
    assert 4000 < first.tokens_in < 6000 and first.category == "summaries" and first.max_output_tokens == 100
    assert second.tokens_in == 4 + len("hello")
    batch.write_text(batch.read_text() + '{"custom_id": "c", "body": {}}\n')
    with pytest.raises(WorkloadError, match=r"in.jsonl, line 3: missing_messages"):
        list(read(batch))


def test_cli_reports_compare_sweep_and_json(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    with open(SHIPPED_TRACE) as src:
        trace.write_text("".join(line for _, line in zip(range(2001), src, strict=False)))
    runner = CliRunner()
    shown = runner.invoke(cli, ["replay", str(trace), "--compare", "tokens,cascade",
                                "--sweep", "small=2000:4000:1000", "--bar", "0.5"])
    assert shown.exit_code == 0, shown.output
    assert "cascade" in shown.output and "cheapest small threshold" in shown.output
    as_json = runner.invoke(cli, ["replay", str(trace), "--json"])
    assert json.loads(as_json.output)["runs"]["tokens"]["requests"] == 2000
    page = tmp_path / "replay.html"
    drawn = runner.invoke(cli, ["replay", str(trace), "--html", str(page), "--compare", "tokens,cascade"])
    assert drawn.exit_code == 0, drawn.output
    html = page.read_text()
    assert html.count("<svg") >= 4 and "Tier share over the trace" in html
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing to fetch
    bad = runner.invoke(cli, ["replay", str(tmp_path / "missing.csv")])
    assert bad.exit_code == 2 and "no such file" in " ".join(bad.output.split())


def test_sweep_names_the_cheapest_step_meeting_the_bar() -> None:
    sweep = parse_sweep("small=2000:6000:500")
    assert sweep.values[0] == 2000 and sweep.values[-1] == 6000 and len(sweep.values) == 9
    steps = [(2000, {"cost_usd": 3.0, "first_pass_rate": 0.99}),
             (3000, {"cost_usd": 2.0, "first_pass_rate": 0.97}),
             (4000, {"cost_usd": 1.0, "first_pass_rate": 0.90})]
    assert cheapest(steps, bar=0.95) == 3000
    assert cheapest(steps, bar=0.999) is None
    with pytest.raises(WorkloadError, match="TIER=START:STOP"):
        parse_sweep("small=lots")


def test_stored_results_of_a_window_are_replayed(idle_db_url: str) -> None:
    # given JobResults stored by the result backend: two recent, one invalid job, one old
    from contract.schemas import Attempt, JobResult
    from operators.replay.stored_workload import read_stored
    from producers.client import producer_app_for

    backend = producer_app_for(idle_db_url, idle_db_url).backend
    ok = Attempt(model="mistral-small-latest", tier="small", provider="simulated", outcome="ok",
                 latency_ms=10, tokens_in=120, tokens_out=30)
    for job_id, routed in (("a", 120), ("b", 5000)):
        result = JobResult(job_id=job_id, status="succeeded", routed_tokens=routed, latency_ms=1500, attempts=[ok])
        backend.store_result(job_id, result.model_dump(mode="json"), "SUCCESS")
    backend.store_result("bad", JobResult(job_id="bad", status="failed").model_dump(mode="json"), "SUCCESS")
    import time
    # when the last hour is read (and, separately, a window that ended an hour ago)
    requests = list(read_stored(idle_db_url, since_s=3600, now=time.time() + 1))
    old = list(read_stored(idle_db_url, since_s=60, now=time.time() + 7200))
    # then the routed jobs come back in start order with their counts, the invalid one does not
    assert sorted(r.tokens_in for r in requests) == [120, 5000]
    assert all(r.tokens_out == 30 and r.category is None for r in requests)
    assert old == []


@pytest.mark.parametrize("name", ["small-outage.toml", "candidate.toml"])
def test_the_shipped_example_scenarios_load_and_replay(tmp_path: Path, name: str) -> None:
    scenario = load_scenario(SHIPPED_TRACE.parent.parent / "scenarios" / name)
    trace = tmp_path / "t.csv"
    with open(SHIPPED_TRACE) as src:
        trace.write_text("".join(line for _, line in zip(range(3001), src, strict=False)))
    summary = replay_file(trace, scenario)
    assert summary["requests"] == 3000 and summary["user_visible_failures"] <= 3
