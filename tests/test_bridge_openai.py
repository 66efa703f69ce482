"""The official ``openai`` client (sync and async) against the bridge over the emulator."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from bridge_util import Bridge, Ops, bridge_on, sqlite_url, texts
from caiclient import AsyncClient, Endpoints, ValidationError
from caiclient.bridge import BridgeConfig, create_app, running, serve
from caiclient.emulator import Emulator

KINDS = ["async", "sync"]


class Official:
    """``openai.AsyncOpenAI`` or ``openai.OpenAI`` behind one awaitable surface. The sync
    client's calls (and its stream's iteration) run in a worker thread: the bridge and the
    emulator run on the test's event loop."""

    def __init__(self, kind: str, base_url: str, **options: Any) -> None:
        self.kind = kind
        self.aio = openai.AsyncOpenAI(base_url=base_url, **options)
        self.sync = openai.OpenAI(base_url=base_url, **options)

    async def create(self, **request: Any) -> ChatCompletion:
        if self.kind == "async":
            return await self.aio.chat.completions.create(**request)  # type: ignore[no-any-return]
        return await asyncio.to_thread(self.sync.chat.completions.create, **request)  # type: ignore[no-any-return]

    async def stream(
        self, into: list[ChatCompletionChunk] | None = None, **request: Any
    ) -> list[ChatCompletionChunk]:
        """Every chunk of a streamed completion (also kept in ``into`` as they come, so a
        caller sees those that arrived before an error)."""
        chunks = [] if into is None else into
        if self.kind == "async":
            async for chunk in await self.aio.chat.completions.create(stream=True, **request):
                chunks.append(chunk)
            return chunks

        def read() -> None:
            chunks.extend(self.sync.chat.completions.create(stream=True, **request))

        await asyncio.to_thread(read)
        return chunks

    async def models(self) -> list[Model]:
        if self.kind == "async":
            return (await self.aio.models.list()).data
        return (await asyncio.to_thread(self.sync.models.list)).data

    async def model(self, model_id: str) -> Model:
        if self.kind == "async":
            return await self.aio.models.retrieve(model_id)
        return await asyncio.to_thread(self.sync.models.retrieve, model_id)

    async def close(self) -> None:
        await self.aio.close()
        await asyncio.to_thread(self.sync.close)


