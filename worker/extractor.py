"""Extraction over the router: a document and a schema → chunks → one validated JSON.

Chunks of one document run in this process, one after the other, inside one task
(`tierline.extract`): each chunk is planned (fresh busy flags), generated through
`Router.generate` (the same fallback loop and attempt records as conversations), checked
by the quality gate with the extraction defaults, and on a failed check retried one
tier up, in process, at most `max_escalations` times per chunk. Why not through the
queue: the merge needs every chunk, so a chord would add a join point whose parts
can each be replaced, and escalating a chunk through the broker would re-run the chunks
already answered or carry them in the message. Here a poor chunk costs one more call
for that chunk only, and the job still ends as one JobResult under its own id. A batch
pipeline gets its parallelism from many documents at once; one very long document is
bounded by the task's time limit.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from contract.schemas import ErrorInfo, ExtractionJob, Job, JobResult, Message, QualitySpec
from worker import quality
from worker.extraction import (
    MergePlan,
    chunk_budget,
    chunk_prompt,
    merge,
    merge_plan,
    provider_schema,
    split,
    system_prompt,
)
from worker.metrics import Metrics
from worker.plan import Route
from worker.router import Generation, JobRecord, Router
from worker.state import RoutingState
from worker.tokens import PER_MESSAGE_TOKENS, TokenCounter

log = logging.getLogger(__name__)

# Below this many document tokens per chunk the prompt and output budget leave too little room.
MIN_CHUNK_TOKENS = 64


@dataclass(frozen=True)
class ChunkAnswer:
    generated: Generation
    value: dict[str, Any]


@dataclass(frozen=True)
class Prepared:
    """A document ready to extract: its chunks, prompt, checks and merge rules."""

    job: ExtractionJob
    route: Route
    system: str
    spec: QualitySpec
    chunks: list[str]
    budget: int
    merging: MergePlan


class Extractor:
    """Runs extraction jobs through `router`, reading busy flags from `state`."""

    def __init__(
        self, router: Router, state: RoutingState, counter: TokenCounter, metrics: Metrics
    ) -> None:
        self._router = router
        self._state = state
        self._counter = counter
        self._metrics = metrics

    def run(self, job: ExtractionJob, record: JobRecord, busy: frozenset[str]) -> JobResult:
        """Extract `job`'s document to one JSON value; raises `InvalidJob` for bad names.

        busy: the flags read when the job was delivered, used for its first plan; later
        chunks and escalations read them again (time has passed).
        """
        prepared = self._prepare(job, record)
        if isinstance(prepared, ErrorInfo):
            return self._router.failed(record, prepared)
        total = len(prepared.chunks)
        if total > 1 and prepared.merging.problem is not None:
            failed = self._router.failed(record, ErrorInfo(code="unmergeable_schema", message=(
                f"the document needs {total} chunks of up to {prepared.budget} tokens, "
                f"and the schema cannot merge them: {prepared.merging.problem}")))
            return failed.model_copy(update={"chunks": total})
        self._metrics.incr("extraction:chunks", total)
        answers = []
        for index in range(total):
            answer = self._chunk(prepared, record, index, busy if index == 0 else None)
            if isinstance(answer, JobResult):
                return answer.model_copy(update={"chunks": total})
            answers.append(answer)
        return self._merged(prepared, record, answers)

    def _prepare(self, job: ExtractionJob, record: JobRecord) -> Prepared | ErrorInfo:
        schema = provider_schema(job.json_schema)
        system = system_prompt(schema, job.instructions)
        route = self._router.route_for(_chat(job, system, job.document), record)
        budget = chunk_budget(
            context_tokens=self._context_tokens(route),
            prompt_tokens=self._counter.text(system) + 2 * PER_MESSAGE_TOKENS,
            output_tokens=job.max_output_tokens,
        )
        if budget < MIN_CHUNK_TOKENS:
            return ErrorInfo(code="context_too_long", message=(
                f"the extraction prompt and the output budget ({job.max_output_tokens} tokens) "
                "leave no room for the document in the chosen model's context"))
        chunks = split(job.document, budget, self._counter.text)
        spec = (job.quality or QualitySpec()).model_copy(update={"json_schema": schema, "json_output": True})
        return Prepared(job, route, system, spec, chunks, budget, merge_plan(job.json_schema))

    def _context_tokens(self, route: Route) -> int:
        """The smallest context among the models a chunk may go to, from its start tier up."""
        catalog = self._router.catalog
        if route.pin_model is not None:
            found = catalog.model(route.pin_model)
            return found[1].context_tokens if found else 0
        start = min(max(route.start_tier, route.min_tier), len(catalog.tiers) - 1)
        return min(m.context_tokens for tier in catalog.tiers[start:] for m in tier.models)

    def _chunk(
        self, prepared: Prepared, record: JobRecord, index: int, busy: frozenset[str] | None
    ) -> ChunkAnswer | JobResult:
        """One chunk to a valid answer, escalating on failed checks; a failed JobResult ends it."""
        job, total = prepared.job, len(prepared.chunks)
        system, text = chunk_prompt(prepared.system, index, total), prepared.chunks[index]
        chat = _chat(job, system, text, spec=prepared.spec)
        tokens = self._counter.conversation([system, text]).tokens
        record.carry.level, record.carry.min_tier = 0, prepared.route.min_tier
        where = f"chunk {index + 1}/{total}" if total > 1 else "document"
        while True:
            route = Route(tokens=tokens, output_tokens=job.max_output_tokens,
                          start_tier=prepared.route.start_tier, min_tier=record.carry.min_tier,
                          pin_model=job.pin_model)
            if busy is None:
                busy = self._state.busy(self._router.catalog.model_names)
            chosen = self._router.plan_for(route, busy)
            busy = None
            if chosen.empty:
                why = self._router.no_fit(route)
                return self._router.failed(record, ErrorInfo(code=why.code, message=f"{where}: {why.message}"))
            generated = self._router.generate(chat, chosen, record)
            if isinstance(generated, ErrorInfo):
                return self._router.failed(record, ErrorInfo(
                    code=generated.code, message=f"{where}: {generated.message}"))
            verdict = quality.check(generated.response.content, chat.quality, defaults=quality.EXTRACTION)
            if verdict.ok:
                return ChunkAnswer(generated, verdict.parsed)
            located = quality.Verdict(False, verdict.check, f"{where}: {verdict.reason}")
            decision = self._router.escalate_or_fail(chat, record, generated, located, route)
            if isinstance(decision, JobResult):
                return decision

    def _merged(self, prepared: Prepared, record: JobRecord, answers: list[ChunkAnswer]) -> JobResult:
        values = [a.value for a in answers]
        merged = values[0] if len(values) == 1 else merge(values, prepared.merging.rules)
        content = json.dumps(merged, ensure_ascii=False)
        update = {"content": content, "chunks": len(values)}
        error = quality.schema_error(merged, prepared.job.json_schema) if len(values) > 1 else None
        if error is not None:
            failed = self._router.failed(record, ErrorInfo(
                code="merge_invalid", message=f"the merged answer is not valid for the schema: {error}"))
            return failed.model_copy(update=update)
        strongest = max(answers, key=lambda a: a.generated.candidate.tier).generated
        return self._router.succeeded(record, strongest, merged).model_copy(update=update)


def _chat(job: ExtractionJob, system: str, text: str, *, spec: QualitySpec | None = None) -> Job:
    """The conversation that asks for `text`'s extraction, with the job's routing options."""
    return Job(
        messages=(Message(role="system", content=system), Message(role="user", content=text)),
        critical=job.critical, pin_model=job.pin_model, min_tier=job.min_tier,
        max_output_tokens=job.max_output_tokens, temperature=job.temperature,
        policy=job.policy, quality=spec,
    )
