"""The post-generation quality gate: pure checks on an answer, one verdict.

Checks run in order and the first failure decides: empty/too short, refusal or
uncertainty phrase, must-match / must-not-match patterns, then for JSON jobs: parses,
validates against the job's JSON Schema or a pydantic model registered by name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jsonschema
from pydantic import BaseModel, ValidationError

from tasks.schemas import QualitySpec

# Several languages; matched case-insensitively near the start of the answer.
DEFAULT_REFUSALS: tuple[str, ...] = (
    "i'm sorry, but i can't", "i am sorry, but i cannot", "i can't help with",
    "i cannot help with", "i cannot assist", "i can't assist", "as an ai language model",
    "i don't know", "i do not know", "i'm not sure", "i am not sure",
    "je ne sais pas", "je ne peux pas", "désolé, je ne peux pas",
    "no lo sé", "no puedo ayudar", "lo siento, no puedo",
    "ich weiß nicht", "ich kann nicht", "es tut mir leid, aber ich kann",
    "non lo so", "non posso aiutarti",
)
REFUSAL_WINDOW_CHARS = 300
DEFAULT_MIN_CHARS = 1

SCHEMAS: dict[str, type[BaseModel]] = {}


def register_schema(name: str, model: type[BaseModel]) -> None:
    """Make pydantic `model` usable by jobs as ``quality.schema_name = name``."""
    SCHEMAS[name] = model


@dataclass(frozen=True)
class Verdict:
    """The gate's decision; `parsed` holds the JSON value of a passing JSON answer."""

    ok: bool
    check: str = ""
    reason: str = ""
    parsed: Any = None


PASS = Verdict(True)


def check(answer: str, spec: QualitySpec | None) -> Verdict:
    """Run the checks of `spec` (None = defaults) on `answer`."""
    spec = spec or QualitySpec()
    if not spec.enabled:
        return PASS
    verdict = _text_checks(answer, spec)
    if not verdict.ok:
        return verdict
    if spec.json_output or spec.json_schema is not None or spec.schema_name is not None:
        return _json_checks(answer, spec)
    return PASS


def _text_checks(answer: str, spec: QualitySpec) -> Verdict:
    min_chars = DEFAULT_MIN_CHARS if spec.min_chars is None else spec.min_chars
    if len(answer.strip()) < min_chars:
        return Verdict(False, "too_short", f"{len(answer.strip())} chars, need {min_chars}")
    phrases = DEFAULT_REFUSALS if spec.refusal_phrases is None else spec.refusal_phrases
    head = answer[:REFUSAL_WINDOW_CHARS].lower().replace("’", "'")
    for phrase in phrases:
        if phrase.lower() in head:
            return Verdict(False, "refusal", f"answer contains {phrase!r}")
    for pattern in spec.must_match:
        if not _compiled(pattern).search(answer):
            return Verdict(False, "must_match", f"no match for {pattern!r}")
    for pattern in spec.must_not_match:
        if _compiled(pattern).search(answer):
            return Verdict(False, "must_not_match", f"matches {pattern!r}")
    return PASS


def _json_checks(answer: str, spec: QualitySpec) -> Verdict:
    try:
        value = json.loads(_strip_fence(answer))
    except json.JSONDecodeError as exc:
        return Verdict(False, "invalid_json", f"not JSON: {exc.msg} at char {exc.pos}")
    if spec.json_schema is not None:
        error = jsonschema.exceptions.best_match(_validator(json.dumps(spec.json_schema)).iter_errors(value))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            return Verdict(False, "schema_mismatch", f"{where}: {error.message}")
    if spec.schema_name is not None:
        model = SCHEMAS.get(spec.schema_name)
        if model is None:
            return Verdict(False, "schema_mismatch", f"no schema registered as {spec.schema_name!r}")
        try:
            value = model.model_validate(value).model_dump(mode="json")
        except ValidationError as exc:
            return Verdict(False, "schema_mismatch", str(exc.errors()[0]["msg"]))
    return Verdict(True, parsed=value)


def _strip_fence(answer: str) -> str:
    """Models often wrap JSON in a Markdown fence; accept it."""
    text = answer.strip()
    if text.startswith("```") and text.endswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)  # type: ignore[no-any-return]
