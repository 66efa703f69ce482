"""The bridge's metrics: plain counters turned into Prometheus text when read."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge_util import Bridge, bridge_on, sqlite_url
from caiclient.bridge import BridgeConfig
from caiclient.bridge.metrics import Metrics
from caiclient.emulator import Emulator


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


# --- end to end: /metrics of a bridge on the emulator, and the decision log ---------------


async def scrape(b: Bridge) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``GET /metrics``: (name, labels) -> value."""
    async with aiohttp.ClientSession() as http, http.get(b.url + "/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def say(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


async def test_errors_are_counted_by_class(emu: Emulator, tmp_path: Path) -> None:
    config = BridgeConfig(timeout=0.5)
    async with bridge_on(emu, sqlite_url(tmp_path), metrics=True, config=config) as b:
        before = await scrape(b)
        assert value(before, "caiclient_bridge_errors_total", error="WireError") == 0
        made: list[tuple[int, str]] = []

        async def fail(body: dict[str, Any]) -> None:
            status, _, raw = await b.post({"model": b.echo, **body})
            made.append((status, msgspec.json.decode(raw)["error"]["code"]))

        await fail({"messages": []})  # WireError
        await fail({"model": "no-such-character", "messages": [say("x")]})  # WireError
        await fail({"messages": [say("about [[self-harm]]")]})  # Filtered
        emu.rate_limit(generations=0, per=60)
        await fail({"messages": [say("limited")]})  # RateLimited
        emu.rate_limit()
        emu.faults.delay_frames(3.0, frames=1)
        await fail({"messages": [say("slow")]})  # Timeout
        emu.faults.clear()
        assert made == [
            (400, None),
            (404, "model_not_found"),
            (400, "content_filter"),
            (429, "rate_limit_exceeded"),
            (504, "timeout"),
        ]
        after = await scrape(b)
    errors = {
        dict(labels)["error"]: count
        for (name, labels), count in after.items()
        if name == "caiclient_bridge_errors_total"
    }
    assert errors == {"WireError": 2, "Filtered": 1, "RateLimited": 1, "Timeout": 1}
    requests = "caiclient_bridge_requests_total"
    for status, count in (("400", 2), ("404", 1), ("429", 1), ("504", 1)):
        assert value(after, requests, route="completions", status=status) == count, status
    assert value(after, requests, route="completions", status="200") == 0
    assert value(after, "caiclient_bridge_in_flight") == 0


async def test_requests_refused_before_the_engine_are_counted_by_status(
    emu: Emulator, tmp_path: Path
) -> None:
    async with (
        bridge_on(emu, sqlite_url(tmp_path), metrics=True, api_key="k") as b,
        aiohttp.ClientSession() as http,
    ):
        for path, headers in (
            ("/v1/models", {}),
            ("/v1/models", {"Authorization": "Bearer wrong"}),
            ("/v1/nowhere", {"Authorization": "Bearer k"}),
            ("/v1/models", {"Authorization": "Bearer k", "Host": "evil.example"}),
        ):
            async with http.get(b.url + path, headers=headers) as response:
                await response.read()
        async with http.get(b.url + "/metrics", headers={"Authorization": "Bearer k"}) as response:
            text = await response.text()
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    requests = "caiclient_bridge_requests_total"
    assert value(samples, requests, route="models", status="401") == 2
    assert value(samples, requests, route="other", status="404") == 1
    assert value(samples, requests, route="models", status="403") == 1
    assert not [k for k in samples if k[0] == "caiclient_bridge_errors_total"]  # not c.ai errors


async def test_generation_latency_is_measured(emu: Emulator, tmp_path: Path) -> None:
    async with bridge_on(emu, sqlite_url(tmp_path), metrics=True) as b:
        first, whole = "caiclient_bridge_first_delta_seconds", "caiclient_bridge_generation_seconds"
        dialogue = [say("timed")]
        for stream, n, delay in ((True, 1, 0.0), (False, 1, 0.3), (True, 2, 0.0)):
            if delay:  # the next frame c.ai sends (the chat exists: the reply's first) waits
                emu.faults.delay_frames(delay, frames=1)
            status, _, raw = await b.post(
                {"model": b.echo, "stream": stream, "n": n, "messages": dialogue}
            )
            assert status == 200
            if not stream:
                reply = msgspec.json.decode(raw)["choices"][0]["message"]["content"]
                dialogue = [*dialogue, {"role": "assistant", "content": reply}, say("more")]
        samples = await scrape(b)
    # One observation per choice: 1 + 1 + 2.
    assert value(samples, whole + "_count") == value(samples, first + "_count") == 4
    # The delayed reply is in the buckets past 0.25 s, the other three below it.
    assert value(samples, whole + "_bucket", le="0.25") == 3
    assert value(samples, first + "_bucket", le="0.25") == 3
    assert value(samples, whole + "_bucket", le="+Inf") == 4
    assert value(samples, whole + "_sum") >= 0.3
    assert value(samples, first + "_sum") >= 0.3
    assert value(samples, whole + "_sum") >= value(samples, first + "_sum")


async def test_each_decision_is_logged_with_its_class(
    emu: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="caiclient.bridge")
    seen: list[tuple[str, str]] = []
    async with bridge_on(emu, sqlite_url(tmp_path), metrics=True) as b:

        async def step(messages: list[dict[str, str]]) -> str:
            caplog.clear()
            status, headers, raw = await b.post({"model": b.echo, "messages": messages})
            assert status == 200
            decisions = [
                r for r in caplog.records
                if r.name == "caiclient.bridge" and r.getMessage().startswith("reconcile ")
            ]  # fmt: skip
            assert all(r.levelno == logging.INFO for r in decisions)
            last = decisions[-1].getMessage()
            for message in messages:  # What was decided is logged, not what was written.
                assert message["content"] not in last, last
            seen.append((headers["X-Bridge-Action"], last.split(" ")[1]))
            return str(msgspec.json.decode(raw)["choices"][0]["message"]["content"])

        a1 = await step([say("Hi")])
        await step([say("Hi")])  # swipe
        await step([say("Hi"), {"role": "assistant", "content": a1}, say("Next")])
        await step([say("### Task:\nGenerate a concise title for the chat.")])
        samples = await scrape(b)
    assert seen == [
        ("first_contact+new_turn", "first_contact+new_turn"),
        ("swipe", "swipe"),
        ("select+new_turn", "select+new_turn"),
        ("task", "task"),
    ]
    actions = "caiclient_bridge_reconcile_actions_total"
    for action, count in (("first_contact", 1), ("new_turn", 2), ("swipe", 1), ("select", 1)):
        assert value(samples, actions, action=action) == count, action
    assert value(samples, actions, action="task") == 1
