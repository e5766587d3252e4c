"""`tierline control`: change routing live, without a deploy or a restart.

Each command makes a new version of the overlay on the catalog, checked against the
catalog file first (a change that would make it invalid is refused with the reason),
recorded with who (`--by`, default the OS user) and when, and applied by every worker
at its next delivery (within about a second). `history` lists the versions; `rollback N`
makes version N's overlay current again, as a new version.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import redis
import typer
from rich.console import Console
from rich.table import Table

from worker import overlay as ov
from worker.catalog import Catalog, load_catalog
from worker.errors import OverlayError
from worker.overlay_store import OverlayStore, Version
from worker.settings import get_settings
from worker.shadow import read_shadow

control_cli = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()
By = Annotated[str | None, typer.Option("--by", help="who makes the change (default: the OS user)")]


@contextmanager
def _store() -> Iterator[tuple[OverlayStore, Catalog]]:
    settings = get_settings()
    client = redis.Redis.from_url(settings.state, socket_timeout=5, socket_connect_timeout=5)
    try:
        yield OverlayStore(client, settings.keys), load_catalog(settings.catalog_path)
    finally:
        client.close()


def _change(step: Callable[[ov.Overlay], ov.Overlay], what: str, by: str | None) -> None:
    try:
        with _store() as (store, catalog):
            version = store.change(step, catalog, by=by or getpass.getuser(), what=what)
    except OverlayError as exc:
        console.print(f"[red]refused:[/] {exc}")
        raise typer.Exit(2) from exc
    except redis.RedisError as exc:
        console.print(f"[red]routing-state Redis unreachable:[/] {exc}")
        raise typer.Exit(3) from exc
    console.print(f"version {version.number}: {what} (by {version.by})")


def _pairs(items: list[str], allowed: set[str] | None = None) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or (allowed is not None and key not in allowed):
            wanted = f"one of {sorted(allowed)}" if allowed else "NAME"
            raise typer.BadParameter(f"{item!r}: expected {wanted}=VALUE")
        out[key] = value
    return out


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(f"{what}: {text!r} is not a number") from None


@control_cli.command()
def drain(model: str, by: By = None) -> None:
    """MODEL takes no new traffic (jobs already on it finish)."""
    _change(lambda o: ov.drain(o, model), f"drain {model}", by)


@control_cli.command()
def undrain(model: str, by: By = None) -> None:
    """MODEL takes traffic again."""
    _change(lambda o: ov.undrain(o, model), f"undrain {model}", by)


@control_cli.command("set-threshold")
def set_threshold(tier: str, tokens: int, by: By = None) -> None:
    """TIER carries conversations up to TOKENS routed tokens."""
    _change(lambda o: ov.set_threshold(o, tier, tokens), f"set-threshold {tier} {tokens}", by)


@control_cli.command()
def weights(tier: str, split: Annotated[list[str] | None, typer.Argument(help="MODEL=WEIGHT ...")] = None,
            by: By = None) -> None:
    """Split TIER's first place by weight (a canary: MODEL=90 NEW=10); none: catalog order."""
    parsed = {k: int(_number(v, k)) for k, v in _pairs(split or []).items()}
    _change(lambda o: ov.set_weights(o, tier, parsed), f"weights {tier} {' '.join(split or []) or 'off'}", by)


@control_cli.command()
def limit(model: str, values: Annotated[list[str], typer.Argument(help="rpm=N tpm=N, or off")],
          by: By = None) -> None:
    """A rate limit for MODEL shared by every worker: requests and tokens per minute."""
    parsed = None if values == ["off"] else ov.RateLimit(**{
        k: int(_number(v, k)) for k, v in _pairs(values, {"rpm", "tpm"}).items()})
    _change(lambda o: ov.set_limit(o, model, parsed), f"limit {model} {' '.join(values)}", by)


@control_cli.command()
def budget(team: str, values: Annotated[list[str], typer.Argument(help="usd=N action=cheapest|refuse, or off")],
           by: By = None) -> None:
    """A daily budget (UTC) for TEAM (metadata.team), or '*' for all spend together."""
    if values == ["off"]:
        parsed = None
    else:
        given = _pairs(values, {"usd", "action"})
        action = given.get("action", "cheapest")
        if action not in ("cheapest", "refuse"):
            raise typer.BadParameter(f"action={action!r}: expected cheapest or refuse")
        parsed = ov.Budget(usd_per_day=_number(given.get("usd", ""), "usd"), action=action)  # type: ignore[arg-type]
    _change(lambda o: ov.set_budget(o, team, parsed), f"budget {team} {' '.join(values)}", by)


@control_cli.command()
def shadow(model: str, share: Annotated[float, typer.Option(help="share of jobs, 0-1")] = 0.05,
           by: By = None) -> None:
    """Send SHARE of the jobs also to MODEL (answers recorded, never returned); 'off' stops it."""
    parsed = None if model == "off" else ov.Shadow(model=model, share=share)
    _change(lambda o: ov.set_shadow(o, parsed), f"shadow {model}" + (f" share={share:g}" if parsed else ""), by)


@control_cli.command()
def rollback(version: int, by: By = None) -> None:
    """Make VERSION's overlay current again (recorded as a new version)."""
    try:
        with _store() as (store, catalog):
            made = store.rollback(version, catalog, by=by or getpass.getuser())
    except OverlayError as exc:
        console.print(f"[red]refused:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"version {made.number}: {made.change} (by {made.by})")


@control_cli.command()
def history() -> None:
    """Every version of the overlay: who, when, what; the current one marked."""
    with _store() as (store, _):
        current, versions = store.current_number(), store.history()
    console.print(history_table(versions, current))


def history_table(versions: list[Version], current: int) -> Table:
    table = Table(title="live overlay versions")
    for column in ("version", "when (UTC)", "by", "change", ""):
        table.add_column(column)
    for v in versions:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(v.at)) if v.at else "-"
        table.add_row(str(v.number), when, v.by, v.change, "current" if v.number == current else "")
    return table


@control_cli.command("shadow-report")
def shadow_report() -> None:
    """Shadow against live, per shadow model: pass rate, cost and latency of the same jobs."""
    settings = get_settings()
    client = redis.Redis.from_url(settings.state, socket_timeout=5, socket_connect_timeout=5)
    try:
        catalog = load_catalog(settings.catalog_path)
        rows = {m: read_shadow(client, settings.keys, m) for m in catalog.model_names}
    finally:
        client.close()
    console.print(shadow_table({m: r for m, r in rows.items() if r.get("jobs")}))


def shadow_table(rows: dict[str, dict[str, float]]) -> Table:
    table = Table(title="shadow routing: the same jobs, live answer against shadow answer")
    for column in ("shadow model", "jobs", "pass live", "pass shadow", "shadow errors", "cost live",
                   "cost shadow", "mean latency live", "mean latency shadow"):
        table.add_column(column, justify="right")
    for model, r in rows.items():
        n = r["jobs"]
        table.add_row(model, f"{n:.0f}", f"{r.get('live_passed', 0) / n:.1%}", f"{r.get('shadow_passed', 0) / n:.1%}",
                      f"{r.get('shadow_failed', 0):.0f}", f"${r.get('live_cost_usd', 0):.4f}",
                      f"${r.get('shadow_cost_usd', 0):.4f}", f"{r.get('live_latency_ms', 0) / n:.0f} ms",
                      f"{r.get('shadow_latency_ms', 0) / n:.0f} ms")
    if not rows:
        table.caption = "no shadowed jobs recorded (tierline control shadow MODEL --share 0.05)"
    return table
