"""Pydantic models a job may name as the shape of its JSON answer (`quality.schema_name`).

The worker imports them once, before fork, from ``TIERLINE_SCHEMAS``: a comma-separated
list of ``module:Class`` (registered as ``Class``) or ``name=module:Class`` entries.
A bad entry stops the worker at start, like a bad tier catalog. Code that embeds a worker
may also call `register` before the first job.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel

from contract.codes import ErrorCode
from worker.errors import InvalidJob, SchemaRegistryError

_REGISTRY: dict[str, type[BaseModel]] = {}


def register(name: str, model: type[BaseModel]) -> None:
    """Make `model` usable by jobs as ``quality.schema_name = name``."""
    _REGISTRY[name] = model


def get(name: str) -> type[BaseModel] | None:
    """The model registered as `name`, or None."""
    return _REGISTRY.get(name)


def names() -> list[str]:
    return sorted(_REGISTRY)


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of the model registered as `name`; InvalidJob when there is none."""
    model = _REGISTRY.get(name)
    if model is None:
        raise InvalidJob(
            f"no output schema registered as {name!r}; registered: {names()}", code=ErrorCode.UNKNOWN_SCHEMA
        )
    return model.model_json_schema()


def load(entries: str) -> list[str]:
    """Import and register every entry of a ``TIERLINE_SCHEMAS`` value; the names registered."""
    loaded = []
    for entry in (e.strip() for e in entries.split(",")):
        if entry:
            name, model = _imported(entry)
            register(name, model)
            loaded.append(name)
    return loaded


def _imported(entry: str) -> tuple[str, type[BaseModel]]:
    name, _, target = (part.strip() for part in entry.rpartition("="))
    module_name, _, attribute = (part.strip() for part in target.partition(":"))
    if not module_name or not attribute:
        raise SchemaRegistryError(f"schema entry {entry!r}: expected [name=]module:Class")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise SchemaRegistryError(f"schema entry {entry!r}: {exc}") from exc
    if not (isinstance(found, type) and issubclass(found, BaseModel)):
        raise SchemaRegistryError(f"schema entry {entry!r}: {attribute} is not a pydantic model")
    return name or attribute, found
