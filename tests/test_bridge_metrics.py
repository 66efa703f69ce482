"""The bridge's metrics: plain counters turned into Prometheus text when read."""

from __future__ import annotations

from caiclient.bridge.metrics import Metrics


def test_counters_and_histograms_render_in_prometheus_text() -> None:
    metrics = Metrics()
    metrics.request("completions", 200)
    metrics.request("completions", 200)
    metrics.request("models", 401)
    metrics.error("Timeout")
    metrics.reconcile("swipe")
    metrics.in_flight += 1
    for seconds in (0.005, 0.02, 120.0):  # on a bound, inside, past the last bound
        metrics.first_delta(seconds)
    text = metrics.render().decode()
    lines = set(text.splitlines())
    assert 'caiclient_bridge_requests_total{route="completions",status="200"} 2.0' in lines
    assert 'caiclient_bridge_requests_total{route="models",status="401"} 1.0' in lines
    assert 'caiclient_bridge_errors_total{error="Timeout"} 1.0' in lines
    assert 'caiclient_bridge_reconcile_actions_total{action="swipe"} 1.0' in lines
    assert "caiclient_bridge_in_flight 1.0" in lines
    # Buckets are cumulative and "le" includes the bound itself.
    assert 'caiclient_bridge_first_delta_seconds_bucket{le="0.005"} 1.0' in lines
    assert 'caiclient_bridge_first_delta_seconds_bucket{le="0.025"} 2.0' in lines
    assert 'caiclient_bridge_first_delta_seconds_bucket{le="60.0"} 2.0' in lines
    assert 'caiclient_bridge_first_delta_seconds_bucket{le="+Inf"} 3.0' in lines
    assert "caiclient_bridge_first_delta_seconds_count 3.0" in lines
    assert "caiclient_bridge_first_delta_seconds_sum 120.025" in lines
    assert "caiclient_bridge_generation_seconds_count 0.0" in lines


def test_each_app_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.request("health", 200)
    assert 'route="health"' in one.render().decode()
    assert 'route="health"' not in two.render().decode()
