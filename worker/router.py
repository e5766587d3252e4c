"""The router: count, plan, attempt, gate. Pure decisions are delegated to `plan`,
`policies` and `quality`; the job's record (`worker.record`) keeps the attempts and
builds the result; this module decides, calls, flags and counts.

One attempt budget is shared by retries and fallbacks. Each attempt gets the full
conversation and a timeout cut to what remains before the job's deadline.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from contract.codes import ErrorCode
from contract.schemas import Attempt, Carry, ErrorInfo, Job, JobResult
from worker import errors, fallback, quality, tracing
from worker.catalog import Catalog
from worker.keys import BUSY_TTL_S
from worker.live import LiveRouting
from worker.metrics import Metrics
from worker.plan import Candidate, Plan, Route, plan
from worker.policies import POLICIES
from worker.providers.base import ChatRequest, ChatResponse, Provider
from worker.record import Generation, JobRecord, Ladder
from worker.state import RoutingState
from worker.steering import steer
from worker.tokens import TokenCount, TokenCounter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Escalate:
    """Re-queue the job to `carry.min_tier` and up: the answer failed the quality gate."""

    carry: Carry


Decision = JobResult | Escalate


@dataclass(frozen=True)
class RouterConfig:
    attempt_budget: int = 3
    backoff_s: float = 0.05
    max_escalations: int = 2
    default_policy: str = "tokens"
    # Every candidate at its shared rate limit: wait for the first to free up (within the
    # deadline) instead of failing the job `rate_limited`.
    rate_limit_wait: bool = False
    busy_ttl_s: float = BUSY_TTL_S


class Router:
    """Routes jobs over `catalog` through `providers` (model name → provider)."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        providers: Mapping[str, Provider],
        state: RoutingState,
        counter: TokenCounter,
        metrics: Metrics,
        config: RouterConfig,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        live: LiveRouting | None = None,
    ) -> None:
        self._catalog = catalog
        self._live = live
        self._providers = providers
        self._state = state
        self._counter = counter
        self._metrics = metrics
        self._config = config
        self._clock = clock
        self._sleep = sleep

    @property
    def catalog(self) -> Catalog:
        """The catalog routed on: the file's, with the live overlay's thresholds."""
        return self._live.live.catalog if self._live is not None else self._catalog

    def route(self, job: Job, record: JobRecord, busy: frozenset[str]) -> Decision:
        """Run `job` to a result, or to an escalation; `busy` are the flagged models."""
        route = self.route_for(job, record)
        ladder = Ladder.of(record.carry)
        budget = self._live.budget(record.team) if self._live is not None else None
        if budget == "refuse":
            return self.failed(record, ErrorInfo(code=ErrorCode.BUDGET_EXCEEDED, message=(
                f"the daily budget of team {record.team or '*'!r} is spent; its jobs are refused until it resets")))
        if budget == "cheapest":
            self._metrics.incr("budget:cheapest")
            route = dataclasses.replace(route, start_tier=0)
        chosen = self.plan_for(route, busy, key=f"{record.job_id}:{ladder.level}")
        if chosen.empty:
            return self.failed(record, self.no_fit(route))
        if chosen.all_busy:
            self._metrics.incr("routing:all_busy")
        generated = self.generate(job, chosen, record, ladder)
        if isinstance(generated, ErrorInfo):
            return self.failed(record, generated)
        verdict = quality.check(generated.response.content, job.quality)
        if verdict.ok:
            return self.succeeded(record, generated, verdict.parsed)
        return self.escalate_or_fail(job, record, generated, verdict, route, ladder)

    def plan_for(self, route: Route, busy: frozenset[str], *, key: str = "") -> Plan:
        """The candidates for `route` among the models this worker can call and that are not
        drained, steered by the live weights and circuits; `key` draws the weighted pick."""
        if self._live is None:
            return plan(route, busy, self.catalog, available=self._providers.keys())
        drained = self._live.drained
        available = [m for m in self._providers if m not in drained]
        return steer(plan(route, busy, self.catalog, available=available), self._live.steering(), key=key)

    def no_fit(self, route: Route) -> ErrorInfo:
        """Why `route` has no candidate: its pinned model or every model that fits is uncallable
        here (no key for its provider), or no model's context holds it."""
        if route.pin_model is not None and self._live is not None and route.pin_model in self._live.drained:
            return ErrorInfo(code=ErrorCode.MODEL_UNAVAILABLE, message=f"pinned model {route.pin_model!r} is drained")
        if route.pin_model is not None and route.pin_model not in self._providers:
            return ErrorInfo(code=ErrorCode.MODEL_UNAVAILABLE, message=f"pinned model {route.pin_model!r} "
                             "cannot be called by this worker: its provider has no key set")
        need = route.need
        if not plan(route, frozenset(), self.catalog).empty:
            return ErrorInfo(code=ErrorCode.MODEL_UNAVAILABLE, message=(
                f"the models whose context holds the conversation ({need} tokens with the output "
                "budget) cannot be called by this worker: their providers have no key set"))
        return ErrorInfo(
            code=ErrorCode.CONTEXT_TOO_LONG,
            message=f"the conversation ({route.tokens} tokens) plus the output budget "
            f"({route.output_tokens}) needs {need} tokens: no allowed model's context holds it",
        )

    def route_for(self, job: Job, record: JobRecord) -> Route:
        """The routing facts of `job`; raises `InvalidJob` for names the catalog lacks."""
        policy_name = job.policy or self._config.default_policy
        policy = POLICIES.get(policy_name)
        if policy is None:
            raise errors.InvalidJob(
                f"unknown policy {policy_name!r}; known: {sorted(POLICIES)}", code=ErrorCode.UNKNOWN_POLICY
            )
        if job.pin_model is not None and self.catalog.model(job.pin_model) is None:
            raise errors.InvalidJob(
                f"pinned model {job.pin_model!r} is not in the catalog; "
                f"known: {list(self.catalog.model_names)}",
                code=ErrorCode.UNKNOWN_PINNED_MODEL,
            )
        min_tier = max(self._tier(job.min_tier), record.carry.min_tier)
        if job.critical:
            min_tier = len(self.catalog.tiers) - 1
        record.routed = self._count(job, record.carry)
        record.policy = policy_name
        team = job.metadata.get("team")
        record.team = team if isinstance(team, str) else None
        return Route(
            tokens=record.routed.tokens,
            output_tokens=job.max_output_tokens,
            start_tier=policy.start_tier(record.routed.tokens, self.catalog),
            min_tier=min_tier,
            pin_model=job.pin_model,
        )

    def _count(self, job: Job, carry: Carry) -> TokenCount:
        """The routed count: carried by a re-queued job, else counted (and carried) now."""
        if carry.routed_tokens is not None:
            return TokenCount(carry.routed_tokens, carry.routed_tokens_exact)
        small = self.catalog.tiers[0].max_tokens
        count = self._counter.conversation([m.content for m in job.messages], bound=small)
        carry.routed_tokens, carry.routed_tokens_exact = count.tokens, count.exact
        return count

    def generate(self, job: Job, chosen: Plan, record: JobRecord, ladder: Ladder) -> Generation | ErrorInfo:
        """Try the plan's candidates (then again from the top) within the attempt budget.

        ladder: the escalation state of this generation (its level goes on each attempt).
        """
        request = _request(job, record.job_id)
        candidates, turn = chosen.candidates, 0
        for n in range(self._config.attempt_budget):
            admitted = self._admitted(candidates, turn, request, record)
            if isinstance(admitted, ErrorInfo):
                return admitted
            candidate, turn = admitted
            remaining = record.deadline - self._clock()
            if remaining <= 0:
                return ErrorInfo(code=ErrorCode.OUT_OF_TIME, message=_timeout_message(record))
            outcome = self._attempt(request, candidate, record, ladder, min(candidate.timeout_s, remaining))
            if isinstance(outcome, Generation | ErrorInfo):
                return outcome
            self._sleep(fallback.backoff_s(n, step_s=self._config.backoff_s, left_s=record.deadline - self._clock()))
        return ErrorInfo(
            code=ErrorCode.BUDGET_EXHAUSTED,
            message=f"{self._config.attempt_budget} attempts failed: "
            + "; ".join(f"{a.model}: {a.error_code}" for a in record.carry.attempts[-3:]),
        )

    def _admitted(
        self, candidates: tuple[Candidate, ...], turn: int, request: ChatRequest, record: JobRecord
    ) -> tuple[Candidate, int] | ErrorInfo:
        """The next candidate from `turn` on whose shared rate limit admits a call, and the
        turn after it; every one at its limit: wait if configured and the deadline allows."""
        if self._live is None:
            return candidates[turn % len(candidates)], turn + 1
        tokens = (record.routed.tokens if record.routed else 0) + request.max_output_tokens
        while True:
            waits = []
            for i in range(len(candidates)):
                candidate = candidates[(turn + i) % len(candidates)]
                admission = self._live.admit(candidate.model.name, tokens=tokens)
                if admission.admitted:
                    return candidate, turn + i + 1
                self._metrics.incr("ratelimit:refused")
                waits.append(admission.wait_s)
            wait = min(waits)
            if not self._config.rate_limit_wait or self._clock() + wait >= record.deadline:
                return ErrorInfo(code=ErrorCode.RATE_LIMITED, message=(
                    f"every candidate is at its shared rate limit ({len(candidates)} tried); "
                    f"the first frees up in {wait:.1f}s"))
            self._sleep(wait)

    def _attempt(
        self, request: ChatRequest, candidate: Candidate, record: JobRecord, ladder: Ladder, timeout_s: float
    ) -> Generation | ErrorInfo | None:
        """One call. A Generation or a final error ends the loop; None moves on.

        A `timeout_s` shorter than the tier's is the time the job has left: a timeout then is
        the job's, not the model's. The call is listed as cut short by the time limit, the
        model is not flagged, and the job ends `out_of_time`.
        Anything else raised (the soft time limit) leaves the call in the record as under
        way, so the interrupted call is still listed in the result.
        """
        provider = self._providers[candidate.model.name]
        with tracing.attempt_span(model=candidate.model.name, provider=provider.name, tier=candidate.tier_name) as span:
            started = self._clock()
            record.call_started(candidate, provider.name, started, ladder.level)
            try:
                response = provider.chat(_for_model(request, candidate.model.name), timeout_s=timeout_s)
            except errors.ProviderError as exc:
                failed: ErrorInfo | None
                if isinstance(exc, errors.ProviderTimeout) and timeout_s < candidate.timeout_s:
                    record.call_cut_short(self._clock(), code=ErrorCode.SOFT_TIME_LIMIT)
                    failed = ErrorInfo(code=ErrorCode.OUT_OF_TIME, message=_timeout_message(record))
                else:
                    failed = self._provider_failed(record, candidate, provider, exc, started)
                tracing.describe_attempt(span, record.carry.attempts[-1])
                return failed
            tokens = self._tokens(request, response)
            generated = record.call_answered(response, tokens=tokens, latency_ms=(self._clock() - started) * 1000)
            tracing.describe_attempt(span, generated.attempt)
        self._metrics.incr("attempts:ok")
        if self._live is not None:
            self._live.attempted(candidate.model.name, ok=True, latency_ms=generated.attempt.latency_ms)
            self._live.told(candidate.model.name, response.remaining)
        return generated

    def _provider_failed(
        self, record: JobRecord, candidate: Candidate, provider: Provider,
        exc: errors.ProviderError, started: float,
    ) -> ErrorInfo | None:
        """Record a failed call; flag the model as its failure kind says (`fallback.on_failure`)."""
        latency_ms = (self._clock() - started) * 1000
        record.call_failed(exc, latency_ms=latency_ms)
        self._metrics.incr(f"attempts:{exc.kind}")
        log.warning(
            "attempt failed job=%s model=%s tier=%s attempt=%d kind=%s code=%s",
            record.job_id, candidate.model.name, candidate.tier_name,
            len(record.carry.attempts), exc.kind, exc.code,
        )
        decision = fallback.on_failure(exc, busy_ttl_s=self._config.busy_ttl_s)
        if isinstance(exc, errors.ConfigurationError):
            log.error(
                "configuration failure job=%s model=%s provider=%s code=%s: %s; model disabled for %ss",
                record.job_id, candidate.model.name, provider.name, exc.code, exc, decision.busy_ttl_s,
            )
        if decision.busy_ttl_s is not None:
            if self._live is not None:
                self._live.attempted(candidate.model.name, ok=False, latency_ms=latency_ms)
            self._state.mark_busy(candidate.model.name, ttl_s=decision.busy_ttl_s, reason=f"{exc.kind}:{exc.code}")
        if decision.ends_job:
            return ErrorInfo(code=exc.code, message=f"{candidate.model.name} refused the request: {exc}")
        return None

    def _tokens(self, request: ChatRequest, response: ChatResponse) -> tuple[int, int]:
        """Tokens in and out of a call: the provider's usage, else counted here."""
        tokens_in = response.tokens_in
        if tokens_in is None:
            tokens_in = self._counter.conversation([m["content"] for m in request.messages]).tokens
        tokens_out = response.tokens_out
        if tokens_out is None:
            tokens_out = self._counter.text(response.content)
        return tokens_in, tokens_out

    def escalate_or_fail(
        self, job: Job, record: JobRecord, generated: Generation, verdict: quality.Verdict, route: Route,
        ladder: Ladder,
    ) -> Decision:
        """Record the failed check; move `ladder` up to the next tier that can take `route` and
        Escalate there if the bound allows, else fail `quality` with the answer attached."""
        stronger = fallback.escalation_tier(
            route, generated.candidate.tier, ladder.level, self.catalog,
            max_escalations=self._config.max_escalations, available=self._providers.keys(),
        )
        to_tier = self.catalog.tiers[stronger].name if stronger is not None else None
        record.rejected(generated, check=verdict.check, reason=verdict.reason, to_tier=to_tier)
        self._metrics.incr(f"quality:{verdict.check}")
        log.info(
            "quality check failed job=%s model=%s tier=%s check=%s next=%s",
            record.job_id, generated.candidate.model.name, generated.candidate.tier_name,
            verdict.check, to_tier or "none",
        )
        if stronger is None:
            error = ErrorInfo(code=ErrorCode.QUALITY, message=f"{verdict.check}: {verdict.reason}")
            return self._counted(record, record.failed(error, generated=generated))
        ladder.level += 1
        ladder.min_tier = stronger
        return Escalate(record.escalated(ladder))

    def succeeded(self, record: JobRecord, generated: Generation, parsed: Any) -> JobResult:
        return self._counted(record, record.succeeded(generated, parsed))

    def failed(self, record: JobRecord, error: ErrorInfo) -> JobResult:
        return self._counted(record, record.failed(error))

    def interrupted(
        self, record: JobRecord, message: str, *, cut_by: ErrorCode, code: ErrorCode = ErrorCode.OUT_OF_TIME,
    ) -> JobResult:
        """The job was stopped mid-call: fail it with `code` and `message`, the call under way
        listed as interrupted, cut by `cut_by` (what stopped it: a time limit, an error)."""
        record.call_cut_short(self._clock(), code=cut_by)
        return self.failed(record, ErrorInfo(code=code, message=message))

    def attempts_so_far(self, record: JobRecord) -> list[Attempt]:
        """The job's attempts, its call under way listed as interrupted (for its journal)."""
        return record.attempts_so_far(self._clock())

    def _counted(self, record: JobRecord, result: JobResult) -> JobResult:
        """`result`, counted, and its cost spent from the team's daily budget."""
        self._metrics.incr(f"jobs:{result.status}" + (f":{result.error.code}" if result.error else ""))
        if self._live is not None:
            self._live.spent(record.team, result.cost_usd)
        return result

    def _tier(self, name: str | None) -> int:
        if name is None:
            return 0
        try:
            return self.catalog.tier_index(name)
        except KeyError:
            known = [t.name for t in self.catalog.tiers]
            raise errors.InvalidJob(
                f"unknown min_tier {name!r}; known: {known}", code=ErrorCode.UNKNOWN_TIER
            ) from None


def _request(job: Job, job_id: str) -> ChatRequest:
    spec = job.quality
    return ChatRequest(
        model="",
        messages=tuple({"role": m.role, "content": m.content} for m in job.messages),
        max_output_tokens=job.max_output_tokens,
        temperature=job.temperature,
        json_mode=quality.wants_json(spec),
        json_schema=quality.request_schema(spec),
        job_id=job_id,
        metadata=job.metadata,
    )


def _for_model(request: ChatRequest, model: str) -> ChatRequest:
    return dataclasses.replace(request, model=model)


def _timeout_message(record: JobRecord) -> str:
    return f"the job ran out of time after {len(record.carry.attempts)} attempts"
