"""Job messages and results: the contract between producers and workers.

Messages use the OpenAI/Mistral chat format (``role``, ``content``). Everything here is
plain JSON on the wire.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.errors import InvalidJob

Role = Literal["system", "user", "assistant", "tool"]
Scalar = str | int | float | bool | None
TASK_COMPLETE = "tierline.complete"
TASK_EXTRACT = "tierline.extract"
QUEUE_CONVERSATIONS = "conversations"
QUEUE_EXTRACTION = "extraction"


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
    must_match: tuple[str, ...] = ()
    must_not_match: tuple[str, ...] = ()
    json_output: bool = False
    json_schema: dict[str, Any] | None = None
    schema_name: str | None = None


class Job(BaseModel):
    """A conversation job as producers send it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str | None = Field(default=None, min_length=1, max_length=200)
    messages: tuple[Message, ...] = Field(min_length=1)
    critical: bool = False
    pin_model: str | None = None
    min_tier: str | None = None
    max_output_tokens: int = Field(default=1024, gt=0, le=200_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    metadata: dict[str, Scalar] = Field(default_factory=dict)
    policy: str | None = None
    quality: QualitySpec | None = None


class ErrorInfo(BaseModel):
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


class JobResult(BaseModel):
    """Exactly one per job: succeeded, or failed with a reason."""

    job_id: str
    status: Literal["succeeded", "failed"]
    error: ErrorInfo | None = None
    content: str | None = None
    parsed: Any = None
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
    attempts: list[Attempt] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def fallbacks(self) -> int:
        """Failed provider attempts that moved the job to another candidate."""
        return sum(1 for a in self.attempts if a.outcome not in ("ok", "interrupted"))


def parse_job(payload: object) -> Job:
    """Validate a job payload; raise `InvalidJob` with a stable code and a clear message."""
    if not isinstance(payload, dict):
        raise InvalidJob(f"a job is a JSON object, got {type(payload).__name__}")
    try:
        return Job.model_validate(payload)
    except ValidationError as exc:
        raise _invalid(exc) from exc


def _invalid(exc: ValidationError) -> InvalidJob:
    first = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"])
    where = f"{loc}: " if loc else ""
    code = "invalid_job"
    if first["loc"][:1] == ("messages",):
        if first["type"] == "too_short":
            code = "empty_messages"
        elif first["loc"][-1:] == ("role",):
            code = "unknown_role"
        elif first["loc"][-1:] == ("content",):
            code = "non_text_content"
    return InvalidJob(f"{where}{first['msg']}", code=code)
