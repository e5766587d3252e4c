"""Error codes and failure kinds: the one vocabulary of how a job or a model call failed.

Every `ErrorInfo.code` in a JobResult, every `Attempt.error_code` and every code a batch
producer writes for a bad input line is an `ErrorCode`; each code belongs to exactly one
`FailureKind`, which says how tierline reacts. One meaning per name: a provider's 404
(`UNKNOWN_MODEL`) is not a pinned name missing from the catalog (`UNKNOWN_PINNED_MODEL`),
and a provider's timeout (`PROVIDER_TIMEOUT`) is not a job out of time (`OUT_OF_TIME`).

The README's failure table is checked against these enums (tests/test_codes.py).
"""

from __future__ import annotations

from enum import StrEnum


class FailureKind(StrEnum):
    """How tierline reacts to a failure: one family per reaction."""

    # A model call failed for now (timeout, connection, 5xx, 429): the model is flagged
    # busy and the next candidate is tried.
    TRANSIENT = "transient"
    # A provider refused this worker's set-up (key, billing, model name): the model is
    # flagged for 15 minutes, logged as an error, and the next candidate is tried.
    CONFIGURATION = "configuration"
    # No model can serve the request as it is: the job fails at once, nothing is flagged.
    BAD_REQUEST = "bad_request"
    # The job itself is unusable (found before any call): it fails with the code.
    INVALID_JOB = "invalid_job"
    # The broker message is not a tierline task body: acknowledged and failed.
    MALFORMED_MESSAGE = "malformed_message"
    # Answers failed the quality gate up to the strongest tier allowed.
    QUALITY = "quality"
    # The attempt budget or the job's time ran out; every attempt is listed.
    BUDGET = "budget"
    # The job's worker process died on every delivery.
    LOST = "lost"
    # A second copy of a job whose result was already collected: not run.
    DUPLICATE = "duplicate"
    # A fault of tierline or of the worker process, not of the job or of a provider.
    INTERNAL = "internal"
    # A batch input line the producer could not turn into a job: never sent.
    BAD_LINE = "bad_line"


