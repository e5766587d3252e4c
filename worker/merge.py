"""How chunk answers merge into one document answer (pure functions).

Each top-level property of the schema has a rule:

- ``union`` (the default for an array): items in chunk order, an item kept once when an
  earlier item is equal to it once normalised (case, Unicode form, spacing, surrounding
  punctuation; objects key by key), so a party named in every chunk is listed once;
- ``concat``: every item of every chunk (an array), or the chunks' texts joined (a string);
- ``first`` (the default for a scalar): the first non-empty value.

Anything else (a nested object, an untyped or ``anyOf`` property) needs an explicit
``"x-merge"``; without one the schema cannot merge, and a document that needs more than
one chunk fails with ``unmergeable_schema``.

Sources (on request): each chunk answer may come with where its values stand in the
document (`Sources`, built by `worker.provenance`); the merge carries them along its
rule, so a union item lists every chunk that named it.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MERGE_KEY = "x-merge"


class MergeRule(StrEnum):
    UNION = "union"    # arrays: items equal once normalised are kept once
    CONCAT = "concat"  # arrays: every item; strings: joined by newlines
    FIRST = "first"    # the first non-empty value


_SCALARS = frozenset({"string", "number", "integer", "boolean", "null"})
# A value's sources: a list of {"chunk", "start", "end", "exact"}; an array's: one list per item.
Sources = dict[str, Any]


@dataclass(frozen=True)
class MergePlan:
    """The rule per top-level property, or the `problem` that makes the schema unmergeable."""

    rules: Mapping[str, MergeRule]
    problem: str | None = None


def merge_plan(schema: Mapping[str, Any]) -> MergePlan:
    """How answers valid for `schema` (an object schema) merge across chunks."""
    properties = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(properties, dict):
        return MergePlan({}, "the schema has no top-level properties to merge")
    rules: dict[str, MergeRule] = {}
    for name, sub in properties.items():
        rule = _rule(sub if isinstance(sub, dict) else {})
        if rule is None:
            return MergePlan({}, _unmergeable(name, sub))
        rules[name] = rule
    return MergePlan(rules)


def _rule(sub: Mapping[str, Any]) -> MergeRule | None:
    kinds = _kinds(sub)
    declared = sub.get(MERGE_KEY)
    if declared is not None:
        return _declared(declared, kinds)
    if "array" in kinds and kinds <= {"array", "null"}:
        return MergeRule.UNION
    if kinds and kinds <= _SCALARS or not kinds and _scalar_values(sub):
        return MergeRule.FIRST
    return None


def _declared(declared: object, kinds: set[str]) -> MergeRule | None:
    if declared not in {r.value for r in MergeRule}:
        return None
    rule = MergeRule(str(declared))
    if rule is MergeRule.UNION and not kinds <= {"array", "null"}:
        return None
    if rule is MergeRule.CONCAT and not kinds <= {"array", "string", "null"}:
        return None
    return rule


def _kinds(sub: Mapping[str, Any]) -> set[str]:
    kinds = sub.get("type")
    return {kinds} if isinstance(kinds, str) else set(kinds or ())


def _scalar_values(sub: Mapping[str, Any]) -> bool:
    """An untyped property limited to scalar values by ``enum`` or ``const``."""
    values = sub["enum"] if isinstance(sub.get("enum"), list) else [sub.get("const", {})]
    return all(v is None or isinstance(v, str | int | float | bool) for v in values)


def _unmergeable(name: str, sub: object) -> str:
    spec = sub if isinstance(sub, dict) else {}
    declared = spec.get(MERGE_KEY)
    kind = "/".join(sorted(_kinds(spec))) or "untyped"
    if declared == MergeRule.UNION.value:
        return f"property {name!r} ({kind}): {MERGE_KEY} \"union\" merges only lists"
    if declared == MergeRule.CONCAT.value:
        return f"property {name!r} ({kind}): {MERGE_KEY} \"concat\" merges only lists and strings"
    if declared is not None:
        return f"property {name!r}: {MERGE_KEY} must be \"union\", \"concat\" or \"first\", not {declared!r}"
    return (
        f"property {name!r} ({kind}) has no merge rule: give it "
        f"\"{MERGE_KEY}\": \"first\" (or \"union\" / \"concat\" for a list) to merge it across chunks"
    )


@dataclass(frozen=True)
class Merged:
    """One document answer, and where its values came from (None unless asked)."""

    value: dict[str, Any]
    sources: Sources | None


def merge(
    parts: Sequence[Mapping[str, Any]], rules: Mapping[str, MergeRule],
    sources: Sequence[Sources] | None = None,
) -> Merged:
    """One object from the chunk answers `parts`, in chunk order; undeclared keys take `first`.

    sources: each part's sources (see `worker.provenance`), or None when not asked for.
    """
    names = list(rules) + [k for part in parts for k in part if k not in rules]
    merged: dict[str, Any] = {}
    merged_sources: Sources = {}
    for name in dict.fromkeys(names):
        present = [i for i, part in enumerate(parts) if name in part]
        if not present:
            continue
        values = [parts[i][name] for i in present]
        where = [(sources[i] if sources else {}).get(name) for i in present]
        merged[name], merged_sources[name] = _by_rule(rules.get(name, MergeRule.FIRST), values, where)
    return Merged(merged, merged_sources if sources is not None else None)


def _by_rule(rule: MergeRule, values: list[Any], where: list[Any]) -> tuple[Any, Any]:
    present = [(v, w) for v, w in zip(values, where, strict=True) if v is not None]
    if rule is not MergeRule.FIRST and present and all(isinstance(v, list) for v, _ in present):
        return _items(present, unique=rule is MergeRule.UNION)
    if rule is MergeRule.CONCAT and present and all(isinstance(v, str) for v, _ in present):
        kept = [(v, w) for v, w in present if v]
        return "\n".join(v for v, _ in kept), [s for _, w in kept for s in (w or [])]
    return _first(values, where)


def _items(present: list[tuple[list[Any], Any]], *, unique: bool) -> tuple[list[Any], list[Any]]:
    """Every item in order (`unique`: each normalised value once), with its sources."""
    items: list[Any] = []
    item_sources: list[list[Any]] = []
    seen: dict[str, int] = {}
    for value, where in present:
        for n, item in enumerate(value):
            found = list(where[n]) if isinstance(where, list) and n < len(where) else []
            key = normal_key(item) if unique else None
            if key is not None and key in seen:
                item_sources[seen[key]].extend(found)
                continue
            if key is not None:
                seen[key] = len(items)
            items.append(item)
            item_sources.append(found)
    return items, item_sources


def _first(values: list[Any], where: list[Any]) -> tuple[Any, Any]:
    for value, found in zip(values, where, strict=True):
        if value not in (None, "", [], {}):
            return value, found or []
    return values[0], where[0] or []


def normal_key(value: Any) -> str:
    """A key equal for values equal once normalised (see the module docstring)."""
    return json.dumps(_normalised(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _normalised(value: Any) -> Any:
    if isinstance(value, str):
        text = " ".join(unicodedata.normalize("NFKC", value).casefold().split())
        return text.strip(" .,;:!?\"'()[]")
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
