"""Checks for job fields that hold code-like values: JSON Schemas and regular expressions.

Used as pydantic validators on the job contracts, so that a job carrying an unusable
schema or pattern is rejected when it is parsed (an `InvalidJob` with a clear code),
never later as a crash in the worker or as a quality failure of every model.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import jsonschema
from pydantic import AfterValidator


def usable_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` unchanged when it is a valid JSON Schema (its own draft); ValueError if not."""
    validator = jsonschema.validators.validator_for(schema)
    try:
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = exc.json_path if exc.path else "$"
        raise ValueError(f"not a valid JSON Schema at {where}: {exc.message}") from None
    return schema


def object_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` unchanged when it describes a JSON object (what JSON mode answers)."""
    if schema.get("type") != "object":
        raise ValueError('the schema must describe a JSON object ("type": "object")')
    return schema


def compilable_pattern(pattern: str) -> str:
    """`pattern` unchanged when Python's `re` compiles it; ValueError if not."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression {pattern!r}: {exc}") from None
    return pattern


JsonSchema = Annotated[dict[str, Any], AfterValidator(usable_json_schema)]
ObjectJsonSchema = Annotated[JsonSchema, AfterValidator(object_json_schema)]
Pattern = Annotated[str, AfterValidator(compilable_pattern)]
