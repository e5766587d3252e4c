"""`tierline report`: read the window from Redis and show it (tables, JSON or HTML)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import redis
from rich.console import Console

from operators.report import parse_duration, report_from_redis
from operators.report_html import render_html
from operators.report_view import render
from worker.settings import get_settings


def show_report(*, since: str, as_json: bool, html: Path | None, console: Console) -> int:
    """Print the report for the last `since` (e.g. "1h"); 2 on a bad window or no Redis."""
    try:
        since_s = parse_duration(since)
    except ValueError:
        console.print(f"[red]not a duration:[/] {since!r} (try 90s, 15m, 1h, 2d)")
        return 2
    settings = get_settings()
    if not settings.redis_url and not settings.state_url:
        console.print("[red]set REDIS_URL[/] (the report reads the workers' Redis)")
        return 2
    client = redis.Redis.from_url(settings.state, socket_timeout=10, socket_connect_timeout=5)
    try:
        report = report_from_redis(client, settings.keys, since_s=since_s)
    finally:
        client.close()
    if html is not None:
        html.write_text(render_html(report))
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        console.print(render(report))
        if html is not None:
            console.print(f"HTML report: {html}")
    return 0
