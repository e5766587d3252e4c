"""The post-generation quality gate: pure checks on an answer, one verdict.

A job's `QualitySpec` says what to check; what it leaves unset (None) comes from the
defaults of its task: `CONVERSATION` (a minimum length and the refusal/uncertainty
phrases) or `EXTRACTION` (the same, and the answer must be JSON valid for the schema).

Checks run in order and the first failure decides.
- Text answers: too short, refusal or uncertainty phrase, must-match, must-not-match.
- JSON answers (`json_output`, a `json_schema`, or a registered `schema_name`): the answer
  must parse (a refusal in place of JSON is reported as `refusal`, a stub as `too_short`,
  anything else as `invalid_json`); then length and patterns on the raw text, then the
  job's JSON Schema, then the registered pydantic model. Refusal phrases are not searched
  inside valid JSON, where they are the document's data, not the model's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jsonschema
from pydantic import ValidationError

from contract import patterns, schema_validation
from contract.schemas import QualitySpec
from worker import output_schemas

# Several languages; matched case-insensitively, as whole words, near the start.
DEFAULT_REFUSALS: tuple[str, ...] = (
    "i'm sorry, but i can't", "i am sorry, but i cannot", "i can't help with",
    "i cannot help with", "i cannot assist", "i can't assist", "i'm unable to help",
    "i am unable to help", "as an ai language model", "i don't know", "i do not know",
    "i'm not sure", "i am not sure",
    "je ne sais pas", "je ne peux pas", "désolé, je ne peux pas", "je ne suis pas sûr",
    "no lo sé", "no puedo ayudar", "lo siento, no puedo", "no estoy seguro",
    "ich weiß nicht", "ich kann nicht", "es tut mir leid, aber ich kann",
    "ich bin mir nicht sicher",
    "non lo so", "non posso aiutarti", "non sono sicuro",
    "não sei", "não posso ajudar",
)
REFUSAL_WINDOW_CHARS = 300

CONVERSATION = QualitySpec(min_chars=4, refusal_phrases=DEFAULT_REFUSALS)
EXTRACTION = QualitySpec(min_chars=2, refusal_phrases=DEFAULT_REFUSALS, json_output=True)

_DEFAULTED = ("min_chars", "refusal_phrases", "json_schema", "schema_name")


@dataclass(frozen=True)
class Verdict:
    """The gate's decision; `parsed` holds the JSON value of a passing JSON answer."""

    ok: bool
    check: str = ""
    reason: str = ""
    parsed: Any = None


PASS = Verdict(True)


def effective(spec: QualitySpec | None, defaults: QualitySpec) -> QualitySpec:
    """`spec` with what it leaves unset taken from its task's `defaults`."""
    if spec is None:
        return defaults
    unset = {name: getattr(defaults, name) for name in _DEFAULTED if getattr(spec, name) is None}
    return spec.model_copy(update={**unset, "json_output": spec.json_output or defaults.json_output})


def wants_json(spec: QualitySpec | None) -> bool:
    """Whether answers to a job with `spec` must be JSON (ask the provider for JSON mode)."""
    return spec is not None and (
        spec.json_output or spec.json_schema is not None or spec.schema_name is not None
    )


def request_schema(spec: QualitySpec | None) -> dict[str, Any] | None:
    """The JSON Schema to send the provider: the job's own, or its named model's.

    Raises `InvalidJob` (code ``unknown_schema``) when the job names a model this worker
    has not registered: no model can pass that check, so no model is called.
    """
    if spec is None:
        return None
    if spec.json_schema is not None:
        return spec.json_schema
    if spec.schema_name is not None:
        return output_schemas.json_schema(spec.schema_name)
    return None


def check(answer: str, spec: QualitySpec | None, *, defaults: QualitySpec = CONVERSATION) -> Verdict:
    """Run the checks of `spec` (unset fields from `defaults`) on `answer`."""
    rules = effective(spec, defaults)
    if not rules.enabled:
        return PASS
    if wants_json(rules):
        return _json_checks(answer, rules)
    return _first_failure(answer, rules, (_too_short, _refused, _unmatched, _forbidden))


def schema_error(value: Any, schema: dict[str, Any]) -> str | None:
    """Why `value` does not validate against JSON Schema `schema`, or None when it does."""
    error = jsonschema.exceptions.best_match(schema_validation.validator(schema).iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"


Check = Callable[[str, QualitySpec], Verdict | None]


def _first_failure(answer: str, rules: QualitySpec, checks: Sequence[Check]) -> Verdict:
    for one in checks:
        verdict = one(answer, rules)
        if verdict is not None:
            return verdict
    return PASS


def _too_short(answer: str, rules: QualitySpec) -> Verdict | None:
    size, need = len(answer.strip()), rules.min_chars or 0
    return Verdict(False, "too_short", f"{size} chars, need {need}") if size < need else None


def _refused(answer: str, rules: QualitySpec) -> Verdict | None:
    pattern = _refusal_pattern(rules.refusal_phrases or ())
    found = pattern.search(_normal(answer[:REFUSAL_WINDOW_CHARS])) if pattern else None
    return Verdict(False, "refusal", f"answer says {found.group(0)!r}") if found else None


def _unmatched(answer: str, rules: QualitySpec) -> Verdict | None:
    for pattern in rules.must_match:
        if not patterns.search(pattern, answer):
            return Verdict(False, "must_match", f"no match for {pattern!r}")
    return None


def _forbidden(answer: str, rules: QualitySpec) -> Verdict | None:
    for pattern in rules.must_not_match:
        if patterns.search(pattern, answer):
            return Verdict(False, "must_not_match", f"matches {pattern!r}")
    return None


def _json_checks(answer: str, rules: QualitySpec) -> Verdict:
    try:
        value = json.loads(_strip_fence(answer))
    except json.JSONDecodeError as exc:
        not_json = Verdict(False, "invalid_json", f"not JSON: {exc.msg} at char {exc.pos}")
        found = _first_failure(answer, rules, (_refused, _too_short))
        return not_json if found.ok else found
    found = _first_failure(answer, rules, (_too_short, _unmatched, _forbidden))
    if not found.ok:
        return found
    if rules.json_schema is not None:
        error = schema_error(value, rules.json_schema)
        if error is not None:
            return Verdict(False, "schema_mismatch", error)
    if rules.schema_name is not None:
        return _model_check(value, rules.schema_name)
    return Verdict(True, parsed=value)


def _model_check(value: Any, name: str) -> Verdict:
    model = output_schemas.get(name)
    if model is None:
        return Verdict(False, "schema_mismatch", f"no schema registered as {name!r}")
    try:
        return Verdict(True, parsed=model.model_validate(value).model_dump(mode="json"))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = "/".join(str(p) for p in first["loc"]) or "(root)"
        return Verdict(False, "schema_mismatch", f"{where}: {first['msg']}")


def _strip_fence(answer: str) -> str:
    """Models often wrap JSON in a Markdown fence; accept it."""
    text = answer.strip()
    if text.startswith("```") and text.endswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text


def _normal(text: str) -> str:
    """Lower case, straight apostrophes, single spaces: how phrases and answers compare."""
    return " ".join(text.lower().replace("\u2019", "'").split())


@lru_cache(maxsize=64)
def _refusal_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    alternatives = sorted({re.escape(_normal(p)) for p in phrases if p.strip()}, key=len, reverse=True)
    if not alternatives:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")
