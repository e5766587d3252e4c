"""`tierline worksheet`: the routing worksheet, one row per category of traffic.

Each row: traffic share, quality threshold (the first-pass rate the category must keep),
primary and fallback model, average tokens in and out, validation rule, estimated pass
rate, latency p50/p95, cost per request, last review date. The numbers come from a
replay of a workload (`tierline replay`'s calculator), so a refresh recalculates them
under the current catalog and prices.

The file is Markdown: the table for people, then a ```toml block that keeps each row's
review state (what the row looked like when it was last reviewed). A refresh keeps the
thresholds and validation rules written there and flags the rows whose models, prices
or traffic share (by more than `SHARE_TOLERANCE_PTS` points) changed since that review;
``--review`` records a review of the named rows (or all) as of today.
"""

from __future__ import annotations

import datetime
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from operators.replay.workload import WorkloadError
from worker.catalog import Catalog
from worker.plan import Route, plan

SHARE_TOLERANCE_PTS = 2.0
DEFAULT_THRESHOLD = 0.93
DEFAULT_VALIDATION = "min 4 chars, no refusal phrase"
ALL = "all"
_STATE = re.compile(r"```toml\n(# tierline worksheet review state.*?)```", re.S)


@dataclass(frozen=True)
class Row:
    """One category of the worksheet, as measured now, with its review state."""

    category: str
    share: float
    threshold: float
    primary: str
    fallback: str
    tokens_in: float
    tokens_out: float
    validation: str
    pass_rate: float
    p50_ms: float
    p95_ms: float
    cost_per_request: float
    prices: tuple[float, ...]
    reviewed: str | None = None
    reviewed_primary: str | None = None
    reviewed_fallback: str | None = None
    reviewed_prices: tuple[float, ...] = ()
    reviewed_share: float | None = None

    @property
    def changes(self) -> list[str]:
        """What changed since the last review (never reviewed: that)."""
        if self.reviewed is None:
            return ["never reviewed"]
        found = []
        if (self.primary, self.fallback) != (self.reviewed_primary, self.reviewed_fallback):
            found.append("models")
        if tuple(self.prices) != tuple(self.reviewed_prices):
            found.append("prices")
        if self.reviewed_share is None or abs(self.share - self.reviewed_share) * 100 > SHARE_TOLERANCE_PTS:
            found.append("traffic share")
        if self.pass_rate < self.threshold:
            found.append("pass rate below threshold")
        return found

    def reviewed_today(self, today: str) -> Row:
        return replace(self, reviewed=today, reviewed_primary=self.primary, reviewed_fallback=self.fallback,
                       reviewed_prices=self.prices, reviewed_share=round(self.share, 4))


def rows_from(summary: Mapping[str, Any], catalog: Catalog, state: Mapping[str, Mapping[str, Any]]) -> list[Row]:
    """Rows for each category of a replay `summary` (or one row, ``all``), with `state`."""
    groups: Mapping[str, Mapping[str, Any]] = summary.get("categories") or {ALL: summary}
    total = max(1, summary["requests"])
    rows = []
    for name, group in groups.items():
        primary, fallback = _models(catalog, group)
        kept = state.get(name, {})
        rows.append(Row(
            category=name, share=group["requests"] / total,
            threshold=float(kept.get("threshold", DEFAULT_THRESHOLD)),
            primary=primary.name, fallback=fallback.name if fallback else "–",
            tokens_in=group["avg_tokens_in"], tokens_out=group["avg_tokens_out"],
            validation=str(kept.get("validation", DEFAULT_VALIDATION)), pass_rate=group["first_pass_rate"],
            p50_ms=group["latency_p50_ms"], p95_ms=group["latency_p95_ms"],
            cost_per_request=group["cost_usd"] / max(1, group["requests"]),
            prices=_prices(primary, fallback),
            reviewed=_text_or_none(kept.get("reviewed")), reviewed_primary=kept.get("reviewed_primary"),
            reviewed_fallback=kept.get("reviewed_fallback"),
            reviewed_prices=tuple(kept.get("reviewed_prices", ())), reviewed_share=kept.get("reviewed_share"),
        ))
    return sorted(rows, key=lambda r: -r.share)


