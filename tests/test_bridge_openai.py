"""The official ``openai`` client (sync and async) against the bridge over the emulator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest

from bridge_util import Bridge, bridge_on, sqlite_url, texts
from caiclient import ValidationError
from caiclient.bridge import serve
from caiclient.emulator import Emulator


@pytest.fixture
async def bridge(emu: Emulator, tmp_path: Path) -> AsyncIterator[Bridge]:
    async with bridge_on(emu, sqlite_url(tmp_path), metrics=True) as b:
        yield b


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_create_returns_the_characters_reply_in_openai_shape(
    bridge: Bridge, kind: str
) -> None:
    messages = [{"role": "system", "content": "card"}, {"role": "user", "content": "Hello there"}]
    if kind == "async":
        async with openai.AsyncOpenAI(base_url=bridge.v1, api_key="unused") as oa:
            reply = await oa.chat.completions.create(model=bridge.echo, messages=messages)  # type: ignore[arg-type]
    else:
        with openai.OpenAI(base_url=bridge.v1, api_key="unused") as sync:
            reply = await asyncio.to_thread(
                sync.chat.completions.create,
                model=bridge.echo,
                messages=messages,  # type: ignore[arg-type]
            )
    assert reply.object == "chat.completion"
    assert reply.model == bridge.echo
    assert reply.id.startswith("chatcmpl-")
    [choice] = reply.choices
    assert choice.index == 0 and choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content is not None
    assert choice.message.content.startswith("Hello there")
    assert reply.usage is not None and reply.usage.total_tokens == (
        reply.usage.prompt_tokens + reply.usage.completion_tokens
    )
    history = texts(await bridge.history())
    assert [who for who, _ in history] == ["char", "user", "char"]
    assert history[1][1] == ["Hello there"]
    assert history[2][1] == [choice.message.content]


async def test_stream_with_include_usage(tmp_path: Path) -> None:
    # Frames 0.1 s apart, so that each reaches the client as a delta of its own (frames
    # that arrive together are sent as one, so a shorter gap would be at the mercy of load).
    async with (
        Emulator(chunk_delay=0.1) as emu,
        bridge_on(emu, sqlite_url(tmp_path)) as bridge,
        openai.AsyncOpenAI(base_url=bridge.v1, api_key="unused") as oa,
    ):
        stream = await oa.chat.completions.create(
            model=bridge.echo,
            messages=[{"role": "user", "content": "Stream me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
        assert chunks[0].choices[0].delta.role == "assistant"
        assert all(c.choices[0].delta.role is None for c in chunks[1:] if c.choices)
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert content.startswith("Stream me")
        assert (
            sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 3
        )  # real deltas
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert all(c.usage is None for c in chunks[:-1])
        assert texts(await bridge.history())[-1][1] == [content]


async def test_frames_that_arrive_together_go_out_as_one_delta(bridge: Bridge) -> None:
    # chunk_delay=0: the emulator sends the whole reply at once; the bridge writes what has
    # arrived in one go instead of one event (and one system call) per frame.
    body = {"model": bridge.echo, "stream": True, "messages": [{"role": "user", "content": "All"}]}
    status, _, raw = await bridge.post(body)
    assert status == 200
    payloads = [json.loads(e[6:]) for e in raw.decode().split("\n\n")[:-2]]
    deltas = [p["choices"][0]["delta"] for p in payloads]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert [d for d in deltas[1:-1] if d.get("content")] == deltas[1:-1]
    assert len(deltas) < 2 + bridge.emu.chunks  # fewer deltas than frames
    text = "".join(d.get("content", "") for d in deltas)
    assert texts(await bridge.history())[-1][1] == [text]


async def test_a_slow_first_frame_gets_keep_alive_comments(emu: Emulator, tmp_path: Path) -> None:
    # The first frame comes after 1 s; with pings every 0.2 s of quiet the 200 goes out
    # early, with ": ping" comments, so that proxies and clients do not give up.
    async with bridge_on(emu, sqlite_url(tmp_path), ping_interval=0.2) as b:
        emu.faults.delay_frames(1.0)
        body = {"model": b.echo, "stream": True, "messages": [{"role": "user", "content": "Slow"}]}
        status, _, raw = await b.post(body)
    assert status == 200
    events = raw.decode().split("\n\n")
    assert events[0] == ": ping"  # before anything else
    data = [e for e in events if e.startswith("data: ")]
    assert data[-1] == "data: [DONE]"
    assert all(e in (": ping", "") for e in events if not e.startswith("data: "))
    content = "".join(
        json.loads(e[6:])["choices"][0]["delta"].get("content", "") for e in data[:-1]
    )
    assert content.startswith("Slow")


async def test_stream_bytes_follow_the_sse_contract(bridge: Bridge) -> None:
    body = {"model": bridge.echo, "stream": True, "messages": [{"role": "user", "content": "Raw"}]}
    status, headers, raw = await bridge.post(body)
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["X-Usage-Estimated"] == "chars/4"
    events = raw.decode().split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert not any(line.startswith("event:") for line in raw.decode().splitlines())
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)
    assert payloads[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert "usage" not in payloads[0]  # only with include_usage


async def test_stream_helper_get_final_completion(bridge: Bridge) -> None:
    def run() -> str | None:
        with (
            openai.OpenAI(base_url=bridge.v1, api_key="unused") as sync,
            sync.chat.completions.stream(
                model=bridge.echo, messages=[{"role": "user", "content": "Helper"}]
            ) as stream,
        ):
            for _event in stream:
                pass
            final = stream.get_final_completion()
        return final.choices[0].message.content

    content = await asyncio.to_thread(run)
    assert content is not None and content.startswith("Helper")


async def test_n_2_gives_two_candidates_and_keeps_the_first_primary(bridge: Bridge) -> None:
    async with openai.AsyncOpenAI(base_url=bridge.v1, api_key="unused") as oa:
        reply = await oa.chat.completions.create(
            model=bridge.echo, messages=[{"role": "user", "content": "Twice"}], n=2
        )
        first, second = (c.message.content for c in reply.choices)
        assert [c.index for c in reply.choices] == [0, 1]
        assert first != second and first and second and first.startswith("Twice")
        [_greeting, _user, answer] = texts(await bridge.history())
        assert answer[1][0] == first  # primary = what the front end shows first
        assert sorted(answer[1]) == sorted([first, second])
        stream = await oa.chat.completions.create(
            model=bridge.echo,
            messages=[
                {"role": "user", "content": "Twice"},
                {"role": "assistant", "content": first},
                {"role": "user", "content": "Again"},
            ],
            n=2,
            stream=True,
        )
        by_index: dict[int, str] = {}
        async for chunk in stream:
            for choice in chunk.choices:
                by_index[choice.index] = by_index.get(choice.index, "") + (
                    choice.delta.content or ""
                )
        assert sorted(by_index) == [0, 1] and by_index[0] != by_index[1]


async def test_models_list_and_retrieve(bridge: Bridge) -> None:
    async with openai.AsyncOpenAI(base_url=bridge.v1, api_key="unused") as oa:
        await oa.chat.completions.create(
            model=bridge.echo, messages=[{"role": "user", "content": "x"}]
        )
        listed = await oa.models.list()
        names = {m.id: getattr(m, "name", None) for m in listed.data}
        assert names.get(bridge.echo) == "Echo"
        model = await oa.models.retrieve(bridge.echo)
        assert (model.id, model.object) == (bridge.echo, "model")
        with pytest.raises(openai.NotFoundError) as caught:
            await oa.models.retrieve("no-such-character")
        assert caught.value.code == "model_not_found"
        async with aiohttp.ClientSession() as http, http.get(bridge.url + "/models") as plain:
            assert plain.status == 200  # also without /v1 (SillyTavern)


async def test_a_character_first_talked_to_is_listed_at_once(bridge: Bridge) -> None:
    # The listing is cached for minutes; a chat the bridge makes with a character the cached
    # listing lacks makes the next listing read the recent chats again.
    async with openai.AsyncOpenAI(base_url=bridge.v1, api_key="unused") as oa:
        before = [m.id for m in (await oa.models.list()).data]
        assert bridge.echo not in before
        await oa.chat.completions.create(
            model=bridge.echo, messages=[{"role": "user", "content": "first words"}]
        )
        assert bridge.echo in [m.id for m in (await oa.models.list()).data]


async def test_error_classes(bridge: Bridge) -> None:
    async with openai.AsyncOpenAI(base_url=bridge.v1, api_key="unused", max_retries=0) as oa:
        user = [{"role": "user", "content": "hello"}]
        with pytest.raises(openai.NotFoundError) as not_found:
            await oa.chat.completions.create(model="Nobody", messages=user)  # type: ignore[arg-type]
        assert not_found.value.code == "model_not_found"
        with pytest.raises(openai.BadRequestError) as empty:
            await oa.chat.completions.create(
                model=bridge.echo, messages=[{"role": "user", "content": " "}]
            )
        assert empty.value.param == "messages[0].content"
        with pytest.raises(openai.BadRequestError) as too_many:
            await oa.chat.completions.create(model=bridge.echo, messages=user, n=9)  # type: ignore[arg-type]
        assert too_many.value.param == "n"
        bridge.emu.filters.input_phrases = ["forbidden"]
        with pytest.raises(openai.BadRequestError) as refused:
            await oa.chat.completions.create(
                model=bridge.echo, messages=[{"role": "user", "content": "something forbidden"}]
            )
        assert refused.value.code == "content_filter"
        bridge.emu.rate_limit(generations=1, per=60)
        await oa.chat.completions.create(
            model=bridge.echo, messages=[{"role": "user", "content": "a"}]
        )
        with pytest.raises(openai.RateLimitError) as limited:
            await oa.chat.completions.create(
                model=bridge.echo, messages=[{"role": "user", "content": "b"}]
            )
        assert int(limited.value.response.headers["Retry-After"]) >= 1
        bridge.emu.rate_limit()
        bridge.emu.faults.cloudflare(seconds=30)
        sage = bridge.emu.character("Sage").id  # not looked up yet: REST is needed
        with pytest.raises(openai.InternalServerError) as blocked:
            await oa.chat.completions.create(
                model=sage, messages=[{"role": "user", "content": "c"}]
            )
        assert (blocked.value.status_code, blocked.value.code) == (502, "upstream_blocked")
    bridge.emu.faults.clear()


async def test_missing_messages_malformed_json_and_huge_bodies(
    emu: Emulator, tmp_path: Path
) -> None:
    async with bridge_on(emu, sqlite_url(tmp_path), max_body=10_000) as b:
        status, _, raw = await b.post({"model": b.echo})
        assert status == 400 and json.loads(raw)["error"]["param"] == "messages"
        async with (
            aiohttp.ClientSession() as http,
            http.post(b.v1 + "/chat/completions", data=b"{not json") as bad,
        ):
            assert bad.status == 400
            assert json.loads(await bad.read())["error"]["type"] == "invalid_request_error"
        huge = {"model": b.echo, "messages": [{"role": "user", "content": "x" * 20_000}]}
        status, _, raw = await b.post(huge)
        assert status == 413 and json.loads(raw)["error"]["code"] == "request_too_large"
        status, _, raw = await b.post(
            {"model": b.echo, "messages": [{"role": "wizard", "content": "x"}], "seed": 1}
        )
        assert status == 400 and json.loads(raw)["error"]["param"] == "messages[0].role"


async def test_timeout_is_504(emu: Emulator, tmp_path: Path) -> None:
    from caiclient.bridge import BridgeConfig

    async with bridge_on(emu, sqlite_url(tmp_path), config=BridgeConfig(timeout=0.3)) as b:
        emu.faults.delay_frames(1.5, frames=10)
        async with openai.AsyncOpenAI(base_url=b.v1, api_key="unused", max_retries=0) as oa:
            with pytest.raises(openai.InternalServerError) as timed_out:
                await oa.chat.completions.create(
                    model=b.echo, messages=[{"role": "user", "content": "t"}]
                )
            assert timed_out.value.status_code == 504
            assert timed_out.value.response.headers.get("x-should-retry") == "false"


async def test_api_key_host_guard_and_cors(emu: Emulator, tmp_path: Path) -> None:
    async with (
        bridge_on(emu, sqlite_url(tmp_path), api_key="sekrit", cors=["https://ui.example"]) as b,
        openai.AsyncOpenAI(base_url=b.v1, api_key="wrong", max_retries=0) as oa,
    ):
        with pytest.raises(openai.AuthenticationError):
            await oa.models.list()
        async with openai.AsyncOpenAI(base_url=b.v1, api_key="sekrit") as ok:
            assert (await ok.models.list()).object == "list"
        async with aiohttp.ClientSession() as http:
            async with http.get(b.url + "/health") as health:  # no key needed
                assert health.status == 200
                assert (await health.json())["upstream"]["token"] == "valid"
            async with http.get(b.url + "/v1/models", headers={"Host": "evil.example"}) as rebind:
                assert rebind.status == 403
            preflight = {
                "Origin": "https://ui.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, x-stainless-retry-count",
            }
            async with http.options(b.v1 + "/chat/completions", headers=preflight) as pre:
                assert pre.status == 204
                assert pre.headers["Access-Control-Allow-Origin"] == "https://ui.example"
                assert "x-stainless-retry-count" in pre.headers["Access-Control-Allow-Headers"]
            other = {**preflight, "Origin": "https://evil.example"}
            async with http.options(b.v1 + "/chat/completions", headers=other) as denied:
                assert denied.status == 403
                assert "Access-Control-Allow-Origin" not in denied.headers


async def test_bearer_undefined_is_fine_without_a_key(bridge: Bridge) -> None:
    status, _, _ = await bridge.post(
        {"model": bridge.echo, "messages": [{"role": "user", "content": "st"}]},
        headers={"Authorization": "Bearer undefined"},
    )
    assert status == 200


async def test_serve_refuses_a_public_address_without_a_key(bridge: Bridge) -> None:
    with pytest.raises(ValidationError, match="API key"):
        await serve(bridge.client, host="0.0.0.0", port=0)


async def test_metrics_count_requests_and_reconcile_actions(bridge: Bridge) -> None:
    async with openai.AsyncOpenAI(base_url=bridge.v1, api_key="unused") as oa:
        messages = [{"role": "user", "content": "m"}]
        await oa.chat.completions.create(model=bridge.echo, messages=messages)  # type: ignore[arg-type]
        await oa.chat.completions.create(model=bridge.echo, messages=messages)  # type: ignore[arg-type]
        async with aiohttp.ClientSession() as http, http.get(bridge.url + "/metrics") as response:
            text = await response.text()
        assert 'caiclient_bridge_reconcile_actions_total{action="first_contact"} 1.0' in text
        assert 'caiclient_bridge_reconcile_actions_total{action="swipe"} 1.0' in text
        assert 'caiclient_bridge_requests_total{route="completions",status="200"} 2.0' in text
        assert "caiclient_bridge_first_delta_seconds_count 2.0" in text
        assert "caiclient_bridge_in_flight 0.0" in text
