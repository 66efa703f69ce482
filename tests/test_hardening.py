"""Tier 2: regression tests for the defects an adversarial review of the client found
(issue 10). Each test is named after its defect number and fails on the code before the fix.
Servers are scripted fakes on loopback (tests/fake_neo.py) or the in-memory MockTransport.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import pytest
from aiohttp import web

from caiclient import (
    AsyncClient,
    Chat,
    Client,
    ClientClosed,
    Disconnected,
    Endpoints,
    ProtocolError,
    RateLimited,
    ServerError,
    Timeout,
    UsageError,
    ValidationError,
)
from caiclient._config import MAX_TEXT_BYTES
from caiclient._deadline import Deadline
from caiclient._locks import KeyedLocks
from caiclient.protocol.http import Request, Response
from caiclient.transports import AiohttpTransport, CurlTransport, MockTransport
from fake_neo import TOKEN, USER, Counts, bot_turn, client_for, fake_neo

CHAT = Chat(chat_id="chat-1", character_id="bot")


async def reply(ws: web.WebSocketResponse, frame: dict[str, Any], text: str = "Hi") -> None:
    """Answer a create_and_generate_turn with a complete one-frame reply."""
    await ws.send_str(
        json.dumps(
            {
                "command": "update_turn",
                "request_id": frame["request_id"],
                "turn": bot_turn(frame, text, final=True),
            }
        )
    )


async def silent(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
    return


# --- 1. reconnect storm -------------------------------------------------------------------------


async def test_defect_01_a_socket_that_closes_at_once_is_reopened_with_backoff() -> None:
    counts = Counts()

    async def close_at_once(ws: web.WebSocketResponse) -> bool:
        await ws.close(code=1013)  # "try again later", as during a deploy
        return False

    async with (
        fake_neo(silent, on_open=close_at_once, counts=counts) as (origin, _),
        client_for(origin) as client,
    ):
        with pytest.raises((Disconnected, Timeout)):
            await client.chats.send(CHAT, "anyone?", timeout=3)
        pending = counts.upgrades
        # Before the fix: ~600-1,300 upgrades a second for 3 s. Now the backoff
        # (0.25 s doubling) allows a handful.
        assert 2 <= pending <= 8
        # Nothing pending any more: no reconnecting in the background at all.
        await asyncio.sleep(1.0)
        assert counts.upgrades == pending
        # History reads between re-send cycles are paced by the same backoff.
        assert counts.history_reads <= 3 * pending


# --- 2. keepalive ping-pong ---------------------------------------------------------------------


async def test_defect_02_an_echoing_server_cannot_start_an_endless_keepalive_exchange() -> None:
    counts = Counts()
    sent_by_server = 0

    async def echo(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        nonlocal sent_by_server
        sent_by_server += 1
        await ws.send_str("{}")

    async with (
        fake_neo(silent, on_keepalive=echo, counts=counts) as (origin, _),
        client_for(origin, idle_timeout=1.0) as client,
    ):
        # A waiting request makes the watchdog probe the silent socket.
        task = asyncio.create_task(client.chats.send(CHAT, "hello?", timeout=3))
        await asyncio.sleep(2.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # Before the fix: ~7,000 frames a second. Now one probe per half idle period at most,
    # and an echo of ours is never answered.
    assert 1 <= counts.keepalives <= 5
    assert sent_by_server == counts.keepalives


async def test_defect_02_server_pings_are_answered_but_at_most_every_few_seconds() -> None:
    counts = Counts()

    async def ping_storm(ws: web.WebSocketResponse) -> bool:
        async def pings() -> None:
            for _ in range(20):
                await ws.send_str("{}")
                await asyncio.sleep(0.05)

        asyncio.get_running_loop().create_task(pings())
        return True

    async with (
        fake_neo(reply, on_open=ping_storm, counts=counts) as (origin, _),
        client_for(origin) as client,
    ):
        assert (await client.chats.send(CHAT, "hi", timeout=5)).text == "Hi"
        await asyncio.sleep(1.2)
    assert counts.keepalives == 1  # 20 pings in 1 s: answered once


async def test_ping_measures_a_round_trip() -> None:
    async def answer(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        await ws.send_str("{}")

    async with fake_neo(silent, on_keepalive=answer) as (origin, _), client_for(origin) as client:
        rtt = await client.ping(timeout=5)
        assert 0 <= rtt < 5
    async with fake_neo(silent) as (origin, _), client_for(origin) as client:
        with pytest.raises(Timeout):
            await client.ping(timeout=0.5)


# --- 3. lock waits end at the call's deadline ---------------------------------------------------


async def test_defect_03_a_send_behind_a_slow_send_ends_at_its_own_deadline() -> None:
    async def slow(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        await asyncio.sleep(4)
        await reply(ws, frame)

    async with fake_neo(slow) as (origin, _), client_for(origin) as client:
        first = asyncio.create_task(client.chats.send(CHAT, "slow", timeout=10))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(Timeout):
            await client.chats.send(CHAT, "behind it", timeout=1)
        assert time.monotonic() - started < 2.5  # before the fix: 6.8 s
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first


async def test_defect_03_an_abandoned_stream_does_not_block_its_chat_forever() -> None:
    async def two_chunks(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        rid = frame["request_id"]
        first = {
            "command": "add_turn",
            "request_id": rid,
            "turn": bot_turn(frame, "A", final=False),
        }
        await ws.send_str(json.dumps(first))
        if frame["payload"]["turn"]["candidates"][0]["raw_content"] != "abandoned":
            await reply(ws, frame, "AB")

    async with fake_neo(two_chunks) as (origin, _), client_for(origin) as client:
        stream = client.chats.stream(CHAT, "abandoned", timeout=1)
        async for _chunk in stream:
            break  # broken out of, never closed, still referenced
        started = time.monotonic()
        turn = await client.chats.send(CHAT, "next", timeout=5)
        assert turn.text == "AB"
        assert time.monotonic() - started < 2.5  # freed at the stream's own deadline
        assert client._core.socket.in_flight == 0
        await stream.aclose()  # type: ignore[attr-defined]


async def test_defect_03_a_slow_user_lookup_does_not_hold_back_other_calls() -> None:
    async def slow_user(request: web.Request) -> web.Response:
        await asyncio.sleep(4)
        return web.json_response(USER)

    app = web.Application()
    app.router.add_get("/plus/chat/user/", slow_user)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    origin = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with client_for(origin) as client:
            first = asyncio.create_task(client.chats.send(CHAT, "a", timeout=10))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            other = Chat(chat_id="chat-2", character_id="bot")
            with pytest.raises(Timeout):
                await client.chats.send(other, "b", timeout=1)
            assert time.monotonic() - started < 2.5  # before the fix: 4.9 s
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
    finally:
        await runner.cleanup()


def test_defect_03_sync_abandoned_stream_does_not_block_its_chat_forever() -> None:
    async def two_chunks(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        rid = frame["request_id"]
        first = {
            "command": "add_turn",
            "request_id": rid,
            "turn": bot_turn(frame, "A", final=False),
        }
        await ws.send_str(json.dumps(first))
        if frame["payload"]["turn"]["candidates"][0]["raw_content"] != "abandoned":
            await reply(ws, frame, "AB")

    ready = threading.Event()
    stop = threading.Event()
    origin_box: list[str] = []

    def serve() -> None:
        async def main() -> None:
            async with fake_neo(two_chunks) as (origin, _):
                origin_box.append(origin)
                ready.set()
                await asyncio.to_thread(stop.wait)

        asyncio.run(main())

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    assert ready.wait(10)
    try:
        with Client(TOKEN, endpoints=Endpoints.local(origin_box[0])) as client:
            stream = client.chats.stream(CHAT, "abandoned", timeout=1)
            next(iter(stream))  # one chunk, then abandoned (still referenced)
            started = time.monotonic()
            assert client.chats.send(CHAT, "next", timeout=5).text == "AB"
            assert time.monotonic() - started < 2.5
    finally:
        stop.set()
        server.join(10)


# --- 4. deeply nested JSON ----------------------------------------------------------------------


async def test_defect_04_deeply_nested_frames_do_not_kill_the_reader(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deep = '{"command": "add_turn", "request_id": "x", "turn": ' + "[" * 1000 + "]" * 1000 + "}"

    async def nested_then_reply(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        await ws.send_str(deep)
        await reply(ws, frame)

    async with fake_neo(nested_then_reply) as (origin, _), client_for(origin) as client:
        with caplog.at_level(logging.WARNING, logger="caiclient"):
            assert (await client.chats.send(CHAT, "hi", timeout=5)).text == "Hi"
        assert client._core.socket.connects == 1  # the same socket, the same reader
    assert any("nested too deeply" in r.getMessage() for r in caplog.records)


async def test_defect_04_deeply_nested_rest_bodies_are_a_protocol_error() -> None:
    deep = b'{"user": {"x": ' + b"[" * 1000 + b"]" * 1000 + b"}}"
    transport = MockTransport(lambda request: Response(200, {}, deep))
    async with AsyncClient(TOKEN, transport=transport) as client:
        with pytest.raises(ProtocolError, match="nested too deeply"):
            await client.account.me()


async def test_defect_04_a_reader_failure_closes_its_socket_and_the_client_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import caiclient._neo_socket as neo_socket

    real = neo_socket.parse_frame
    calls = 0

    def broken_once(data: str | bytes) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug in frame handling")
        return real(data)

    monkeypatch.setattr(neo_socket, "parse_frame", broken_once)
    async with fake_neo(reply) as (origin, _), client_for(origin) as client:
        # The first frame trips the bug: that socket is closed and the call fails as a
        # drop (this fake keeps no replies to recover), typed and on time.
        with caplog.at_level(logging.ERROR, logger="caiclient"), pytest.raises(Disconnected):
            await client.chats.send(CHAT, "hi", timeout=2)
        assert client._core.socket.in_flight == 0
        # The reader goes on: the next call opens a new socket and works.
        assert (await client.chats.send(CHAT, "again", timeout=5)).text == "Hi"
        assert client._core.socket.connects == 2
    assert any("reader failed" in r.getMessage() for r in caplog.records)


# --- 5. cancel race in the chat lock ------------------------------------------------------------


async def test_defect_05_cancelling_a_lock_wait_as_the_lock_is_released_is_clean() -> None:
    locks = KeyedLocks()
    loop = asyncio.get_running_loop()
    unexpected: list[BaseException] = []
    for _ in range(3000):
        holder = await locks.acquire("chat", Deadline.after(5))
        waiter = asyncio.create_task(asyncio.wait_for(locks.acquire("chat", Deadline.after(5)), 5))
        await asyncio.sleep(0)  # the waiter is queued
        loop.call_soon(holder.release)
        loop.call_soon(waiter.cancel)  # in the very tick the holder releases
        try:
            lease = await waiter
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            unexpected.append(exc)
        else:
            lease.release()
        assert not locks.held("chat"), "the lock must be free after every round"
    assert unexpected == []  # before the fix: ValueError ... is not in deque, 17-43 times


async def test_lock_waits_time_out_and_stay_fair() -> None:
    locks = KeyedLocks()
    holder = await locks.acquire("c", Deadline.after(5))
    with pytest.raises(Timeout):
        await locks.acquire("c", Deadline.after(0.05))
    order: list[int] = []

    async def take(n: int) -> None:
        lease = await locks.acquire("c", Deadline.after(5))
        order.append(n)
        lease.release()

    tasks = [asyncio.create_task(take(n)) for n in range(5)]
    await asyncio.sleep(0)
    holder.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4] and not locks.held("c")


# --- 6. re-send loops ---------------------------------------------------------------------------


async def test_defect_06_a_zero_retry_after_is_waited_with_a_floor_and_a_cap() -> None:
    async def limited(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        error = {
            "command": "neo_error",
            "request_id": frame["request_id"],
            "comment": "rate limited",
            "error_code": 429,
            "retry_after_seconds": 0,
        }
        await ws.send_str(json.dumps(error))

    async with (
        fake_neo(limited) as (origin, received),
        client_for(origin, rate_limit_wait=30) as client,
    ):
        with pytest.raises(RateLimited):  # before the fix: ~4,300 re-sends/s, then Timeout
            await client.chats.send(CHAT, "hi", timeout=20)
    sends = [f for f in received if json.loads(f).get("command") == "create_and_generate_turn"]
    assert len(sends) == 4  # the first send and three waits of 1 s


async def test_defect_06_a_message_too_large_is_refused_before_any_io() -> None:
    transport = MockTransport()
    async with AsyncClient(TOKEN, transport=transport) as client:
        with pytest.raises(ValidationError, match="limit"):
            await client.chats.send(CHAT, "x" * (MAX_TEXT_BYTES + 1))
        with pytest.raises(ValidationError, match="limit"):
            client.chats.stream(CHAT, '"' * (MAX_TEXT_BYTES // 2 + 1))  # escaping doubles it
    assert transport.sent == [] and transport.sockets == []


async def test_defect_06_a_1009_close_is_not_answered_by_sending_the_frame_again() -> None:
    async with (
        fake_neo(reply, max_msg_size=4096) as (origin, received),
        client_for(origin) as client,
    ):
        with pytest.raises(ServerError, match="too large") as caught:
            await client.chats.send(CHAT, "x" * 10_000, timeout=10)
        assert caught.value.status == 1009
        assert received == []  # the server refused the frame; nothing was re-sent
        assert (await client.chats.send(CHAT, "small", timeout=5)).text == "Hi"


# --- 7. untyped errors from bad arguments -------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": None},
        {"timeout": "5"},
        {"timeout": float("inf")},
        {"timeout": 1e300},
        {"timeout": -1},
        {"idle_timeout": None},
        {"idle_timeout": 0},
        {"rate_limit_wait": -1},
        {"rate_limit_wait": "60"},
        {"rate_limit_wait": float("nan")},
        {"first_chunk_timeout": 0},
        {"retry": "often"},
        {"reconnect": 3},
    ],
)
def test_defect_07_bad_client_options_are_validation_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AsyncClient(TOKEN, **kwargs)
    with pytest.raises(ValidationError):
        Client(TOKEN, **kwargs)


@pytest.mark.parametrize("timeout", ["5", float("inf"), 1e300, 0, -2, True])
async def test_defect_07_bad_per_call_timeouts_are_validation_errors(timeout: Any) -> None:
    transport = MockTransport()
    async with AsyncClient(TOKEN, transport=transport) as client:
        with pytest.raises(ValidationError):
            await client.chats.send(CHAT, "hi", timeout=timeout)
        with pytest.raises(ValidationError):
            await client.account.me(timeout=timeout)
        with pytest.raises(ValidationError):
            client.chats.stream(CHAT, "hi", timeout=timeout)
    assert transport.sent == []


async def test_defect_07_lone_surrogates_are_refused_before_any_io() -> None:
    transport = MockTransport()
    async with AsyncClient(TOKEN, transport=transport) as client:
        with pytest.raises(ValidationError, match="surrogate"):
            await client.chats.send(CHAT, "relayed \ud83d text")
        with pytest.raises(ValidationError, match="surrogate"):
            await client.chats.rename(CHAT, "name \udc80")
    assert transport.sent == []


@pytest.mark.parametrize("token", ["tökén" + "0" * 36, "abc\x00def", "abc\ndef", "a b"])
def test_defect_07_and_12_odd_tokens_are_refused_without_echoing_them(token: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AsyncClient(token)
    assert token not in str(caught.value)


# --- 10. history with a repeated cursor ---------------------------------------------------------


async def test_defect_10_history_stops_when_the_server_repeats_its_cursor() -> None:
    page = {
        "turns": [
            {
                "turn_key": {"chat_id": "chat-1", "turn_id": "t"},
                "author": {"author_id": "1", "is_human": True},
                "candidates": [{"candidate_id": "k", "raw_content": "x", "is_final": True}],
            }
        ],
        "meta": {"next_token": "same-again"},
    }
    transport = MockTransport(lambda request: Response(200, {}, json.dumps(page).encode()))
    async with AsyncClient(TOKEN, transport=transport) as client:
        with pytest.raises(ProtocolError, match="repeated"):
            await client.chats.history(CHAT)
    assert len(transport.sent) == 2  # before the fix: 1,100 pages a second, forever


async def test_defect_10_history_is_bounded_as_a_whole() -> None:
    pages = 0

    async def slow_pages(request: Request) -> Response:
        nonlocal pages
        pages += 1
        await asyncio.sleep(0.2)
        body = {"turns": [], "meta": {"next_token": f"t{pages}"}}
        body["turns"] = [
            {
                "turn_key": {"chat_id": "chat-1", "turn_id": f"t{pages}"},
                "author": {"author_id": "1"},
                "candidates": [{"candidate_id": "k", "is_final": True}],
            }
        ]
        return Response(200, {}, json.dumps(body).encode())

    async with AsyncClient(TOKEN, transport=MockTransport(slow_pages)) as client:
        with pytest.raises(Timeout):
            await client.chats.history(CHAT, timeout=1)
    assert pages <= 6


# --- 11. REST bodies have a size cap -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["curl", "aiohttp"])
async def test_defect_11_rest_bodies_are_capped(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import caiclient._transport.aiohttp as aiohttp_transport
    import caiclient._transport.curl as curl_transport

    for module in (curl_transport, aiohttp_transport):
        monkeypatch.setattr(module, "MAX_RESPONSE_BODY", 1 << 20)

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (3 << 20), content_type="application/json")

    app = web.Application()
    app.router.add_get("/plus/chat/user/", big)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    origin = f"http://127.0.0.1:{runner.addresses[0][1]}"
    transport = CurlTransport(impersonate=None) if kind == "curl" else AiohttpTransport()
    try:
        async with AsyncClient(TOKEN, endpoints=Endpoints.local(origin), transport=transport) as c:
            with pytest.raises(ProtocolError, match="larger than"):
                await c.account.me()
    finally:
        await runner.cleanup()


# --- 12. validation gaps ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [".", "..", "a/b", "tab\there", "nul\x00", "bell\x07"])
async def test_defect_12_ids_that_would_change_the_url_are_refused(bad: str) -> None:
    transport = MockTransport()
    async with AsyncClient(TOKEN, transport=transport) as client:
        with pytest.raises(ValidationError):
            await client.chats.get(bad)
        with pytest.raises(ValidationError):
            await client.chats.send(Chat(chat_id=bad, character_id="bot"), "hi")
        with pytest.raises(ValidationError):
            await client.chats.send(Chat(chat_id="c", character_id=bad), "hi")
    assert transport.sent == []


# --- 13. close frames are not messages ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["curl", "aiohttp"])
async def test_defect_13_a_clean_close_is_a_close_not_a_malformed_frame(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def reply_then_close(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        await reply(ws, frame)
        await ws.close(code=4000, message=b"bye")

    transport = CurlTransport(impersonate=None) if kind == "curl" else AiohttpTransport()
    async with fake_neo(reply_then_close) as (origin, _):
        client = AsyncClient(TOKEN, endpoints=Endpoints.local(origin), transport=transport)
        async with client:
            with caplog.at_level(logging.INFO, logger="caiclient"):
                await client.chats.send(CHAT, "hi", timeout=5)
                for _ in range(200):
                    if client._core.socket.drops:
                        break
                    await asyncio.sleep(0.01)
    messages = [r.getMessage() for r in caplog.records]
    assert not any("does not understand" in m for m in messages)
    assert any("code 4000" in m for m in messages)


# --- 14. lifecycle edges ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["curl", "aiohttp", "mock"])
async def test_defect_14_a_closed_client_refuses_calls_with_a_typed_error(kind: str) -> None:
    transports = {
        "curl": lambda: CurlTransport(impersonate=None),
        "aiohttp": AiohttpTransport,
        "mock": lambda: MockTransport(lambda request: Response(200, {}, json.dumps(USER).encode())),
    }
    transport = transports[kind]()
    client = AsyncClient(
        TOKEN, endpoints=Endpoints.local("http://127.0.0.1:9"), transport=transport
    )
    await client.aclose()
    with pytest.raises(ClientClosed):
        await client.account.me()
    with pytest.raises(ClientClosed):
        await client.chats.send(CHAT, "hi")
    # The transport itself refuses too: no new session is made behind the client's back.
    with pytest.raises(ClientClosed):
        await transport.request(Request("GET", "http://127.0.0.1:9/"), headers={}, timeout=1)


def test_defect_14_the_sync_client_after_close_raises_client_closed() -> None:
    client = Client(TOKEN, transport=MockTransport())
    client.close()
    with pytest.raises(ClientClosed):
        client.account.me()
    assert isinstance(ClientClosed("x"), UsageError)


async def test_defect_14_a_client_used_from_a_second_event_loop_says_so() -> None:
    transport = MockTransport(lambda request: Response(200, {}, json.dumps(USER).encode()))
    client = AsyncClient(TOKEN, transport=transport)
    await client.account.me()

    def other_loop() -> BaseException | None:
        async def use() -> None:
            await client.account.me()

        try:
            asyncio.run(use())
        except BaseException as exc:
            return exc
        return None

    error = await asyncio.to_thread(other_loop)
    assert isinstance(error, UsageError) and "event loop" in str(error)
    await client.aclose()


async def test_defect_14_closing_curl_mid_request_is_never_reported_as_http_0() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response(USER)

    app = web.Application()
    app.router.add_get("/plus/chat/user/", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    origin = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        transport = CurlTransport(impersonate=None)
        client = AsyncClient(TOKEN, endpoints=Endpoints.local(origin), transport=transport)
        call = asyncio.create_task(client.account.me(timeout=5))
        await asyncio.sleep(0.3)
        await client.aclose()
        with pytest.raises((ClientClosed, Disconnected, Timeout, ServerError)) as caught:
            await call
        assert "HTTP 0" not in str(caught.value)
        assert not isinstance(caught.value, ServerError)
    finally:
        await runner.cleanup()


# --- 17. frame sizes agree across transports ----------------------------------------------------


@pytest.mark.parametrize("kind", ["curl", "aiohttp"])
async def test_defect_17_a_5_mib_reply_frame_arrives_on_both_transports(kind: str) -> None:
    async def huge(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        await reply(ws, frame, "x" * (5 << 20))

    transport = CurlTransport(impersonate=None) if kind == "curl" else AiohttpTransport()
    async with fake_neo(huge) as (origin, _):
        client = AsyncClient(TOKEN, endpoints=Endpoints.local(origin), transport=transport)
        async with client:
            turn = await client.chats.send(CHAT, "big one", timeout=20)
            assert len(turn.text) == 5 << 20
            assert client._core.socket.connects == 1  # before: a forced reconnect (curl)
