"""Extraction over the router: a document and a schema → chunks → one validated JSON.

`start` plans a document: its route, the chunk budget the contexts allow, its chunks.
A document of one chunk is extracted in its own task (`chunk`), like a conversation:
a poor answer is re-queued one tier up under the same job id. A document of several
chunks becomes a `Fanout`: the task replaces itself with a Celery chord, one task per
chunk (`tierline.extract_chunk`, each with its own time limits, on any worker, each
escalating on its own through the queue) and a merge step (`tierline.extract_merge`,
`merged`) that runs under the document's job id once every chunk has a result.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from contract.codes import ErrorCode
from contract.names import chunk_index
from contract.schemas import Carry, ChunkJob, ErrorInfo, ExtractionJob, Job, JobResult, MergeJob, Message, QualitySpec
from worker import quality
from worker.extraction import chunk_budget, chunk_prompt, offsets, provider_schema, split, system_prompt
from worker.merge import merge, merge_plan
from worker.metrics import Metrics
from worker.plan import Route, first_tier
from worker.provenance import Span, sources_of
from worker.record import JobRecord, Ladder
from worker.router import Decision, Escalate, Router
from worker.state import RoutingState
from worker.tokens import PER_MESSAGE_TOKENS, TokenCounter

log = logging.getLogger(__name__)

# Below this many document tokens per chunk the prompt and output budget leave too little room.
MIN_CHUNK_TOKENS = 64


@dataclass(frozen=True)
class Fanout:
    """A document of several chunks: a task per chunk, then the merge."""

    chunks: list[ChunkJob]
    merge: MergeJob


@dataclass(frozen=True)
class ChunkEscalate:
    """A one-chunk document whose answer was poor: its chunk goes one tier up, as a chunk task."""

    chunk: ChunkJob
    carry: Carry


Started = JobResult | ChunkEscalate | Fanout


class Extractor:
    """Runs extraction jobs through `router`, reading busy flags from `state`."""

    def __init__(
        self, router: Router, state: RoutingState, counter: TokenCounter, metrics: Metrics
    ) -> None:
        self._router = router
        self._state = state
        self._counter = counter
        self._metrics = metrics

    def start(self, job: ExtractionJob, record: JobRecord, busy: frozenset[str]) -> Started:
        """Plan `job`'s document; extract it here when it is one chunk; raises `InvalidJob`.

        busy: the flags read when the job was delivered.
        """
        chunks = self._chunks(job, record)
        if isinstance(chunks, ErrorInfo):
            return self._router.failed(record, chunks)
        if len(chunks) == 1:
            decision = self.chunk(chunks[0].job, record, busy)
            return ChunkEscalate(chunks[0].job, decision.carry) if isinstance(decision, Escalate) else decision
        problem = merge_plan(job.json_schema).problem
        if problem is not None:
            failed = self._router.failed(record, ErrorInfo(code=ErrorCode.UNMERGEABLE_SCHEMA, message=(
                f"the document needs {len(chunks)} chunks of up to {chunks[0].chunk_budget} tokens, "
                f"and the schema cannot merge them: {problem}")))
            return failed.model_copy(update={"chunks": len(chunks)})
        self._metrics.incr("extraction:chunks", len(chunks))
        routed = record.routed
        merging = MergeJob.model_validate(dict(
            schema=job.json_schema, chunk_total=len(chunks), started_at=record.carry.started_at,
            routed_tokens=routed.tokens if routed else 0, routed_tokens_exact=routed.exact if routed else True,
            policy=record.policy, provenance=job.provenance,
        ))
        return Fanout([c.job for c in chunks], merging)

    def _chunks(self, job: ExtractionJob, record: JobRecord) -> list[_Planned] | ErrorInfo:
        system = system_prompt(provider_schema(job.json_schema), job.instructions)
        route = self._router.route_for(_chat(job, system, job.document), record)
        budget = chunk_budget(
            context_tokens=self._context_tokens(route),
            prompt_tokens=self._counter.text(system) + 2 * PER_MESSAGE_TOKENS,
            output_tokens=job.max_output_tokens,
        )
        if budget < MIN_CHUNK_TOKENS:
            return ErrorInfo(code=ErrorCode.CONTEXT_TOO_LONG, message=(
                f"the extraction prompt and the output budget ({job.max_output_tokens} tokens) "
                "leave no room for the document in the chosen model's context"))
        texts = split(job.document, budget, self._counter.text)
        fields = job.model_dump(by_alias=True, exclude={"document", "job_id"})
        return [
            _Planned(ChunkJob.model_validate({
                **fields, "document": text, "chunk_index": i, "chunk_total": len(texts),
                "chunk_start": start, "start_tier": route.start_tier,
            }), budget)
            for i, (text, (start, _)) in enumerate(zip(texts, offsets(texts), strict=True))
        ]

    def _context_tokens(self, route: Route) -> int:
        """The smallest context among the models a chunk may go to, from its start tier up."""
        catalog = self._router.catalog
        if route.pin_model is not None:
            found = catalog.model(route.pin_model)
            return found[1].context_tokens if found else 0
        return min(m.context_tokens for tier in catalog.tiers[first_tier(route, catalog):] for m in tier.models)

    def chunk(self, job: ChunkJob, record: JobRecord, busy: frozenset[str] | None = None) -> Decision:
        """One chunk to a valid answer (a JobResult), or an escalation one tier up.

        busy: the flags read at delivery (None: read them now).
        """
        schema = provider_schema(job.json_schema)
        system = chunk_prompt(system_prompt(schema, job.instructions), job.chunk_index, job.chunk_total)
        spec = (job.quality or QualitySpec()).model_copy(update={"json_schema": schema, "json_output": True})
        chat = _chat(job, system, job.document, spec=spec)
        route = dataclasses.replace(self._router.route_for(chat, record), start_tier=job.start_tier)
        where = f"chunk {job.chunk_index + 1}/{job.chunk_total}" if job.chunk_total > 1 else "document"
        chosen = self._router.plan_for(route, busy if busy is not None else self._state.busy(
            self._router.catalog.model_names))
        if chosen.empty:
            why = self._router.no_fit(route)
            return self._located(job, self._router.failed(record, _at(where, why)))
        ladder = Ladder.of(record.carry)  # a chunk task's own: its carry is the chunk's
        generated = self._router.generate(chat, chosen, record, ladder)
        if isinstance(generated, ErrorInfo):
            return self._located(job, self._router.failed(record, _at(where, generated)))
        verdict = quality.check(generated.response.content, chat.quality, defaults=quality.EXTRACTION)
        if not verdict.ok:
            located = quality.Verdict(False, verdict.check, f"{where}: {verdict.reason}")
            decision = self._router.escalate_or_fail(chat, record, generated, located, route, ladder)
            return self._located(job, decision) if isinstance(decision, JobResult) else decision
        result = self._router.succeeded(record, generated, verdict.parsed)
        if job.provenance and isinstance(verdict.parsed, dict):
            span = Span(job.chunk_index, job.chunk_start, job.chunk_start + len(job.document))
            result.sources = sources_of(verdict.parsed, job.document, span)
        return self._located(job, result)

    @staticmethod
    def _located(job: ChunkJob, result: JobResult) -> JobResult:
        """`result` with every attempt naming its chunk; a whole document's says chunks=1."""
        if job.chunk_total == 1:
            return result.model_copy(update={"chunks": 1})
        attempts = [a.model_copy(update={"chunk": job.chunk_index}) for a in result.attempts]
        return result.model_copy(update={"attempts": attempts})

    def merged(self, job_id: str, job: MergeJob, parts: list[JobResult]) -> JobResult:
        """The document's JobResult from its chunks' results (any order): merged, or the
        first failed chunk's error; every chunk's attempts and escalations listed."""
        parts = sorted(parts, key=lambda p: chunk_index(p.job_id))
        document = _totals(job_id, job, parts)
        failed = next((p for p in parts if not p.ok), None)
        if failed is not None or len(parts) != job.chunk_total:
            error = _named(failed.error, failed, job.chunk_total) if failed is not None and failed.error else ErrorInfo(
                code=ErrorCode.INTERNAL_ERROR, message=f"{len(parts)} of {job.chunk_total} chunk results came back")
            self._metrics.incr(f"extraction:documents:failed:{error.code}")
            return document.model_copy(update={"status": "failed", "error": error,
                                               "content": failed.content if failed else None})
        plan = merge_plan(job.json_schema)
        done = merge([p.parsed for p in parts], plan.rules, [p.sources or {} for p in parts]
                     if job.provenance else None)
        invalid = quality.schema_error(done.value, job.json_schema)
        update: dict[str, Any] = {"content": json.dumps(done.value, ensure_ascii=False), "sources": done.sources}
        if invalid is not None:
            update.update(status="failed", error=ErrorInfo(
                code=ErrorCode.MERGE_INVALID, message=f"the merged answer is not valid for the schema: {invalid}"))
        else:
            update.update(status="succeeded", parsed=done.value, **self._strongest(parts))
        self._metrics.incr(f"extraction:documents:{update['status']}")
        return document.model_copy(update=update)

    def _strongest(self, parts: list[JobResult]) -> dict[str, Any]:
        """Model, tier, provider and finish reason of the strongest tier that answered."""
        catalog = self._router.catalog
        best = max(parts, key=lambda p: catalog.tier_index(p.tier) if p.tier else -1)
        return {"model": best.model, "tier": best.tier, "provider": best.provider,
                "finish_reason": best.finish_reason}


