"""The bridge's Prometheus metrics, in a registry of its own (one per app, so two bridges in
one process, or the tests, never share counters). Served at ``GET /metrics`` when enabled.

- ``caiclient_bridge_requests_total{route, status}``: HTTP requests answered;
- ``caiclient_bridge_errors_total{error}``: failed requests by error class;
- ``caiclient_bridge_in_flight``: completions being answered now;
- ``caiclient_bridge_first_delta_seconds``: from asking c.ai to the first delta;
- ``caiclient_bridge_generation_seconds``: one whole generation (one choice);
- ``caiclient_bridge_reconcile_actions_total{action}``: reconcile decisions by class.

Counting is on the hot path of every completion, so it is plain integer arithmetic on the
event loop's thread (no locks, no label look-ups); the Prometheus metric families are
built from those numbers only when ``/metrics`` is read (a collector of the registry).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _Histogram:
    """Observations per bucket (not cumulative: one increment each) and their sum."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # The last one is +Inf.
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        buckets = []
        total = 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            total += count
            buckets.append((bound, float(total)))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self.sum)


class Metrics(Collector):
    """Counters of one bridge app (call its methods from the event loop's thread)."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.errors: Counter[str] = Counter()
        self.actions: Counter[str] = Counter()
        self.in_flight = 0
        self._first = _Histogram(_LATENCY)
        self._generation = _Histogram(_LATENCY)
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)

    def request(self, route: str, status: int) -> None:
        self.requests[route, status] += 1

    def error(self, name: str) -> None:
        self.errors[name] += 1

    def reconcile(self, action: str) -> None:
        self.actions[action] += 1

    def first_delta(self, seconds: float) -> None:
        self._first.observe(seconds)

    def generation(self, seconds: float) -> None:
        self._generation.observe(seconds)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "caiclient_bridge_requests", "HTTP requests answered", labels=["route", "status"]
        )
        for (route, status), count in sorted(self.requests.items()):
            requests.add_metric([route, str(status)], count)
        yield requests
        errors = CounterMetricFamily(
            "caiclient_bridge_errors", "Failed requests by error class", labels=["error"]
        )
        for name, count in sorted(self.errors.items()):
            errors.add_metric([name], count)
        yield errors
        yield GaugeMetricFamily(
            "caiclient_bridge_in_flight", "Completions being answered", value=self.in_flight
        )
        yield self._first.family(
            "caiclient_bridge_first_delta_seconds", "From asking Character.AI to the first delta"
        )
        yield self._generation.family(
            "caiclient_bridge_generation_seconds", "One whole generation (one choice)"
        )
        actions = CounterMetricFamily(
            "caiclient_bridge_reconcile_actions", "Reconcile decisions by class", labels=["action"]
        )
        for name, count in sorted(self.actions.items()):
            actions.add_metric([name], count)
        yield actions

    def render(self) -> bytes:
        return generate_latest(self.registry)
