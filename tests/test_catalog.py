"""The tier catalog: defaults from the design, and errors that name the line."""

from __future__ import annotations

from importlib import resources

import pytest

from worker.catalog import load_catalog, parse_catalog
from worker.errors import CatalogError

DEFAULT_TEXT = (resources.files("worker") / "catalog.toml").read_text()


def test_default_catalog_matches_the_design() -> None:
    catalog = load_catalog()
    rows = [(t.name, t.max_tokens, [(m.name, m.context_tokens, m.usd_per_mtok_in, m.usd_per_mtok_out)
             for m in t.models]) for t in catalog.tiers]
    assert rows == [
        ("small", 3000, [("mistral-small-latest", 32000, 0.20, 0.60)]),
        ("medium", 12000, [("mistral-medium-latest", 128000, 0.40, 2.00)]),
        ("large", None, [("mistral-large-latest", 128000, 2.00, 6.00)]),
    ]
    assert all(t.timeout_s > 0 for t in catalog.tiers)


def test_cost_uses_the_catalog_prices() -> None:
    large = load_catalog().tiers[2].models[0]
    assert large.cost_usd(1_000_000, 500_000) == pytest.approx(2.00 + 3.00)


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        ("usd_per_mtok_out = 2.00", "usd_per_mtok_out = -2", 30, "greater than or equal to 0"),
        ('timeout_s = 60.0', 'timeout_s = "soon"', 34, "valid number"),
        ("max_tokens = 12000", "max_tokens = 2000", 1, "must increase"),
        ('context_tokens = 32000', 'context_tokens = 32000\n  colour = "red"', 17, "Extra inputs"),
    ],
)
def test_bad_file_error_names_the_line_and_the_problem(old: str, new: str, line: int, words: str) -> None:
    assert old in DEFAULT_TEXT
    with pytest.raises(CatalogError) as caught:
        parse_catalog(DEFAULT_TEXT.replace(old, new, 1), where="tiers.toml")
    message = str(caught.value)
    assert message.startswith(f"tiers.toml, line {line}:")
    assert words in message


def test_toml_syntax_error_names_the_line() -> None:
    with pytest.raises(CatalogError, match=r"line 3"):
        parse_catalog('[[tiers]]\nname = "small"\nmax_tokens = = 3\n')
