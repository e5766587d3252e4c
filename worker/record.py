"""The job's record: what one job did in this process, and the JobResult it ends as.

The router decides and calls; the record keeps the attempts (failed, generated, cut
short), the escalations and the routing facts, and builds the result from them. An
escalation state (`Ladder`) says where a generation stands: a conversation's is its
carry's (it travels with the re-queued message), each extraction chunk has its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from contract.codes import KIND, ErrorCode
from contract.schemas import Attempt, Carry, ErrorInfo, Escalation, JobResult
from worker import errors
from worker.plan import Candidate
from worker.providers.base import ChatResponse
from worker.tokens import TokenCount


@dataclass(frozen=True)
class Generation:
    """An answer a model gave, with the candidate that gave it and its attempt record."""

    candidate: Candidate
    response: ChatResponse
    attempt: Attempt


@dataclass
class Ladder:
    """Escalation state: escalations so far (`level`) and the lowest tier allowed now."""

    level: int = 0
    min_tier: int = 0

    @classmethod
    def of(cls, carry: Carry) -> Ladder:
        """The state `carry` brings: a re-queued job's (or chunk's) rung, 0 for a new one."""
        return cls(carry.level, carry.min_tier)


@dataclass
class JobRecord:
    """The life of one job in this process: what it carried in, its deadline, its call."""

    job_id: str
    carry: Carry
    deadline: float
    routed: TokenCount | None = None
    policy: str | None = None
    # The call under way (candidate, provider, start on the monotonic clock, level), so a
    # call cut short (a time limit, an internal error, its process stopped) is still listed.
    in_flight: tuple[Candidate, str, float, int] | None = None
    team: str | None = None
    # The job payload's fingerprint, stored with its result (one id, one job).
    fingerprint: str | None = None
    # The decision is the result an earlier delivery stored: the metrics counted it then.
    replayed: bool = False

    def call_started(self, candidate: Candidate, provider: str, started: float, level: int) -> None:
        self.in_flight = (candidate, provider, started, level)

    def call_failed(self, exc: errors.ProviderError, *, latency_ms: float) -> Attempt:
        """List the call under way as failed with `exc`'s kind and code."""
        candidate, provider, _, level = self._end_call()
        attempt = Attempt(
            model=candidate.model.name, tier=candidate.tier_name, provider=provider,
            outcome=exc.kind, error_kind=exc.kind, error_code=exc.code,  # type: ignore[arg-type]
            latency_ms=round(latency_ms, 3), level=level,
        )
        self.carry.attempts.append(attempt)
        return attempt

    def call_answered(self, response: ChatResponse, *, tokens: tuple[int, int], latency_ms: float) -> Generation:
        """List the call under way as answered; `tokens` are its tokens in and out."""
        candidate, provider, _, level = self._end_call()
        attempt = Attempt(
            model=candidate.model.name, tier=candidate.tier_name, provider=provider,
            outcome="ok", latency_ms=round(latency_ms, 3), tokens_in=tokens[0], tokens_out=tokens[1],
            cost_usd=candidate.model.cost_usd(*tokens), level=level,
        )
        self.carry.attempts.append(attempt)
        return Generation(candidate, response, attempt)

    def call_cut_short(self, now: float, *, code: ErrorCode) -> None:
        """List the call under way, if any, as interrupted (`code` says by what: the soft or
        the hard time limit, an internal error)."""
        cut = self.cut_attempt(now, code=code)
        if cut is not None:
            self.in_flight = None
            self.carry.attempts.append(cut)

    def cut_attempt(self, now: float, *, code: ErrorCode) -> Attempt | None:
        """The call under way as an attempt cut short at `now` (`code` says by what); None
        between calls. The record is left as it is (a journal reads it while the call runs)."""
        call = self.in_flight  # read once: the heartbeat thread reads it while the job runs
        if call is None:
            return None
        candidate, provider, started, level = call
        return Attempt(
            model=candidate.model.name, tier=candidate.tier_name, provider=provider,
            outcome="interrupted", error_kind=KIND[code], error_code=code,
            latency_ms=round((now - started) * 1000, 3), level=level,
        )

    def attempts_so_far(self, now: float) -> list[Attempt]:
        """The job's attempts, its call under way listed as stopped with its process (for
        the job's journal: what a redelivery inherits if this process dies)."""
        cut = self.cut_attempt(now, code=ErrorCode.PROCESS_STOPPED)
        return [*self.carry.attempts, *([cut] if cut is not None else [])]

    def rejected(self, generated: Generation, *, check: str, reason: str, to_tier: str | None) -> None:
        """The quality gate turned `generated` down; the job goes to `to_tier` (None: nowhere)."""
        generated.attempt.rejected = check
        self.carry.escalations.append(Escalation(
            from_tier=generated.candidate.tier_name, to_tier=to_tier,
            model=generated.candidate.model.name, check=check, reason=reason,
        ))

    def escalated(self, ladder: Ladder) -> Carry:
        """The carry to re-queue the job with: its attempts so far, at `ladder`'s rung."""
        self.carry.level, self.carry.min_tier = ladder.level, ladder.min_tier
        return self.carry

    def succeeded(self, generated: Generation, parsed: Any) -> JobResult:
        return self.result("succeeded", generated=generated, parsed=parsed)

    def failed(self, error: ErrorInfo, *, generated: Generation | None = None) -> JobResult:
        return self.result("failed", error=error, generated=generated)

    def result(
        self, status: str, *, error: ErrorInfo | None = None, generated: Generation | None = None,
        parsed: Any = None,
    ) -> JobResult:
        """The JobResult: the answer used (if any), and every attempt and escalation."""
        attempts = self.carry.attempts
        routed = self.routed
        return JobResult(
            job_id=self.job_id, status=status, error=error,  # type: ignore[arg-type]
            content=generated.response.content if generated else None, parsed=parsed,
            finish_reason=generated.response.finish_reason if generated else None,
            model=generated.candidate.model.name if generated else None,
            tier=generated.candidate.tier_name if generated else None,
            provider=generated.attempt.provider if generated else None,
            tokens_in=sum(a.tokens_in for a in attempts),
            tokens_out=sum(a.tokens_out for a in attempts),
            cost_usd=sum(a.cost_usd for a in attempts),
            latency_ms=round((time.time() - self.carry.started_at) * 1000, 3),
            routed_tokens=routed.tokens if routed else 0,
            routed_tokens_exact=routed.exact if routed else True,
            policy=self.policy, attempts=attempts, escalations=self.carry.escalations,
            fingerprint=self.fingerprint,
        )

    def _end_call(self) -> tuple[Candidate, str, float, int]:
        assert self.in_flight is not None, "no call under way"
        call, self.in_flight = self.in_flight, None
        return call