class ErrorCode(StrEnum):
    """A stable, machine-readable failure code; `KIND[code]` is its family."""

    # -- transient: a model call failed for now ---------------------------------------
    TRANSIENT = "transient"  # a transient provider failure with no more precise code
    RATE_LIMITED = "rate_limited"  # HTTP 429: busy for its Retry-After
    PROVIDER_TIMEOUT = "provider_timeout"  # the call took longer than the attempt's timeout
    UNAVAILABLE = "unavailable"  # connection error, 5xx, 408/409
    MALFORMED_RESPONSE = "malformed_response"  # a 200 without a readable answer
    # -- configuration: the provider refused this worker's set-up ---------------------
    CONFIGURATION = "configuration"  # refused for a set-up reason, e.g. billing (402)
    AUTHENTICATION_FAILED = "authentication_failed"  # 401/403: the key is wrong or lacks rights
    UNKNOWN_MODEL = "unknown_model"  # 404: the provider does not serve this model name
    # -- bad request: no model can serve the request as it is -------------------------
    BAD_REQUEST = "bad_request"  # refused by the provider, with no more precise code
    INVALID_REQUEST = "invalid_request"  # 400/422: the provider refused the request itself
    CONTEXT_TOO_LONG = "context_too_long"  # no allowed model's context holds the conversation
    MODEL_UNAVAILABLE = "model_unavailable"  # the models that fit cannot be called here (no key)
    # -- invalid job: the job itself is unusable --------------------------------------
    INVALID_JOB = "invalid_job"  # a field is wrong, with no more precise code
    EMPTY_MESSAGES = "empty_messages"  # a conversation without messages
    UNKNOWN_ROLE = "unknown_role"  # a message role outside system/user/assistant/tool
    NON_TEXT_CONTENT = "non_text_content"  # a message whose content is not a string
    EMPTY_DOCUMENT = "empty_document"  # an extraction job with an empty document
    NON_TEXT_DOCUMENT = "non_text_document"  # an extraction document that is not a string
    UNKNOWN_PINNED_MODEL = "unknown_pinned_model"  # `pin_model` names no model of the catalog
    UNKNOWN_TIER = "unknown_tier"  # `min_tier` names no tier of the catalog
    UNKNOWN_POLICY = "unknown_policy"  # `policy` names no routing policy
    UNKNOWN_SCHEMA = "unknown_schema"  # `schema_name` names no registered output model
    INVALID_SCHEMA = "invalid_schema"  # a JSON Schema that is not valid in its own draft
    INVALID_PATTERN = "invalid_pattern"  # a job pattern RE2 does not compile (or a schema's)
    REMOTE_REF = "remote_ref"  # a job schema's $ref that leaves the schema (no retrieval)
    UNMERGEABLE_SCHEMA = "unmergeable_schema"  # a split document whose schema cannot be merged
    INVALID_UNICODE = "invalid_unicode"  # text with a lone surrogate: not Unicode, cannot be encoded
    MESSAGE_TOO_LARGE = "message_too_large"  # the raw task message is over TIERLINE_MAX_MESSAGE_BYTES
    JOB_TOO_LARGE = "job_too_large"  # the decoded job is over TIERLINE_MAX_JOB_BYTES
    TOO_MANY_MESSAGES = "too_many_messages"  # more messages than TIERLINE_MAX_MESSAGES
    METADATA_TOO_LARGE = "metadata_too_large"  # metadata over TIERLINE_MAX_METADATA_BYTES
    DOCUMENT_TOO_LARGE = "document_too_large"  # an extraction document over TIERLINE_MAX_DOCUMENT_BYTES
    SCHEMA_TOO_LARGE = "schema_too_large"  # a JSON Schema over TIERLINE_MAX_SCHEMA_BYTES
    TOO_MANY_PATTERNS = "too_many_patterns"  # more quality patterns than TIERLINE_MAX_PATTERNS
    PATTERN_TOO_LONG = "pattern_too_long"  # a pattern over TIERLINE_MAX_PATTERN_CHARS
    TOO_MANY_PHRASES = "too_many_phrases"  # more refusal phrases than TIERLINE_MAX_PHRASES
    PHRASE_TOO_LONG = "phrase_too_long"  # a refusal phrase over TIERLINE_MAX_PHRASE_CHARS
    CONFLICT = "conflict"  # the job id already holds the result of another payload
    TENANT_MISMATCH = "tenant_mismatch"  # a task id outside the job's tenant namespace
    FORGED_CARRY = "forged_carry"  # a re-queued job's carry whose seal does not verify
    # -- malformed message: not a tierline task body ----------------------------------
    MALFORMED_MESSAGE = "malformed_message"  # wrong arguments, not JSON, not a task body, pickle
    # -- quality: answers failed the gate ---------------------------------------------
    QUALITY = "quality"  # still poor at the strongest tier allowed (the last answer is kept)
    MERGE_INVALID = "merge_invalid"  # the merged chunks' answer does not fit the schema
    # -- budget: attempts or time ran out ---------------------------------------------
    BUDGET_EXHAUSTED = "budget_exhausted"  # every attempt of the budget failed
    OUT_OF_TIME = "out_of_time"  # the job reached its soft (or hard) time limit
    SOFT_TIME_LIMIT = "soft_time_limit"  # an attempt cut short by the job's soft time limit
    HARD_TIME_LIMIT = "hard_time_limit"  # an attempt cut short by the job's hard time limit
    BUDGET_EXCEEDED = "budget_exceeded"  # a team's daily spending budget refuses the job (live control)
    # -- lost, duplicate, internal ----------------------------------------------------
    WORKER_LOST = "worker_lost"  # the worker died on every one of its deliveries
    PROCESS_STOPPED = "process_stopped"  # an attempt cut short because its worker process died
    DUPLICATE = "duplicate"  # a copy of a job whose result a batch producer collected
    INTERNAL_ERROR = "internal_error"  # an unexpected error inside the worker (a bug)
    WORKER_ERROR = "worker_error"  # the task ended as a bare Celery failure (hard limit)
    # -- bad line: a batch input line that never became a job -------------------------
    INVALID_JSON = "invalid_json"  # not a JSON object
    INVALID_CUSTOM_ID = "invalid_custom_id"  # custom_id missing or not a non-empty string
    INVALID_BODY = "invalid_body"  # `body` is not an object
    MISSING_MESSAGES = "missing_messages"  # no `messages` in the line or its body
    WRONG_ENDPOINT = "wrong_endpoint"  # an OpenAI line for another endpoint than chat completions


