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
from worker.tokens import TokenCounter


def test_a_sample_through_real_workers_agrees_with_the_prediction(tmp_path: Path) -> None:
    # given a rate-limit outage of the small model, paced 120 times faster than the trace
    scenario_path = tmp_path / "outage.toml"
    scenario_path.write_text("""
seed = 11
[[outages]]
model = "mistral-small-latest"
start = "20m"
end = "30m"
error = "rate_limited"
retry_after_s = 0.2
""")
    out = io.StringIO()
    # when a sample of the shipped trace goes through a real worker
    runs = run_through_workers(SHIPPED_TRACE, load_scenario(scenario_path), policy=None, sample=120,
                               speedup=120.0, console=Console(file=out, width=200))
    (_, predicted), (_, measured) = runs
    # then the JobResults agree with the prediction within the bounds
    agreement = measured["agreement"]
    assert agreement["within_bounds"], (agreement, predicted["tier_share"], measured["tier_share"])
    assert measured["requests"] == predicted["requests"] == 120
    assert measured["failed_calls"] >= 1, "the outage never hit a call"
    assert measured["escalations"] == predicted["escalations"] > 0
    assert measured["user_visible_failures"] == predicted["user_visible_failures"]
    assert "within the bounds" in out.getvalue()


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
        assert (answer.tokens_out == 40) is passed, answer.content
    assert any(verdicts) and not all(verdicts)


def test_a_scenario_catalog_is_written_back_as_the_same_catalog() -> None:
    catalog = load_catalog()
    assert parse_catalog(catalog_toml(catalog)) == catalog
