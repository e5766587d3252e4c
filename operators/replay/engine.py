"""The offline replay: every request routed by the workers' own decisions, on a simulated clock.

What runs is the workers' code: the policy registry (`worker.policies`), `plan()`, the
attempt order, the failure decisions and the escalation bound (`worker.fallback`). Only
the calls are simulated: an outage of the scenario fails a call with its error kind, a
call takes a latency drawn from the model's distribution (a call slower than its timeout
is a timeout), and an answer passes the quality gate when its deterministic draw is
below the model's pass rate (`worker.providers.sim_quality`, the simulated provider's rule).

Busy flags live on the simulated clock: set when a call fails, for the TTL the failure
decision gives (times `time_scale`, when the replay predicts a run paced faster than
real time), extended and never shortened. Requests are replayed in file order.
The plan is memoised on exactly what it depends on (start tier, minimum tier, which
context windows hold the request, busy models), so a million requests plan quickly.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from operators.replay.scenario import Scenario
from operators.replay.workload import Request, WorkloadError
from worker import errors, fallback
from worker.catalog import Catalog, ModelSpec
from worker.plan import Candidate, Plan, Route, plan
from worker.policies import POLICIES, Policy
from worker.providers.sim_quality import PassCurve, draw
from worker.providers.simulated import simulated_error

_Z95 = 1.6448536269514722
_NOTHING_BUSY: frozenset[str] = frozenset()
DEADLINE_MARGIN_S = 0.5


@dataclass(slots=True)
class Served:
    """What became of one request. `tier`: the position of the tier whose answer was
    used (None: failed); `error`: the failure code; costs in US dollars."""

    at_s: float
    category: str | None
    start_tier: int
    tier: int | None = None
    error: str | None = None
    cost_usd: float = 0.0
    all_large_usd: float = 0.0
    latency_ms: float = 0.0
    failed_calls: int = 0
    escalations: int = 0
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass(frozen=True)
class _Model:
    spec: ModelSpec
    mu: float
    sigma: float
    ms_per_token: float
    curve: PassCurve
    outages: tuple[tuple[float, float, str, float | None], ...]


@dataclass
class _Flags:
    """Busy flags on the simulated clock: model → (set at, busy until)."""

    flags: dict[str, tuple[float, float]] = field(default_factory=dict)

    def busy(self, now: float) -> frozenset[str]:
        if not self.flags:
            return _NOTHING_BUSY
        return frozenset(m for m, (since, until) in self.flags.items() if since <= now < until)

    def mark(self, model: str, now: float, ttl_s: float) -> None:
        since, until = self.flags.get(model, (now, now))
        if until < now:
            since = now
        self.flags[model] = (min(since, now), max(until, now + ttl_s))

    def forget_before(self, now: float) -> None:
        for model in [m for m, (_, until) in self.flags.items() if until < now - 3600]:
            del self.flags[model]


@dataclass(slots=True)
class _Job:
    """One request in flight: its clock, its cost, its record."""

    request: Request
    job_id: str
    served: Served
    now: float
    answer: tuple[int, int] = (0, 0)


class Replayer:
    """Replays requests through the routing of `catalog` under `scenario`.

    policy: the policy name (the registry's); run_id: the job ids' prefix (quality draws
    are fixed by job id); time_scale: how much faster than the trace a paced run goes
    (busy flags then last that much longer in trace time).
    """

    def __init__(self, scenario: Scenario, catalog: Catalog, *, policy: str | None = None,
                 run_id: str = "replay", time_scale: float = 1.0) -> None:
        name = policy or scenario.policy
        found: Policy | None = POLICIES.get(name)
        if found is None:
            raise WorkloadError(f"unknown policy {name!r}; known: {sorted(POLICIES)}")
        self.policy, self.policy_name = found, name
        self.catalog, self.scenario = catalog, scenario
        self.run_id, self.time_scale = run_id, time_scale
        self._large = catalog.tiers[-1].models[0]
        self._contexts = sorted({m.context_tokens for t in catalog.tiers for m in t.models})
        self._plans: dict[tuple[int, int, int, frozenset[str]], Plan] = {}
        self._rng = random.Random(scenario.seed)
        self._flags = _Flags()
        self._models: dict[str, _Model] = {}
        self.first_s: float | None = None

    def replay(self, requests: Iterable[Request], job_ids: Iterable[str] | None = None) -> Iterator[Served]:
        """Each request's outcome, in order; job ids `run_id-<index>` unless given."""
        ids = iter(job_ids) if job_ids is not None else None
        for index, request in enumerate(requests):
            if self.first_s is None:
                self.first_s = request.at_s
                self._models = self._build_models(request.at_s)
            if index % 4096 == 0:
                self._flags.forget_before(request.at_s)
            yield self.serve(request, next(ids) if ids is not None else f"{self.run_id}-{index}")

    def serve(self, request: Request, job_id: str) -> Served:
        """Route one request to its outcome, escalating as the quality gate decides."""
        start = self.policy.start_tier(request.tokens_in, self.catalog)
        served = Served(request.at_s, request.category, start, tokens_in=request.tokens_in,
                        tokens_out=request.tokens_out)
        job = _Job(request, job_id, served, request.at_s)
        need, level, min_tier = request.tokens_in + request.max_output_tokens, 0, 0
        while True:
            chosen = self._plan(request, start, min_tier, need, self._flags.busy(job.now))
            if chosen.empty:
                return self._end(job, error="context_too_long")
            outcome = self._generate(job, chosen)
            if isinstance(outcome, str):
                return self._end(job, error=outcome)
            if self._passes(job, outcome):
                return self._end(job, tier=outcome.tier)
            route = Route(request.tokens_in, request.max_output_tokens, start, min_tier=min_tier)
            stronger = fallback.escalation_tier(route, outcome.tier, level, self.catalog,
                                                max_escalations=self.scenario.max_escalations)
            job.served.escalations += 1
            if stronger is None:
                return self._end(job, error="quality")
            level, min_tier = level + 1, stronger
            job.now += self.scenario.requeue_ms / 1000

    def _plan(self, request: Request, start: int, min_tier: int, need: int, busy: frozenset[str]) -> Plan:
        """`plan()` for this request, memoised on what it depends on: the context windows
        too small for `need` tokens, start and minimum tier, busy models."""
        key = (start, min_tier, bisect.bisect_left(self._contexts, need), busy)
        found = self._plans.get(key)
        if found is None:
            route = Route(request.tokens_in, request.max_output_tokens, start, min_tier=min_tier)
            found = self._plans[key] = plan(route, busy, self.catalog)
        return found

    def _generate(self, job: _Job, chosen: Plan) -> Candidate | str:
        """Attempts within the budget, as `Router.generate`: the candidate that answered,
        or the failure code of the job."""
        deadline = job.now + self.scenario.soft_time_limit_s - DEADLINE_MARGIN_S
        for n in range(self.scenario.attempt_budget):
            candidate = fallback.candidate_for(chosen, n)
            remaining = deadline - job.now
            if remaining <= 0:
                return "timeout"
            failed = self._call(job, candidate, min(candidate.timeout_s, remaining))
            if failed is None:
                return candidate
            job.served.failed_calls += 1
            decision = fallback.on_failure(failed)
            if decision.busy_ttl_s is not None:
                self._flags.mark(candidate.model.name, job.now, decision.busy_ttl_s * self.time_scale)
            if decision.ends_job:
                return failed.code
            job.now += fallback.backoff_s(n, step_s=self.scenario.backoff_s, left_s=deadline - job.now)
        return "budget_exhausted"

    def _call(self, job: _Job, candidate: Candidate, timeout_s: float) -> errors.ProviderError | None:
        """One simulated call: advances the job's clock; the error it raised, or None."""
        model = self._models[candidate.model.name]
        for start, end, kind, retry_after in model.outages:
            if start <= job.now < end:
                job.now += timeout_s if kind == "timeout" else self.scenario.failed_call_ms / 1000
                return simulated_error(kind, retry_after, candidate.model.name)
        tokens_out = min(job.request.tokens_out, job.request.max_output_tokens)
        latency_s = (math.exp(self._rng.gauss(model.mu, model.sigma)) + model.ms_per_token * tokens_out) / 1000
        if latency_s > timeout_s:
            job.now += timeout_s
            return simulated_error("timeout", None, candidate.model.name)
        job.now += latency_s
        job.served.cost_usd += model.spec.cost_usd(job.request.tokens_in, tokens_out)
        job.answer = (job.request.tokens_in, tokens_out)
        return None

    def _passes(self, job: _Job, candidate: Candidate) -> bool:
        curve = self._models[candidate.model.name].curve
        rate = curve.pass_rate(job.request.tokens_in, job.request.category)
        return rate >= 1.0 or draw(self.scenario.seed, job.job_id, candidate.model.name) < rate

    def _end(self, job: _Job, *, tier: int | None = None, error: str | None = None) -> Served:
        served = job.served
        served.tier, served.error = tier, error
        served.latency_ms = (job.now - job.request.at_s) * 1000
        served.all_large_usd = self._large.cost_usd(*job.answer) if job.answer != (0, 0) else 0.0
        return served

    def _build_models(self, first_s: float) -> dict[str, _Model]:
        models = {}
        for position, tier in enumerate(self.catalog.tiers):
            for spec in tier.models:
                latency = self.scenario.latency_of(spec.name, tier.name, position)
                outages = tuple((*o.window(first_s), o.error, o.retry_after_s)
                                for o in self.scenario.outages if o.model == spec.name)
                models[spec.name] = _Model(
                    spec=spec, mu=math.log(latency.p50_ms),
                    sigma=max(0.0, math.log(latency.p95_ms / latency.p50_ms)) / _Z95,
                    ms_per_token=latency.ms_per_output_token,
                    curve=self.scenario.quality_of(spec.name, tier.name, position), outages=outages,
                )
        unknown = {o.model for o in self.scenario.outages} - set(models)
        if unknown:
            raise WorkloadError(f"scenario: outages name models not in the catalog: {sorted(unknown)}")
        return models
