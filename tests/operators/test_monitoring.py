"""Dashboards and alerts as files: promtool accepts them, a real Prometheus scrapes the
exporter, and every metric the dashboard names is served."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from producers.client import submit
from tests.operators.scrape import exporter, free_port
from tests.support import ROOT, RunningWorker
from worker import series

OPS = ROOT / "ops"
DASHBOARD = OPS / "grafana" / "dashboards" / "tierline.json"
_NAME = re.compile(r"\b((?:tierline|gen_ai)_[a-z_]+)\b")
_LABELS = {label for s in (*series.RECORDED.values(), *series.LIVE.values()) for label in s.labels}


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        message = f"SKIPPED LOUDLY: {binary} is not installed (Debian's prometheus package; .ci/run installs it)"
        print(message, file=sys.stderr)
        pytest.skip(message)
    return path


@pytest.mark.parametrize(("what", "path"), [("config", "prometheus/prometheus.yml"),
                                            ("rules", "prometheus/alerts.yml")])
def test_promtool_accepts_the_files(what: str, path: str) -> None:
    out = subprocess.run([_need("promtool"), "check", what, str(OPS / path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _dashboard_names() -> set[str]:
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    return {m for e in exprs for m in _NAME.findall(e)} - _LABELS


def _served_names(metrics_url: str) -> set[str]:
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def test_every_metric_the_dashboard_and_alerts_name_is_served(idle_db_url: str) -> None:
    alerts = set(_NAME.findall((OPS / "prometheus" / "alerts.yml").read_text())) - _LABELS
    with exporter(idle_db_url, "llm:") as url:
        served = _served_names(url)
    assert _dashboard_names() and not (_dashboard_names() - served), _dashboard_names() - served
    assert alerts and not (alerts - served), alerts - served


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real Prometheus on a free loopback port; the test writes its scrape target."""
    binary = _need("prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1s}\nscrape_configs: []\n")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield config, f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def _query(base: str, promql: str) -> list[dict]:  # type: ignore[type-arg]
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())["data"]["result"]  # type: ignore[no-any-return]
    except OSError:
        return []


def test_a_real_prometheus_scrapes_the_job_count(worker: RunningWorker, prometheus: tuple[Path, str]) -> None:
    # Given jobs run by a real worker, and its exporter
    count = 0.0
    handles = [submit([{"role": "user", "content": f"Prometheus question {i}"}], app=worker.app) for i in range(5)]
    assert all(h.result(timeout=30).ok for h in handles)
    config, base = prometheus
    with exporter(worker.url, worker.prefix) as metrics_url:
        target = metrics_url.removeprefix("http://").removesuffix("/metrics")
        # When Prometheus is told to scrape it
        config.write_text("global: {scrape_interval: 1s}\nscrape_configs:\n"
                          f"  - job_name: tierline\n    static_configs: [{{targets: ['{target}']}}]\n")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(urllib.request.Request(f"{base}/-/reload", method="POST"), timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        # Then a PromQL query returns the job count
        while time.monotonic() < deadline:
            result = _query(base, 'sum(tierline_jobs_total{job="tierline"})')
            count = float(result[0]["value"][1]) if result else 0.0
            if count >= 5:
                break
            time.sleep(0.5)
    assert count == 5