@dataclass(frozen=True)
class _Planned:
    job: ChunkJob
    chunk_budget: int


def _totals(job_id: str, job: MergeJob, parts: list[JobResult]) -> JobResult:
    attempts = [a if a.chunk is not None else a.model_copy(update={"chunk": chunk_index(p.job_id)})
                for p in parts for a in p.attempts]
    return JobResult(
        job_id=job_id, status="failed", chunks=job.chunk_total, policy=job.policy,
        tokens_in=sum(a.tokens_in for a in attempts), tokens_out=sum(a.tokens_out for a in attempts),
        cost_usd=sum(a.cost_usd for a in attempts),
        latency_ms=round((time.time() - job.started_at) * 1000, 3),
        routed_tokens=job.routed_tokens, routed_tokens_exact=job.routed_tokens_exact,
        attempts=attempts, escalations=[e for p in parts for e in p.escalations],
    )


def _named(error: ErrorInfo, part: JobResult, total: int) -> ErrorInfo:
    """A failed chunk's `error`, naming the chunk. A chunk that ended at its task's boundary
    (a time limit, an internal error) did not name itself, nor list its attempts' chunk."""
    where = f"chunk {chunk_index(part.job_id) + 1}/{total}"
    return error if where in error.message else _at(where, error)


def _at(where: str, error: ErrorInfo) -> ErrorInfo:
    return ErrorInfo(code=error.code, message=f"{where}: {error.message}")


def _chat(job: ExtractionJob, system: str, text: str, *, spec: QualitySpec | None = None) -> Job:
    """The conversation that asks for `text`'s extraction, with the job's routing options."""
    return Job(
        messages=(Message(role="system", content=system), Message(role="user", content=text)),
        critical=job.critical, pin_model=job.pin_model, min_tier=job.min_tier,
        max_output_tokens=job.max_output_tokens, temperature=job.temperature,
        policy=job.policy, quality=spec,
    )
