"""Job messages and results: the contract between producers and workers.

Messages use the OpenAI/Mistral chat format (``role``, ``content``). Everything here is
plain JSON on the wire.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.codes import ErrorCode
from contract.errors import InvalidJob
from contract.field_checks import JsonSchema, ObjectJsonSchema, Pattern
from contract.job_identity import TENANT_PATTERN

Role = Literal["system", "user", "assistant", "tool"]
Scalar = str | int | float | bool | None


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    role: Role
    content: str = Field(strict=True)
    name: str | None = None


class QualitySpec(BaseModel):
    """Post-generation checks; None fields take the worker's defaults for the task."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    min_chars: int | None = Field(default=None, ge=0)
    refusal_phrases: tuple[str, ...] | None = None
    must_match: tuple[Pattern, ...] = ()
    must_not_match: tuple[Pattern, ...] = ()
    json_output: bool = False
    json_schema: JsonSchema | None = None
    schema_name: str | None = None


class JobOptions(BaseModel):
    """What every job kind may say about its routing, output budget and checks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str | None = Field(default=None, min_length=1, max_length=200)
    # Namespaces the job's id and result (contract/job_identity.py).
    tenant: str | None = Field(default=None, pattern=TENANT_PATTERN)
    critical: bool = False
    pin_model: str | None = None
    min_tier: str | None = None
    max_output_tokens: int = Field(default=1024, gt=0, le=200_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    metadata: dict[str, Scalar] = Field(default_factory=dict)
    policy: str | None = None
    quality: QualitySpec | None = None


class Job(JobOptions):
    """A conversation job as producers send it."""

    messages: tuple[Message, ...] = Field(min_length=1)


class ExtractionJob(JobOptions):
    """A document and the JSON Schema of what to extract from it (`tierline.extract`).

    `quality` adds checks to the extraction defaults (the answer is JSON valid against
    `schema`); `instructions` are added to the extraction prompt.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True)

    document: str = Field(strict=True, min_length=1)
    json_schema: ObjectJsonSchema = Field(alias="schema")
    instructions: str | None = Field(default=None, max_length=20_000)
    # Each value of the answer says where it came from (JobResult.sources).
    provenance: bool = False


class ChunkJob(ExtractionJob):
    """One chunk of a document (`document` holds the chunk's text), as a task of its own.

    chunk_index: 0-based; chunk_total: the document's chunks; chunk_start: the chunk's
    first character in the document; start_tier: the tier the document was planned at.
    """

    chunk_index: int = Field(ge=0)
    chunk_total: int = Field(ge=1)
    chunk_start: int = Field(ge=0)
    start_tier: int = Field(ge=0)


