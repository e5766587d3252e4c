"""A job's JSON Schema may only refer to itself: no `$ref` reaches the network or the disk.

jsonschema, given no registry, retrieves a `$ref` it cannot resolve locally (an HTTP URL
is fetched while the answer is validated). tierline's validators get `NO_RETRIEVAL`, a
registry that retrieves nothing, and a job's schema is checked when the job is read:
every reference (`$ref`, `$dynamicRef`, `$recursiveRef`) must be a fragment (``#...``)
that resolves inside the schema itself. Anything else is refused with ``remote_ref``
(a URL, a file name, a relative document) or ``invalid_schema`` (a fragment that points
nowhere).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import referencing.jsonschema
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

from contract.codes import ErrorCode

REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")


def _retrieve_nothing(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


NO_RETRIEVAL: Registry[Any] = Registry(retrieve=_retrieve_nothing)  # type: ignore[call-arg]  # attrs class


class RefRefused(ValueError):
    """A reference leaves the schema (`code` ``remote_ref``) or points nowhere (``invalid_schema``)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


def refs(node: object, base: str = "") -> Iterator[tuple[str, object]]:
    """Every reference in `node` as (the base URI it is read against, its value)."""
    if isinstance(node, dict):
        declared = node.get("$id")
        if isinstance(declared, str):
            base = urljoin(base, declared)
        for key, value in node.items():
            if key in REF_KEYWORDS:
                yield base, value
            else:
                yield from refs(value, base)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item, base)


def check_refs(schema: dict[str, Any]) -> None:
    """Raise `RefRefused` unless every reference in `schema` resolves inside it, offline."""
    found = list(refs(schema))
    if not found:
        return
    for _, ref in found:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise RefRefused(
                f"$ref {str(ref)[:100]!r} leaves the schema: only references inside it (#...) are "
                "allowed, nothing is fetched", code=ErrorCode.REMOTE_REF,
            )
    spec = referencing.jsonschema.specification_with(
        str(schema.get("$schema", "")), default=referencing.jsonschema.DRAFT202012,
    )
    resource = spec.create_resource(schema)
    registry = NO_RETRIEVAL.with_resource(resource.id() or "", resource).crawl()
    for base, ref in found:
        try:
            registry.resolver(base_uri=base).lookup(str(ref))
        except Unresolvable:
            raise RefRefused(f"$ref {str(ref)[:100]!r} points nowhere in the schema",
                             code=ErrorCode.INVALID_SCHEMA) from None
