"""`tierline metrics`: a Prometheus endpoint over the series every worker flushes to Redis.

A custom collector reads, on each scrape, the cumulative series hash (one HGETALL), the
busy flags with their time left (one pipeline) and the queue depths on the broker (one
pipeline). It keeps no state of its own: any number of exporters may run, and what they
serve is the sum over every worker process of every host.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from rich.console import Console

from contract.names import QUEUE_CONVERSATIONS, QUEUE_EXTRACTION
from worker import series as S
from worker.broker import is_amqp
from worker.catalog import Catalog, load_catalog
from worker.keys import Keys
from worker.metrics import Metrics, read_series
from worker.settings import Settings, get_settings
from worker.state import RoutingState

log = logging.getLogger(__name__)

# kombu's Redis transport keeps a queue's priority levels under these suffixes.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
QUEUES = (QUEUE_CONVERSATIONS, QUEUE_EXTRACTION)


@dataclass
class _Histogram:
    buckets: dict[float, float] = field(default_factory=dict)
    total: float = 0.0


def families(fields: dict[str, float]) -> list[Metric]:
    """Counter and histogram families for every recorded series from flushed `fields`."""
    counters: dict[str, dict[tuple[str, ...], float]] = defaultdict(dict)
    histograms: dict[str, dict[tuple[str, ...], _Histogram]] = defaultdict(dict)
    for name, value in fields.items():
        parsed = S.parse(name)
        if parsed is None:
            continue
        labels = tuple(parsed.labels.get(k, "") for k in parsed.series.labels)
        if parsed.series.kind is S.Kind.COUNTER:
            counters[parsed.series.name][labels] = counters[parsed.series.name].get(labels, 0.0) + value
            continue
        hist = histograms[parsed.series.name].setdefault(labels, _Histogram())
        if parsed.part == "_bucket" and parsed.le is not None:
            hist.buckets[parsed.le] = hist.buckets.get(parsed.le, 0.0) + value
        elif parsed.part == "_sum":
            hist.total += value
    out: list[Metric] = []
    for series in S.RECORDED.values():
        if series.kind is S.Kind.COUNTER:
            out.append(_counter(series, counters.get(series.name, {})))
        else:
            out.append(_histogram(series, histograms.get(series.name, {})))
    return out


def _counter(series: S.Series, values: dict[tuple[str, ...], float]) -> Metric:
    family = CounterMetricFamily(series.name, series.help, labels=series.labels)
    for labels, value in sorted(values.items()):
        family.add_metric(labels, value)
    return family


def _histogram(series: S.Series, values: dict[tuple[str, ...], _Histogram]) -> Metric:
    family = HistogramMetricFamily(series.name, series.help, labels=series.labels)
    for labels, hist in sorted(values.items()):
        running, buckets = 0.0, []
        for bound in (*series.bounds, math.inf):
            running += hist.buckets.get(bound, 0.0)
            buckets.append((S.format_bound(bound), running))
        family.add_metric(labels, buckets, hist.total)
    return family


class RedisCollector(Collector):
    """Serves the flushed series and the live state (busy flags, queue depths)."""

    def __init__(self, state: redis.Redis, broker: redis.Redis | None, keys: Keys, catalog: Catalog,
                 *, queues: Sequence[str] = QUEUES) -> None:
        self._state, self._broker, self._keys, self._catalog = state, broker, keys, catalog
        self._queues = tuple(queues)

    def collect(self) -> Iterable[Metric]:
        yield from families(read_series(self._state, self._keys.series_total))
        yield from self._busy()
        yield from self._queue_depths()

    def _busy(self) -> Iterator[Metric]:
        busy = GaugeMetricFamily(S.MODEL_BUSY.name, S.MODEL_BUSY.help, labels=S.MODEL_BUSY.labels)
        left = GaugeMetricFamily(S.MODEL_BUSY_LEFT.name, S.MODEL_BUSY_LEFT.help, labels=S.MODEL_BUSY_LEFT.labels)
        flags = RoutingState(self._state, self._keys, Metrics()).flags(self._catalog.model_names)
        for tier in self._catalog.tiers:
            for model in tier.models:
                flag = flags.get(model.name)
                busy.add_metric((model.name, tier.name), 1.0 if flag else 0.0)
                left.add_metric((model.name, tier.name), flag.ttl_s if flag else 0.0)
        yield busy
        yield left

    def _queue_depths(self) -> Iterator[Metric]:
        if self._broker is None:  # RabbitMQ: its own management plugin exports queue depths
            return
        depth = GaugeMetricFamily(S.QUEUE_DEPTH.name, S.QUEUE_DEPTH.help, labels=S.QUEUE_DEPTH.labels)
        pipe = self._broker.pipeline(transaction=False)
        for queue in self._queues:
            for suffix in _PRIORITY_SUFFIXES:
                pipe.llen(queue + suffix)
        pipe.hlen("unacked")
        replies = pipe.execute()
        per = len(_PRIORITY_SUFFIXES)
        for i, queue in enumerate(self._queues):
            depth.add_metric((queue,), float(sum(replies[i * per:(i + 1) * per])))
        yield depth
        unacked = GaugeMetricFamily(S.UNACKED.name, S.UNACKED.help)
        unacked.add_metric((), float(replies[-1]))
        yield unacked


def registry_for(collector: Collector) -> CollectorRegistry:
    """A registry serving `collector` alone (no process metrics of the exporter itself)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def serve(collector: Collector, *, port: int, address: str) -> tuple[object, object]:
    """Serve `collector` on http://address:port/metrics in a daemon thread; (server, thread)."""
    return start_http_server(port, addr=address, registry=registry_for(collector))


def collector_from_settings(settings: Settings) -> RedisCollector:
    """The collector for the Redis servers and catalog `settings` name."""
    state = redis.Redis.from_url(settings.state, socket_timeout=5, socket_connect_timeout=5)
    broker = None if is_amqp(settings.broker) else redis.Redis.from_url(
        settings.broker, socket_timeout=5, socket_connect_timeout=5)
    return RedisCollector(state, broker, settings.keys, load_catalog(settings.catalog_path))


def run_exporter(*, port: int | None, address: str, console: Console) -> None:
    """Serve until interrupted. port: None for TIERLINE_METRICS_PORT, 0 for any free port."""
    settings = get_settings()
    server, _ = serve(collector_from_settings(settings), port=settings.metrics_port if port is None else port,
                      address=address)
    bound = server.server_port  # type: ignore[attr-defined]
    console.print(f"serving metrics at http://{address}:{bound}/metrics", highlight=False)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