def _models(catalog: Catalog, group: Mapping[str, Any]) -> tuple[Any, Any]:
    """The primary model (first candidate) and fallback (second) for the category's average request."""
    tokens = int(group["avg_tokens_in"])
    route = Route(tokens=tokens, output_tokens=max(1, int(group["avg_tokens_out"])),
                  start_tier=catalog.natural_tier(tokens))
    candidates = plan(route, frozenset(), catalog).candidates
    if not candidates:
        raise WorkloadError(f"no model of the catalog holds the average request ({tokens} tokens)")
    return candidates[0].model, candidates[1].model if len(candidates) > 1 else None


def _prices(primary: Any, fallback: Any) -> tuple[float, ...]:
    models = [primary, *([fallback] if fallback else [])]
    return tuple(float(p) for m in models for p in (m.usd_per_mtok_in, m.usd_per_mtok_out))


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def review(rows: Iterable[Row], names: Iterable[str], *, today: str | None = None) -> list[Row]:
    """`rows` with those named (``all``: every one) recorded as reviewed `today`."""
    day = today or datetime.date.today().isoformat()
    wanted = set(names)
    unknown = wanted - {r.category for r in rows} - {ALL}
    if unknown:
        raise WorkloadError(f"--review names categories not in the worksheet: {sorted(unknown)}")
    return [r.reviewed_today(day) if ALL in wanted or r.category in wanted else r for r in rows]


def read_state(path: Path) -> dict[str, dict[str, Any]]:
    """The review state kept in a worksheet file; empty when the file does not exist."""
    if not path.exists():
        return {}
    match = _STATE.search(path.read_text("utf-8"))
    if match is None:
        raise WorkloadError(f"{path}: no review state block (```toml # tierline worksheet review state ...)")
    try:
        data = tomllib.loads(match.group(1))
    except tomllib.TOMLDecodeError as exc:
        raise WorkloadError(f"{path}: the review state block is not valid TOML: {exc}") from exc
    return {str(k): dict(v) for k, v in data.get("rows", {}).items()}


def render(rows: list[Row], *, source: str, catalog_note: str) -> str:
    """The worksheet file: the table, the flags, then the review state block."""
    head = ["category", "traffic", "quality threshold", "primary", "fallback", "avg tokens in / out",
            "validation rule", "est. pass rate", "latency p50 / p95", "cost / request", "last review", "flags"]
    lines = ["# Routing worksheet", "",
             f"Generated by `tierline worksheet` from {source} ({catalog_note}). Refresh it when prices, "
             "models or the traffic mix change; rows flagged below changed since their last review.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        flags = ", ".join(r.changes) or "ok"
        lines.append("| " + " | ".join([
            r.category, f"{r.share:.1%}", f"{r.threshold:.1%}", f"`{r.primary}`", f"`{r.fallback}`",
            f"{r.tokens_in:,.0f} / {r.tokens_out:,.0f}", r.validation, f"{r.pass_rate:.1%}",
            f"{r.p50_ms:,.0f} / {r.p95_ms:,.0f} ms", f"${r.cost_per_request:.6f}", r.reviewed or "never",
            ("**" + flags + "**") if r.changes else flags,
        ]) + " |")
    lines += ["", "## Review state", "",
              "Edit `threshold` and `validation` here; `tierline worksheet --review CATEGORY` (or `all`) "
              "records a review.", "", "```toml", _state_toml(rows), "```", ""]
    return "\n".join(lines)


def _state_toml(rows: list[Row]) -> str:
    out = ["# tierline worksheet review state (machine-readable; kept across refreshes)"]
    for r in sorted(rows, key=lambda r: r.category):
        out += ["", f"[rows.{_q(r.category)}]", f"threshold = {r.threshold!r}", f"validation = {_q(r.validation)}"]
        if r.reviewed is not None:
            out += [f"reviewed = {_q(r.reviewed)}", f"reviewed_primary = {_q(r.reviewed_primary or '')}",
                    f"reviewed_fallback = {_q(r.reviewed_fallback or '')}",
                    f"reviewed_prices = [{', '.join(repr(p) for p in r.reviewed_prices)}]",
                    f"reviewed_share = {r.reviewed_share!r}"]
    return "\n".join(out) + "\n"


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