@asynccontextmanager
async def official(
    kind: str, bridge: Bridge, api_key: str = "unused", **options: Any
) -> AsyncIterator[Official]:
    client = Official(kind, bridge.v1, api_key=api_key, **options)
    try:
        yield client
    finally:
        await client.close()


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def streamed(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


async def _one_exchange(b: Bridge, oa: Official, conversation: str) -> list[dict[str, str]]:
    """A conversation with one exchange (named by ``X-Session-Id``); its messages."""
    first = await oa.create(
        model=b.echo, messages=[user("one")], extra_headers={"X-Session-Id": conversation}
    )
    text = first.choices[0].message.content
    assert text is not None
    return [user("one"), assistant(text)]


@pytest.fixture
async def bridge(emu: Emulator, tmp_path: Path) -> AsyncIterator[Bridge]:
    async with bridge_on(emu, sqlite_url(tmp_path), metrics=True) as b:
        yield b


@pytest.mark.parametrize("kind", KINDS)
async def test_create_returns_the_characters_reply_in_openai_shape(
    bridge: Bridge, kind: str
) -> None:
    messages = [{"role": "system", "content": "card"}, {"role": "user", "content": "Hello there"}]
    async with official(kind, bridge) as oa:
        reply = await oa.create(model=bridge.echo, messages=messages)
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


@pytest.mark.parametrize("kind", KINDS)
async def test_stream_with_include_usage(tmp_path: Path, kind: str) -> None:
    # Frames 0.1 s apart, so that each reaches the client as a delta of its own (frames
    # that arrive together are sent as one, so a shorter gap would be at the mercy of load).
    async with (
        Emulator(chunk_delay=0.1) as emu,
        bridge_on(emu, sqlite_url(tmp_path)) as bridge,
        official(kind, bridge) as oa,
    ):
        chunks = await oa.stream(
            model=bridge.echo,
            messages=[{"role": "user", "content": "Stream me"}],
            stream_options={"include_usage": True},
        )
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


@pytest.mark.parametrize("kind", KINDS)
async def test_n_2_gives_two_candidates_and_keeps_the_first_primary(
    bridge: Bridge, kind: str
) -> None:
    async with official(kind, bridge) as oa:
        reply = await oa.create(
            model=bridge.echo, messages=[{"role": "user", "content": "Twice"}], n=2
        )
        first, second = (c.message.content for c in reply.choices)
        assert [c.index for c in reply.choices] == [0, 1]
        assert first != second and first and second and first.startswith("Twice")
        [_greeting, _user, answer] = texts(await bridge.history())
        assert answer[1][0] == first  # primary = what the front end shows first
        assert sorted(answer[1]) == sorted([first, second])
        chunks = await oa.stream(
            model=bridge.echo,
            messages=[
                {"role": "user", "content": "Twice"},
                {"role": "assistant", "content": first},
                {"role": "user", "content": "Again"},
            ],
            n=2,
        )
        by_index: dict[int, str] = {}
        for chunk in chunks:
            for choice in chunk.choices:
                by_index[choice.index] = by_index.get(choice.index, "") + (
                    choice.delta.content or ""
                )
        assert sorted(by_index) == [0, 1] and by_index[0] != by_index[1]


@pytest.mark.parametrize("kind", KINDS)
async def test_models_list_and_retrieve(bridge: Bridge, kind: str) -> None:
    async with official(kind, bridge) as oa:
        await oa.create(model=bridge.echo, messages=[{"role": "user", "content": "x"}])
        listed = await oa.models()
        names = {m.id: getattr(m, "name", None) for m in listed}
        assert names.get(bridge.echo) == "Echo"
        model = await oa.model(bridge.echo)
        assert (model.id, model.object) == (bridge.echo, "model")
        with pytest.raises(openai.NotFoundError) as caught:
            await oa.model("no-such-character")
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


@pytest.mark.parametrize("kind", KINDS)
async def test_error_classes(bridge: Bridge, kind: str) -> None:
    async with official(kind, bridge, max_retries=0) as oa:
        user = [{"role": "user", "content": "hello"}]
        with pytest.raises(openai.NotFoundError) as not_found:
            await oa.create(model="Nobody", messages=user)
        assert not_found.value.code == "model_not_found"
        with pytest.raises(openai.BadRequestError) as empty:
            await oa.create(model=bridge.echo, messages=[{"role": "user", "content": " "}])
        assert empty.value.param == "messages[0].content"
        with pytest.raises(openai.BadRequestError) as too_many:
            await oa.create(model=bridge.echo, messages=user, n=9)
        assert too_many.value.param == "n"
        bridge.emu.filters.input_phrases = ["forbidden"]
        with pytest.raises(openai.BadRequestError) as refused:
            await oa.create(
                model=bridge.echo, messages=[{"role": "user", "content": "something forbidden"}]
            )
        assert refused.value.code == "content_filter"
        bridge.emu.rate_limit(generations=1, per=60)
        await oa.create(model=bridge.echo, messages=[{"role": "user", "content": "a"}])
        with pytest.raises(openai.RateLimitError) as limited:
            await oa.create(model=bridge.echo, messages=[{"role": "user", "content": "b"}])
        assert int(limited.value.response.headers["Retry-After"]) >= 1
        bridge.emu.rate_limit()
        bridge.emu.faults.cloudflare(seconds=30)
        sage = bridge.emu.character("Sage").id  # not looked up yet: REST is needed
        with pytest.raises(openai.InternalServerError) as blocked:
            await oa.create(model=sage, messages=[{"role": "user", "content": "c"}])
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


@pytest.mark.parametrize(("kind", "stream"), [("async", False), ("sync", False), ("sync", True)])
async def test_timeout_is_504(emu: Emulator, tmp_path: Path, kind: str, stream: bool) -> None:
    async with bridge_on(emu, sqlite_url(tmp_path), config=BridgeConfig(timeout=0.3)) as b:
        emu.faults.delay_frames(1.5, frames=10)
        async with official(kind, b, max_retries=0) as oa:
            with pytest.raises(openai.InternalServerError) as timed_out:
                request = {"model": b.echo, "messages": [{"role": "user", "content": "t"}]}
                await (oa.stream(**request) if stream else oa.create(**request))
            assert timed_out.value.status_code == 504
            assert timed_out.value.code == "timeout"
            assert timed_out.value.response.headers.get("x-should-retry") == "false"
        emu.faults.clear()


@pytest.mark.parametrize("kind", KINDS)
async def test_authentication_permission_and_status_error_classes(
    emu: Emulator, tmp_path: Path, kind: str
) -> None:
    # The classes test_error_classes does not reach: 401 for a wrong bridge key and for a
    # c.ai token the service refuses, 403 for a foreign Host header, 413 (APIStatusError).
    async with bridge_on(emu, sqlite_url(tmp_path), api_key="sekrit", max_body=10_000) as b:
        request = {"model": b.echo, "messages": [user("hello")]}
        async with official(kind, b, api_key="wrong", max_retries=0) as wrong:
            with pytest.raises(openai.AuthenticationError) as bad_key:
                await wrong.create(**request)
            assert bad_key.value.code == "invalid_api_key"
            with pytest.raises(openai.AuthenticationError):
                await wrong.models()
        async with official(kind, b, api_key="sekrit", max_retries=0) as oa:
            huge = {"model": b.echo, "messages": [user("x" * 20_000)]}
            with pytest.raises(openai.APIStatusError) as too_large:
                await oa.create(**huge)
            assert (too_large.value.status_code, too_large.value.code) == (
                413,
                "request_too_large",
            )
        rebind = {"Host": "evil.example"}  # a DNS-rebinding page's request
        async with official(
            kind, b, api_key="sekrit", max_retries=0, default_headers=rebind
        ) as rebound:
            with pytest.raises(openai.PermissionDeniedError) as foreign:
                await rebound.create(**request)
            assert foreign.value.code == "forbidden_host"
    refused = "0123456789abcdef" * 2 + "01234567"  # a token the emulator never minted
    async with (
        AsyncClient(refused, endpoints=Endpoints.local(emu.url)) as stranger,
        running(create_app(stranger, state=sqlite_url(tmp_path / "other"))) as url,
    ):
        other = dataclasses.replace(b, url=url)
        async with official(kind, other, max_retries=0) as oa:
            with pytest.raises(openai.AuthenticationError) as upstream:
                await oa.create(**request)
            assert upstream.value.code == "upstream_auth"
            assert refused not in str(upstream.value.body)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_client_timeout_is_api_timeout_error_and_the_reply_waits_for_the_retry(
    bridge: Bridge, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    # openai gives up after 0.2 s (APITimeoutError); the bridge reads the reply to its end
    # and keeps it as undelivered, so the same request again gets it: one c.ai turn.
    ops = Ops(caplog)
    async with official(kind, bridge, max_retries=0) as oa:
        messages = [*await _one_exchange(bridge, oa, "slow"), user("Slow one")]
        request = {"model": bridge.echo, "messages": messages}
        request["extra_headers"] = {"X-Session-Id": "slow"}
        ops()
        bridge.emu.faults.delay_frames(0.6)
        with pytest.raises(openai.APITimeoutError):
            await oa.create(**request, timeout=0.2)
        again = await oa.create(**request, timeout=10)
    assert ops() == ["stream", "history"]  # the second answer is read back, not made
    text = again.choices[0].message.content
    assert text is not None and text.startswith("Slow one")
    assert texts(await bridge.history())[3:] == [("user", ["Slow one"]), ("char", [text])]


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


# --- streams that fail --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", ["unknown chat", "filtered", "rate limited", "swipe dropped"])
async def test_a_stream_that_fails_before_its_first_frame_gets_a_real_status(
    bridge: Bridge, caplog: pytest.LogCaptureFixture, kind: str, case: str
) -> None:
    # No 200 is committed before the first upstream frame: the failure has a status of its
    # own, a JSON error body, and openai raises the class that status maps to.
    ops = Ops(caplog)
    retries = 2 if case == "swipe dropped" else 0  # (openai would wait out a 429's Retry-After)
    async with official(kind, bridge, max_retries=retries) as oa:
        messages = await _one_exchange(bridge, oa, "early")
        chat = (await bridge.client.chats.recent(bridge.echo))[0]
        before = texts(await bridge.history(chat.chat_id))
        ops()
        model, headers = bridge.echo, {"X-Session-Id": "early"}
        expected: tuple[type[openai.APIStatusError], int, str]
        if case == "unknown chat":
            model = f"{bridge.echo}:{'0' * 8}-0000-4000-8000-{'0' * 12}"
            messages.append(user("two"))
            expected = (openai.NotFoundError, 404, "model_not_found")
        elif case == "filtered":
            bridge.emu.filters.input_phrases = ["forbidden"]
            messages.append(user("something forbidden"))
            expected = (openai.BadRequestError, 400, "content_filter")
        elif case == "rate limited":
            bridge.emu.rate_limit(generations=0, per=60)
            messages.append(user("two"))
            expected = (openai.RateLimitError, 429, "rate_limit_exceeded")
        else:  # The first request again is a swipe; its socket dies before its first frame.
            del messages[1:]
            bridge.emu.faults.drop_after(0)
            expected = (openai.InternalServerError, 502, "upstream_unavailable")
        with pytest.raises(openai.APIStatusError) as caught:
            await oa.stream(model=model, messages=messages, extra_headers=headers)
        bridge.emu.rate_limit()
        bridge.emu.faults.clear()
    error = caught.value
    assert (type(error), error.status_code, error.code) == expected
    assert error.response.headers["Content-Type"].startswith("application/json")
    if case == "rate limited":
        assert int(error.response.headers["Retry-After"]) >= 1
    done = ops()
    if case == "swipe dropped":
        # c.ai was asked to regenerate: x-should-retry false, so openai (2 retries allowed)
        # did not repeat it.
        assert error.response.headers["x-should-retry"] == "false"
        assert done == ["regenerate"]
        after = texts(await bridge.history(chat.chat_id))
        assert after[:-1] == before[:-1] and before[-1][1][0] in after[-1][1]  # no new turn
    else:
        assert done == ([] if case == "unknown chat" else ["stream"])
        assert texts(await bridge.history(chat.chat_id)) == before  # nothing was added


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", ["send socket closed", "swipe socket dropped"])
async def test_an_upstream_failure_mid_stream_is_an_error_event_and_the_end(
    bridge: Bridge, caplog: pytest.LogCaptureFixture, kind: str, case: str
) -> None:
    ops = Ops(caplog)
    async with official(kind, bridge) as oa:
        messages = await _one_exchange(bridge, oa, "mid")
        chat = (await bridge.client.chats.recent(bridge.echo))[0]
        if case == "send socket closed":
            # 1009 (message too large) is a ServerError, never recovered nor re-sent.
            messages.append(user("two"))
            bridge.emu.faults.close_socket(1009, after_frames=3)
            expected = ("upstream_error", "stream")
        else:  # A swipe is not recovered after a drop (docs/reliability.md).
            del messages[1:]
            bridge.emu.faults.drop_after(3)
            expected = ("upstream_unavailable", "regenerate")
        ops()
        got: list[ChatCompletionChunk] = []
        with pytest.raises(openai.APIError) as caught:
            await oa.stream(
                into=got,
                model=bridge.echo,
                messages=messages,
                extra_headers={"X-Session-Id": "mid"},
            )
        assert not bridge.emu.faults.active  # (the fault was used)
        assert not isinstance(caught.value, openai.APIStatusError)  # the 200 was sent
        assert caught.value.code == expected[0]
        assert ops() == [expected[1]]
        assert got and got[0].choices[0].delta.role == "assistant"
        shown = streamed(got)
        assert shown  # some of the reply arrived before the error
        assert all(c.choices[0].finish_reason is None for c in got if c.choices)
        # The conversation is not stuck: the same request again answers (a new candidate
        # of the same turn, the chat read again first), and no user turn is doubled.
        again = await oa.create(
            model=bridge.echo, messages=messages, extra_headers={"X-Session-Id": "mid"}
        )
        assert ops() == ["history", "regenerate"]
    history = texts(await bridge.history(chat.chat_id))
    users = [text for who, text in history if who == "user"]
    assert users == ([["one"], ["two"]] if case == "send socket closed" else [["one"]])
    assert history[-1][1][0] == again.choices[0].message.content
    assert any(c.startswith(shown) for c in history[-1][1][1:])  # what broke off is kept


async def test_a_broken_off_stream_ends_with_the_error_event(bridge: Bridge) -> None:
    body = {"model": bridge.echo, "stream": True, "messages": [user("one")]}
    assert (await bridge.post(body, {"X-Session-Id": "raw"}))[0] == 200
    bridge.emu.faults.drop_after(3)  # the swipe's socket dies mid-reply
    status, headers, raw = await bridge.post(body, {"X-Session-Id": "raw"})
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    events = raw.decode().split("\n\n")
    assert events[-1] == ""  # the stream ends right after the error event
    assert b"[DONE]" not in raw and not any(e.startswith("event:") for e in events)
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert list(payloads[-1]) == ["error"]  # {"error": {...}} alone, in OpenAI's shape
    error = payloads[-1]["error"]
    assert error.pop("message")  # (the client's words for the drop)
    assert error == {"type": "api_error", "param": None, "code": "upstream_unavailable"}
    assert payloads[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(p["choices"][0]["finish_reason"] is None for p in payloads[:-1])


# --- the socket drops mid-reply -----------------------------------------------------------


# A send has six frames: the drop comes after the first, one inside, the last.
@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("frames", [0, 2, 5])
async def test_a_dropped_socket_mid_reply_is_recovered(
    bridge: Bridge, caplog: pytest.LogCaptureFixture, stream: bool, frames: int
) -> None:
    ops = Ops(caplog)
    async with official("async", bridge, max_retries=0) as oa:
        messages = [*await _one_exchange(bridge, oa, "drop"), user("two")]
        chat = (await bridge.client.chats.recent(bridge.echo))[0]
        recovered = bridge.client.stats.recovered_replies
        ops()
        bridge.emu.faults.drop_after(frames)
        request = {"model": bridge.echo, "messages": messages}
        request["extra_headers"] = {"X-Session-Id": "drop"}
        if stream:
            chunks = await oa.stream(**request)
            text = streamed(chunks)
            assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        else:
            reply = await oa.create(**request)
            text = reply.choices[0].message.content or ""
            assert reply.choices[0].finish_reason == "stop"
    assert not bridge.emu.faults.active  # the drop happened during this reply
    assert bridge.client.stats.recovered_replies == recovered + 1
    assert ops() == ["stream"]  # one send, nothing sent again
    history = texts(await bridge.history(chat.chat_id))
    assert [who for who, _ in history] == ["char", "user", "char", "user", "char"]
    assert history[3:] == [("user", ["two"]), ("char", [text])]  # one reply turn, as shown
    assert text.startswith("two")


# --- the model forms ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_model_character_chat_continues_a_chat_made_with_the_client(
    bridge: Bridge, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    ops = Ops(caplog)
    chat, _greeting = await bridge.client.chats.create(bridge.echo)
    made = await bridge.client.chats.send(chat, "Made with the library")
    assert made.primary is not None
    pinned = f"{bridge.echo}:{chat.chat_id}"
    messages = [user("Made with the library"), assistant(made.primary.raw_content)]
    async with official(kind, bridge) as oa:
        retrieved = await oa.model(pinned)
        assert (retrieved.id, getattr(retrieved, "name", None)) == (pinned, "Echo")
        ops()
        reply = await oa.create(model=pinned, messages=[*messages, user("From openai")])
        assert reply.model == pinned
        assert ops() == ["history", "stream"]  # adopted: read once, then continued
        first = reply.choices[0].message.content
        assert first is not None and first.startswith("From openai")
        messages += [user("From openai"), assistant(first), user("And again")]
        chunks = await oa.stream(model=pinned, messages=messages)
        assert ops() == ["stream"]
    history = texts(await bridge.history(chat.chat_id))
    assert history[1:] == [
        ("user", ["Made with the library"]),
        ("char", [made.primary.raw_content]),
        ("user", ["From openai"]),
        ("char", [first]),
        ("user", ["And again"]),
        ("char", [streamed(chunks)]),
    ]
    assert [c.chat_id for c in await bridge.client.chats.recent(bridge.echo)] == [chat.chat_id]


async def test_model_character_chat_sends_only_the_last_message_of_a_foreign_dialogue(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    # docs/bridge.md, "Model names": a front-end dialogue that matches nothing of the pinned
    # chat adds only its last message; its earlier exchanges are not written into the chat.
    ops = Ops(caplog)
    chat, _greeting = await bridge.client.chats.create(bridge.echo)
    made = await bridge.client.chats.send(chat, "Earlier, in c.ai")
    before = texts(await bridge.history(chat.chat_id))
    ops()
    foreign = [user("Something else"), assistant("A reply c.ai never gave"), user("Only this")]
    status, headers, raw = await bridge.post(
        {"model": f"{bridge.echo}:{chat.chat_id}", "messages": foreign}
    )
    assert status == 200
    assert headers["X-Bridge-Action"] == "adopt+new_turn"
    assert ops() == ["history", "stream"]
    answer = json.loads(raw)["choices"][0]["message"]["content"]
    assert texts(await bridge.history(chat.chat_id)) == [
        *before,
        ("user", ["Only this"]),
        ("char", [answer]),
    ]
    assert made.primary is not None and answer.startswith("Only this")


async def test_model_character_chat_of_another_character_is_not_found(bridge: Bridge) -> None:
    chat, _ = await bridge.client.chats.create(bridge.emu.character("Sage").id)
    async with official("async", bridge, max_retries=0) as oa:
        for model in (f"{bridge.echo}:{chat.chat_id}", f"{bridge.echo}:not-a-chat"):
            with pytest.raises(openai.NotFoundError) as caught:
                await oa.create(model=model, messages=[user("hello")])
            assert (caught.value.code, caught.value.param) == ("model_not_found", "model")
            with pytest.raises(openai.NotFoundError):
                await oa.model(model)
    assert [who for who, _ in texts(await bridge.history(chat.chat_id))] == ["char"]  # untouched


@pytest.mark.parametrize("kind", KINDS)
async def test_model_character_new_starts_a_chat_of_its_own(
    bridge: Bridge, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    # An existing c.ai chat with the same opening is never taken over: ':new' (like the
    # plain id) creates the bridge's own chat, and continues that one.
    ops = Ops(caplog)
    theirs, _ = await bridge.client.chats.create(bridge.echo)
    await bridge.client.chats.send(theirs, "Hi")
    untouched = texts(await bridge.history(theirs.chat_id))
    ops()
    async with official(kind, bridge) as oa:
        first = await oa.create(model=f"{bridge.echo}:new", messages=[user("Hi")])
        assert ops() == ["create", "stream"]
        text = first.choices[0].message.content
        assert text is not None
        follow = [user("Hi"), assistant(text), user("More")]
        second = await oa.create(model=f"{bridge.echo}:new", messages=follow)
        assert ops() == ["stream"]  # the bridge's own chat goes on
        third = await oa.create(model=bridge.echo, messages=[*follow[:2], user("More")])
        assert ops() == ["regenerate"]  # the plain id is the same conversation: a swipe
    chats = [c.chat_id for c in await bridge.client.chats.recent(bridge.echo)]
    assert len(chats) == 2 and theirs.chat_id in chats
    [ours] = [c for c in chats if c != theirs.chat_id]
    assert texts(await bridge.history(theirs.chat_id)) == untouched
    history = texts(await bridge.history(ours))
    assert history[1:] == [
        ("user", ["Hi"]),
        ("char", [text]),
        ("user", ["More"]),
        ("char", [third.choices[0].message.content, second.choices[0].message.content]),
    ]


@pytest.mark.parametrize("kind", KINDS)
async def test_model_character_oneshot_is_stateless(
    bridge: Bridge, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    # The character's scratch chat answers, and its turns are deleted after each answer:
    # the same request twice is two fresh answers (never a swipe), no conversation is kept.
    ops = Ops(caplog)
    oneshot = f"{bridge.echo}:oneshot"
    messages = [
        {"role": "system", "content": "Summarise."},
        user("Title this"),
        assistant("a reply"),
        user("Now"),
    ]
    async with official(kind, bridge) as oa:
        whole = await oa.create(model=oneshot, messages=messages)
        assert ops() == ["create", "stream", "delete"]  # the scratch chat, made once
        chunks = await oa.stream(model=oneshot, messages=messages)
        assert ops() == ["stream", "delete"]
    for text in (whole.choices[0].message.content, streamed(chunks)):
        assert text is not None
        assert text.startswith("Title this\n\na reply\n\nNow")  # the dialogue, system aside
    assert whole.choices[0].message.content != streamed(chunks)
    [scratch] = await bridge.client.chats.recent(bridge.echo)
    assert await bridge.client.chats.history(scratch.chat_id) == []


async def test_model_character_chat_gets_no_system_text_with_the_first_message_policy(
    emu: Emulator, tmp_path: Path
) -> None:
    # system="first_message" puts the system text before the first message sent into a new
    # chat; a pinned chat is the user's own, not new: its next message goes in as it is.
    config = BridgeConfig(system="first_message")
    async with bridge_on(emu, sqlite_url(tmp_path), config=config) as b:
        chat, _greeting = await b.client.chats.create(b.echo)
        made = await b.client.chats.send(chat, "Earlier")
        assert made.primary is not None
        messages = [
            {"role": "system", "content": "The card's description."},
            user("Earlier"),
            assistant(made.primary.raw_content),
            user("Next"),
        ]
        async with official("async", b) as oa:
            reply = await oa.create(model=f"{b.echo}:{chat.chat_id}", messages=messages)
        history = texts(await b.history(chat.chat_id))
    assert history[-2:] == [("user", ["Next"]), ("char", [reply.choices[0].message.content])]
