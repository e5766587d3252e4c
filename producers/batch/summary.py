"""The end-of-batch summary: tier share, cost against running everything large, failures.

"All-large" prices the same tokens at the strongest tier's first model from the tier
catalog file (``TIERLINE_CATALOG_PATH``, else the packaged one), read as data: the bill
had every line gone straight to the large tier.
"""

from __future__ import annotations

import importlib.util
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from producers.batch.handle import BatchProgress
from producers.batch.records import LineOutcome
from producers.settings import get_settings


@dataclass(frozen=True)
class Price:
    """A model's price in US dollars per million tokens in and out."""

    model: str
    usd_per_mtok_in: float
    usd_per_mtok_out: float

    def cost_usd(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.usd_per_mtok_in + tokens_out * self.usd_per_mtok_out) / 1e6


def largest_price(catalog_path: Path | None = None) -> Price | None:
    """The strongest tier's first model, read from the catalog file; None if it cannot be.

    catalog_path: the catalog TOML (default: ``TIERLINE_CATALOG_PATH``, else the copy
    packaged with the worker). Read as data with tomllib: the client loads no worker code.
    """
    path = catalog_path or get_settings().catalog_path or _packaged_catalog()
    if path is None:
        return None
    try:
        model = tomllib.loads(path.read_text("utf-8"))["tiers"][-1]["models"][0]
        return Price(str(model["name"]), float(model["usd_per_mtok_in"]), float(model["usd_per_mtok_out"]))
    except (OSError, tomllib.TOMLDecodeError, KeyError, IndexError, TypeError, ValueError):
        return None


def _packaged_catalog() -> Path | None:
    """Where the worker's packaged catalog file is, found without importing the worker."""
    spec = importlib.util.find_spec("worker")
    places = spec.submodule_search_locations if spec else None
    return Path(next(iter(places))) / "catalog.toml" if places else None


@dataclass
class BatchSummary:
    """Tallies of the outcomes of one run; `large` prices the all-large comparison."""

    large: Price | None = None
    unit: str = "lines"
    tiers: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0
    large_cost_usd: float = 0.0

    def add(self, outcome: LineOutcome) -> None:
        result = outcome.result
        if not outcome.ok:
            self.failures[outcome.error.code if outcome.error else "unknown"] += 1
        if result is None:
            return
        self.cost_usd += result.cost_usd
        if result.ok:
            self.tiers[result.tier or "?"] += 1
            if self.large is not None:
                self.large_cost_usd += self.large.cost_usd(*result.answer_tokens)

    def table(self, progress: BatchProgress) -> Table:
        """The summary as a rich table."""
        table = Table(title=f"{'batch' if self.unit == 'lines' else 'extraction'} summary (this run)",
                      show_header=False)
        table.add_column("what")
        table.add_column("value", justify="right")
        for row in self._rows(progress):
            table.add_row(*row)
        return table

    def _rows(self, progress: BatchProgress) -> list[tuple[str, str]]:
        p = progress
        rows = [
            (self.unit, f"{p.total:,}"),
            ("done before this run", f"{p.skipped:,}"),
            ("succeeded", f"{p.succeeded:,}"),
            ("failed", f"{p.failed:,}"),
            (f"bad {self.unit}", f"{p.invalid:,}"),
            ("not finished", f"{p.total - p.done:,}"),
            ("rate", f"{p.rate:,.1f} {self.unit}/s over {p.elapsed_s:,.1f}s"),
        ]
        if self.unit != "lines":
            rows += [("chunks", f"{p.chunks:,}"), ("tokens in and out", f"{p.tokens:,}")]
        succeeded = sum(self.tiers.values())
        rows += [(f"tier {tier}", f"{n:,} ({n / succeeded:.0%})") for tier, n in self.tiers.most_common()]
        rows.append(("cost", f"${self.cost_usd:,.4f}"))
        if self.large is not None and self.large_cost_usd:
            saved = 1 - self.cost_usd / self.large_cost_usd
            rows.append((f"all on {self.large.model}", f"${self.large_cost_usd:,.4f} ({saved:.0%} saved)"))
        rows += [(f"failed: {code}", f"{n:,}") for code, n in self.failures.most_common()]
        return rows