_KINDS: dict[FailureKind, tuple[ErrorCode, ...]] = {
    FailureKind.TRANSIENT: (ErrorCode.TRANSIENT, ErrorCode.RATE_LIMITED, ErrorCode.PROVIDER_TIMEOUT,
                            ErrorCode.UNAVAILABLE, ErrorCode.MALFORMED_RESPONSE),
    FailureKind.CONFIGURATION: (ErrorCode.CONFIGURATION, ErrorCode.AUTHENTICATION_FAILED, ErrorCode.UNKNOWN_MODEL),
    FailureKind.BAD_REQUEST: (ErrorCode.BAD_REQUEST, ErrorCode.INVALID_REQUEST, ErrorCode.CONTEXT_TOO_LONG,
                              ErrorCode.MODEL_UNAVAILABLE),
    FailureKind.INVALID_JOB: (
        ErrorCode.INVALID_JOB, ErrorCode.EMPTY_MESSAGES, ErrorCode.UNKNOWN_ROLE, ErrorCode.NON_TEXT_CONTENT,
        ErrorCode.EMPTY_DOCUMENT, ErrorCode.NON_TEXT_DOCUMENT, ErrorCode.UNKNOWN_PINNED_MODEL,
        ErrorCode.UNKNOWN_TIER, ErrorCode.UNKNOWN_POLICY, ErrorCode.UNKNOWN_SCHEMA, ErrorCode.INVALID_SCHEMA,
        ErrorCode.INVALID_PATTERN, ErrorCode.REMOTE_REF, ErrorCode.UNMERGEABLE_SCHEMA,
        ErrorCode.INVALID_UNICODE, ErrorCode.MESSAGE_TOO_LARGE, ErrorCode.JOB_TOO_LARGE, ErrorCode.TOO_MANY_MESSAGES,
        ErrorCode.METADATA_TOO_LARGE, ErrorCode.DOCUMENT_TOO_LARGE, ErrorCode.SCHEMA_TOO_LARGE,
        ErrorCode.TOO_MANY_PATTERNS, ErrorCode.PATTERN_TOO_LONG, ErrorCode.TOO_MANY_PHRASES, ErrorCode.PHRASE_TOO_LONG,
        ErrorCode.CONFLICT, ErrorCode.TENANT_MISMATCH, ErrorCode.FORGED_CARRY),
    FailureKind.MALFORMED_MESSAGE: (ErrorCode.MALFORMED_MESSAGE,),
    FailureKind.QUALITY: (ErrorCode.QUALITY, ErrorCode.MERGE_INVALID),
    FailureKind.BUDGET: (ErrorCode.BUDGET_EXHAUSTED, ErrorCode.OUT_OF_TIME, ErrorCode.SOFT_TIME_LIMIT,
                         ErrorCode.HARD_TIME_LIMIT, ErrorCode.BUDGET_EXCEEDED),
    FailureKind.LOST: (ErrorCode.WORKER_LOST, ErrorCode.PROCESS_STOPPED),
    FailureKind.DUPLICATE: (ErrorCode.DUPLICATE,),
    FailureKind.INTERNAL: (ErrorCode.INTERNAL_ERROR, ErrorCode.WORKER_ERROR),
    FailureKind.BAD_LINE: (ErrorCode.INVALID_JSON, ErrorCode.INVALID_CUSTOM_ID, ErrorCode.INVALID_BODY,
                           ErrorCode.MISSING_MESSAGES, ErrorCode.WRONG_ENDPOINT),
}

# Each code's family.
KIND: dict[ErrorCode, FailureKind] = {code: kind for kind, codes in _KINDS.items() for code in codes}


def kind_of(code: str) -> FailureKind | None:
    """The family of `code` (a code's string value); None for a code this contract lacks."""
    try:
        return KIND[ErrorCode(code)]
    except ValueError:
        return None
