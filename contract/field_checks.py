"""Checks for job fields that hold code-like values: JSON Schemas and regular expressions.

Used as pydantic validators on the job contracts, so that a job carrying an unusable
schema or pattern is rejected when it is parsed (an `InvalidJob` with a clear code),
never later as a crash in the worker or as a quality failure of every model. A schema
may only refer to itself (`contract.schema_refs`) and every pattern must be one RE2 runs
(`contract.patterns`): the error's type is the job's code (``invalid_schema``,
``remote_ref``, ``invalid_pattern``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from contract import patterns, schema_validation


def usable_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` unchanged when it is a valid JSON Schema (its own draft) that refers only to
    itself and whose patterns RE2 runs."""
    try:
        schema_validation.check_job_schema(schema)
    except schema_validation.SchemaRefused as exc:
        raise PydanticCustomError(exc.code, "{reason}", {"reason": str(exc)}) from None
    return schema


def object_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` unchanged when it describes a JSON object (what JSON mode answers)."""
    if schema.get("type") != "object":
        raise ValueError('the schema must describe a JSON object ("type": "object")')
    return schema


def compilable_pattern(pattern: str) -> str:
    """`pattern` unchanged when RE2 compiles it."""
    try:
        patterns.compiled(pattern)
    except patterns.PatternRefused as exc:
        raise PydanticCustomError("invalid_pattern", "{reason}", {"reason": str(exc)}) from None
    return pattern


JsonSchema = Annotated[dict[str, Any], AfterValidator(usable_json_schema)]
ObjectJsonSchema = Annotated[JsonSchema, AfterValidator(object_json_schema)]
Pattern = Annotated[str, AfterValidator(compilable_pattern)]
