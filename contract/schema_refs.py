"""A job's JSON Schema may only refer to itself: no `$ref` reaches the network or the disk.

jsonschema, given no registry, retrieves a `$ref` it cannot resolve locally (an HTTP URL
is fetched while the answer is validated). tierline's validators get `NO_RETRIEVAL`, a
registry that retrieves nothing, and a job's schema is checked when the job is read:
every reference (`$ref`, `$dynamicRef`, `$recursiveRef`) must be a fragment (``#...``)
that resolves inside the schema itself. Anything else is refused with ``remote_ref``
(a URL, a file name, a relative document) or ``invalid_schema`` (a fragment that points
nowhere, or a loop: a reference that leads back, without descending into the answer's
parts, to a schema it is checked under, which jsonschema would follow until Python's
recursion limit on every answer).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import referencing.jsonschema
from referencing import Registry, Resource, Specification
from referencing.exceptions import NoSuchResource, Unresolvable

from contract.codes import ErrorCode

REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
# Keywords whose subschemas check the same value as their own schema, not one of its parts.
IN_PLACE = ("not", "if", "then", "else")
IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
IN_PLACE_MAPS = ("dependentSchemas", "dependencies")  # (a `dependencies` list names properties)
_NOT_PARTS = frozenset((*REF_KEYWORDS, *IN_PLACE, *IN_PLACE_LISTS, *IN_PLACE_MAPS))


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
    # Resolved from the root as jsonschema does (a subschema repeating the root's $id must not
    # stand in for it).
    _check_no_loop(schema, NO_RETRIEVAL.resolver_with_root(resource), spec)


def _check_no_loop(schema: dict[str, Any], resolver: Any, spec: Specification[Any]) -> None:
    """Raise `RefRefused` when a reference leads back to a schema it is checked under, on the
    same value (through references and in-place keywords only). Every subschema is a start:
    one under a keyword that descends into a part of the answer (`properties`, `items`...)
    starts a new path. Iterative: a schema nested thousands deep is walked without Python's
    recursion."""
    done: set[int] = set()
    starts: list[tuple[object, Any]] = [(schema, resolver)]
    while starts:
        starts.extend(_walk_in_place(*starts.pop(), spec, done))


def _walk_in_place(start: object, resolver: Any, spec: Specification[Any], done: set[int]) -> list[tuple[object, Any]]:
    """Walk from `start` through references and in-place keywords (raising `RefRefused` on a
    loop); the parts' subschemas met on the way, each with its resolver, to start from next."""
    parts: list[tuple[object, Any]] = []
    on_path: set[int] = set()
    stack: list[tuple[object, Any, bool]] = [(start, resolver, False)]  # (node, its resolver, leaving)
    while stack:
        node, here, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            done.add(id(node))
            continue
        if not isinstance(node, dict) or id(node) in done:
            continue
        if id(node) in on_path:
            raise RefRefused("a $ref loops back to a schema it is checked under without reaching a part of "
                             "the answer: checking it would never end", code=ErrorCode.INVALID_SCHEMA)
        on_path.add(id(node))
        stack.append((node, here, True))
        if isinstance(spec.id_of(node), str):  # `$id` (`id` before draft 6) opens a subresource
            here = here.in_subresource(spec.create_resource(node))
        for key in REF_KEYWORDS:
            target = _target(here, key, node.get(key))
            if target is not None:
                stack.append((target.contents, target.resolver, False))
        stack.extend((sub, here, False) for sub in _in_place(node))
        parts.extend((sub, here) for sub in _parts(node))
    return parts


def _target(resolver: Any, keyword: str, ref: object) -> Any:
    """Where the reference `ref` under `keyword` leads from `resolver` (None: nowhere here)."""
    if not isinstance(ref, str):
        return None
    try:
        if keyword == "$recursiveRef":  # to the outermost `$recursiveAnchor`, as jsonschema does
            return referencing.jsonschema.lookup_recursive_ref(resolver)
        return resolver.lookup(ref)
    except Unresolvable:  # resolved above against its base; a dynamic one may not be here
        return None


def _parts(node: dict[str, Any]) -> Iterator[object]:
    """The other dicts under `node` (the schemas of its parts, and the maps that hold them)."""
    for key, value in node.items():
        if key in _NOT_PARTS:
            continue
        if isinstance(value, dict):
            yield value
        elif isinstance(value, list):
            yield from (item for item in value if isinstance(item, dict))


def _in_place(node: dict[str, Any]) -> Iterator[object]:
    """The subschemas of `node` that check the same value as `node`."""
    for key in IN_PLACE:
        if key in node:
            yield node[key]
    for key in IN_PLACE_LISTS:
        if isinstance(node.get(key), list):
            yield from node[key]
    for key in IN_PLACE_MAPS:
        if isinstance(node.get(key), dict):
            yield from node[key].values()
