"""`tierline replay --through-workers`: a sample sent to a real worker on the simulated
provider following the scenario agrees with the calculator's prediction."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from operators.replay.scenario import load_scenario
from operators.replay.through_workers import catalog_toml, job_for, run_through_workers
from operators.replay.workload import SHIPPED_TRACE, Request
from worker.catalog import load_catalog, parse_catalog
from worker.providers.base import ChatRequest
from worker.providers.sim_quality import PassCurve, draw
from worker.providers.simulated import Behaviour, Script, SimulatedProvider
from worker.quality import check
from worker.tokens import TokenCounter


def test_a_sample_through_real_workers_agrees_with_the_prediction(tmp_path: Path) -> None:
    # given the small model failing from minute 40, paced 120 times faster than the trace
    # (its busy flag, 60 s of wall time, then lasts past the trace's end: one edge, not three)
    scenario_path = tmp_path / "outage.toml"
    scenario_path.write_text("""
seed = 11
[[outages]]
model = "mistral-small-latest"
start = "40m"
end = "2h"
error = "unavailable"
""")
    out = io.StringIO()
    # when a sample of the shipped trace goes through a real worker
    runs = run_through_workers(SHIPPED_TRACE, load_scenario(scenario_path), policy=None, sample=200,
                               speedup=120.0, console=Console(file=out, width=200))
    (_, paced), (_, predicted), (_, measured) = runs
    # then the JobResults agree with the prediction within the bounds
    agreement = measured["agreement"]
    assert agreement["within_bounds"], (agreement, predicted["tier_share"], measured["tier_share"])
    assert measured["requests"] == predicted["requests"] == 200
    assert measured["failed_calls"] >= 1, "the outage never hit a call"
    # the same verdict per job and model; a job that crossed the outage's edge differs
    assert predicted["escalations"] > 0 and abs(measured["escalations"] - predicted["escalations"]) <= 2
    assert measured["user_visible_failures"] == predicted["user_visible_failures"] == 0
    assert paced["requests"] == 200
    assert "within the bounds" in " ".join(out.getvalue().split())


def test_the_simulated_provider_answers_as_the_pass_curve_and_draw_say() -> None:
    counter = TokenCounter()
    curve = PassCurve(base=0.5)
    script = Script(models={"m": Behaviour(quality=curve)}, seed=5, usage="exact", answer_length="budget")
    provider = SimulatedProvider(lambda: script, counter, sleep=lambda _s: None)
    request = Request(at_s=0.0, tokens_in=120, tokens_out=40, max_output_tokens=40)
    verdicts = []
    for index in range(40):
        job = job_for(request, f"run-{index}", "tokens")
        answer = provider.chat(ChatRequest(model="m", messages=tuple(job["messages"]), max_output_tokens=40,
                                           job_id=job["job_id"]), timeout_s=5)
        assert answer.tokens_in == 120
        passed = draw(5, job["job_id"], "m") < 0.5
        verdicts.append(passed)
        assert check(answer.content, None).ok is passed, answer.content
        # a refusal is as long as a good answer: the calculator charges a rejected generation so
        assert answer.tokens_out == 40, answer.content
    assert any(verdicts) and not all(verdicts)


def test_a_scenario_catalog_is_written_back_as_the_same_catalog() -> None:
    catalog = load_catalog()
    assert parse_catalog(catalog_toml(catalog)) == catalog
