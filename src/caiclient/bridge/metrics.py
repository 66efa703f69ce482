"""The bridge's Prometheus metrics, in a registry of its own (one per app, so two bridges in
one process, or the tests, never share counters). Served at ``GET /metrics`` when enabled.

- ``caiclient_bridge_requests_total{route, status}``: HTTP requests answered;
- ``caiclient_bridge_errors_total{error}``: failed requests by error class;
- ``caiclient_bridge_in_flight``: completions being answered now;
- ``caiclient_bridge_first_delta_seconds``: from asking c.ai to the first delta;
- ``caiclient_bridge_generation_seconds``: one whole generation (one choice);
- ``caiclient_bridge_reconcile_actions_total{action}``: reconcile decisions by class.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Counters of one bridge app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "caiclient_bridge_requests", "HTTP requests answered", ["route", "status"], registry=r
        )
        self.errors = Counter(
            "caiclient_bridge_errors", "Failed requests by error class", ["error"], registry=r
        )
        self.in_flight = Gauge(
            "caiclient_bridge_in_flight", "Completions being answered", registry=r
        )
        self._first = Histogram(
            "caiclient_bridge_first_delta_seconds",
            "From asking Character.AI to the first delta",
            buckets=_LATENCY,
            registry=r,
        )
        self._generation = Histogram(
            "caiclient_bridge_generation_seconds",
            "One whole generation (one choice)",
            buckets=_LATENCY,
            registry=r,
        )
        self._actions = Counter(
            "caiclient_bridge_reconcile_actions",
            "Reconcile decisions by class",
            ["action"],
            registry=r,
        )
        self._action_children: dict[str, Counter] = {}

    def reconcile(self, action: str) -> None:
        child = self._action_children.get(action)
        if child is None:
            child = self._action_children[action] = self._actions.labels(action)
        child.inc()

    def first_delta(self, seconds: float) -> None:
        self._first.observe(seconds)

    def generation(self, seconds: float) -> None:
        self._generation.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
