"""JSON Schema validation of job-supplied schemas: offline and in linear time.

A job's schema is checked once when the job is read (`check_job_schema`) and used to
validate answers later (`validator`). Both use validators of the schema's own draft with
two changes: references are resolved with `schema_refs.NO_RETRIEVAL` (nothing is
fetched), and the keywords that run regular expressions (`pattern`, `patternProperties`,
and `additionalProperties`, which reads `patternProperties`) run them on RE2.

`unevaluatedProperties` also reads `patternProperties`, through jsonschema's own code on
Python's `re`: a schema that has both is refused (``invalid_schema``) rather than run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from contract import patterns, schema_refs
from contract.codes import ErrorCode

PATTERN_KEYWORDS = ("pattern", "patternProperties")


class SchemaRefused(ValueError):
    """A job's schema cannot be used; `code` is the job's error code."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not patterns.search(pattern, instance):
        yield ValidationError(f"{_short(instance)} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, pattern_properties: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            if patterns.search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, extra: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    matched = list(schema.get("patternProperties", {}))
    extras = sorted(
        (key for key in instance if key not in known and not any(patterns.search(p, key) for p in matched)),
        key=str,
    )
    if validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif not extra and extras:
        yield ValidationError(f"additional properties are not allowed ({', '.join(map(repr, extras[:10]))})")


_OVERRIDES = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}


@lru_cache(maxsize=16)
def _safe_class(base: type[Any]) -> type[Any]:
    keywords = {k: v for k, v in _OVERRIDES.items() if k in base.VALIDATORS}
    return jsonschema.validators.extend(base, keywords)  # type: ignore[no-any-return]


def _short(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def validator(schema: dict[str, Any]) -> Any:
    """A validator for `schema` (already accepted by `check_job_schema`): offline, RE2 patterns."""
    return _validator(json.dumps(schema, sort_keys=True))


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    schema = json.loads(schema_json)
    cls = _safe_class(dialect(schema))
    return cls(schema, registry=schema_refs.NO_RETRIEVAL)


def dialect(schema: dict[str, Any]) -> Any:
    """The validator class of the draft `schema` names in ``$schema`` (none: 2020-12);
    `SchemaRefused` for a ``$schema`` that names no draft jsonschema knows."""
    declared = schema.get("$schema")
    found = jsonschema.validators.validator_for(schema, default=None) if isinstance(declared, str) else None
    if found is not None:
        return found
    if declared is None:
        return jsonschema.Draft202012Validator
    raise SchemaRefused(f"$schema {str(declared)[:100]!r} names no JSON Schema draft", code=ErrorCode.INVALID_SCHEMA)


def check_job_schema(schema: dict[str, Any]) -> None:
    """Raise `SchemaRefused` unless `schema` is a valid JSON Schema that stays inside itself
    and whose patterns RE2 accepts."""
    base = dialect(schema)
    try:
        base.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = exc.json_path if exc.path else "$"
        raise SchemaRefused(f"not a valid JSON Schema at {where}: {exc.message}",
                            code=ErrorCode.INVALID_SCHEMA) from None
    try:
        schema_refs.check_refs(schema)
    except schema_refs.RefRefused as exc:
        raise SchemaRefused(str(exc), code=exc.code) from None
    found = list(schema_patterns(schema))
    for pattern in found:
        try:
            patterns.compiled(pattern)
        except patterns.PatternRefused as exc:
            raise SchemaRefused(str(exc), code=ErrorCode.INVALID_PATTERN) from None
    if _uses_keyword(schema, "patternProperties") and _uses_keyword(schema, "unevaluatedProperties"):
        raise SchemaRefused(
            "unevaluatedProperties with patternProperties is not supported (its patterns would not run on RE2)",
            code=ErrorCode.INVALID_SCHEMA,
        )


def schema_patterns(node: object) -> Iterator[str]:
    """Every regular expression a schema holds (`pattern` values, `patternProperties` keys)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            elif key == "patternProperties" and isinstance(value, dict):
                yield from (k for k in value if isinstance(k, str))
            yield from schema_patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from schema_patterns(item)


def _uses_keyword(node: object, keyword: str) -> bool:
    if isinstance(node, dict):
        return keyword in node or any(_uses_keyword(v, keyword) for v in node.values())
    if isinstance(node, list):
        return any(_uses_keyword(v, keyword) for v in node)
    return False