class MergeJob(BaseModel):
    """What the merge step of a chunked document needs besides the chunks' results."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, serialize_by_alias=True)

    json_schema: ObjectJsonSchema = Field(alias="schema")
    chunk_total: int = Field(ge=2)
    started_at: float
    routed_tokens: int = 0
    routed_tokens_exact: bool = True
    policy: str | None = None
    provenance: bool = False


AnyJob = TypeVar("AnyJob", Job, ExtractionJob, ChunkJob, MergeJob)


class ErrorInfo(BaseModel):
    # An `ErrorCode` value; a plain string on the wire, so an older client reads a newer code.
    code: str
    message: str


Outcome = Literal["ok", "transient", "configuration", "bad_request", "timeout", "interrupted"]


class Attempt(BaseModel):
    """One model call: which model, how it ended, what it cost."""

    model: str
    tier: str
    provider: str
    outcome: Outcome
    error_kind: str | None = None
    error_code: str | None = None
    latency_ms: float
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    level: int = 0
    # The quality check this generation failed: its answer was not the one used.
    rejected: str | None = None
    # The document chunk this call extracted (0-based); None for a whole job.
    chunk: int | None = None


class Escalation(BaseModel):
    """A generation the quality gate rejected, and where the job went next."""

    from_tier: str
    to_tier: str | None
    model: str
    check: str
    reason: str


class Carry(BaseModel):
    """What a job re-queued to a stronger tier carries from its earlier generations."""

    level: int = 0
    min_tier: int = 0
    started_at: float
    attempts: list[Attempt] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)
    # The conversation's routed count from the first delivery: not counted again.
    routed_tokens: int | None = None
    routed_tokens_exact: bool = True


class JobResult(BaseModel):
    """Exactly one per job: succeeded, or failed with a reason."""

    job_id: str
    status: Literal["succeeded", "failed"]
    error: ErrorInfo | None = None
    content: str | None = None
    parsed: Any = None
    # Why the answer's generation stopped, as its provider said ("stop", "length", ...).
    finish_reason: str | None = None
    model: str | None = None
    tier: str | None = None
    provider: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    routed_tokens: int = 0
    routed_tokens_exact: bool = True
    policy: str | None = None
    chunks: int | None = None
    # Extraction with provenance: per top-level property, where each value came from
    # ({"chunk", "start", "end", "exact"}, character offsets in the document).
    sources: dict[str, Any] | None = None
    # SHA-256 of the job payload this result answers (contract/job_identity.fingerprint).
    fingerprint: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def answer_tokens(self) -> tuple[int, int]:
        """Tokens in and out of the generations whose answers make the result (the last one
        when every answer was rejected): what one call to a stronger model would have taken."""
        made = [a for a in self.attempts if a.outcome == "ok"]
        used = [a for a in made if a.rejected is None] or made[-1:]
        return sum(a.tokens_in for a in used), sum(a.tokens_out for a in used)

    @property
    def fallbacks(self) -> int:
        """Failed provider attempts that moved the job to another candidate."""
        return sum(1 for a in self.attempts if a.outcome not in ("ok", "interrupted"))


def parse_job(payload: object) -> Job:
    """Validate a job payload; raise `InvalidJob` with a stable code and a clear message."""
    return _parsed(Job, payload)


def parse_extraction_job(payload: object) -> ExtractionJob:
    """Validate an extraction job payload; raise `InvalidJob` with a stable code."""
    return _parsed(ExtractionJob, payload)


def parse_chunk_job(payload: object) -> ChunkJob:
    """Validate a chunk job payload; raise `InvalidJob` with a stable code."""
    return _parsed(ChunkJob, payload)


def parse_merge_job(payload: object) -> MergeJob:
    """Validate a merge step's payload; raise `InvalidJob` with a stable code."""
    return _parsed(MergeJob, payload)


def _parsed(model: type[AnyJob], payload: object) -> AnyJob:
    if not isinstance(payload, dict):
        raise InvalidJob(f"a job is a JSON object, got {type(payload).__name__}")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise _invalid(exc) from exc


def _invalid(exc: ValidationError) -> InvalidJob:
    """An `InvalidJob` naming the first problem `exc` found, with a stable code."""
    first = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"])
    where = f"{loc}: " if loc else ""
    return InvalidJob(f"{where}{first['msg']}", code=_code(first["loc"], first["type"]))


# Fields whose problems have a code of their own, wherever they sit in the job.
_FIELD_CODES = {
    "json_schema": ErrorCode.INVALID_SCHEMA, "schema": ErrorCode.INVALID_SCHEMA,
    "must_match": ErrorCode.INVALID_PATTERN, "must_not_match": ErrorCode.INVALID_PATTERN,
}


# Error types raised by the field checks that are job codes as they are.
_TYPE_CODES = frozenset({ErrorCode.INVALID_SCHEMA, ErrorCode.REMOTE_REF, ErrorCode.INVALID_PATTERN})


def _code(loc: tuple[int | str, ...], kind: str) -> ErrorCode:
    if kind in _TYPE_CODES:
        return ErrorCode(kind)
    if loc[:1] == ("messages",):
        if kind == "too_short":
            return ErrorCode.EMPTY_MESSAGES
        if loc[-1:] == ("role",):
            return ErrorCode.UNKNOWN_ROLE
        if loc[-1:] == ("content",):
            return ErrorCode.NON_TEXT_CONTENT
    if loc[:1] == ("document",):
        return ErrorCode.NON_TEXT_DOCUMENT if kind == "string_type" else ErrorCode.EMPTY_DOCUMENT
    return next((_FIELD_CODES[p] for p in loc if isinstance(p, str) and p in _FIELD_CODES), ErrorCode.INVALID_JOB)
