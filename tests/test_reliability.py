"""Reliability: every fault the emulator can inject, and the client keeps its promises.

The client must lose no reply the server completed, deliver each exactly once to the right
caller, never hang, and name what it cannot fix with a typed error.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from caiclient import (
    AsyncClient,
    BlockedError,
    Chat,
    ClientClosed,
    Endpoints,
    RateLimited,
    ServerError,
    Timeout,
)
from caiclient.emulator import Emulator

FRAMES_PER_REPLY = 6  # user echo + bot add_turn + 4 update_turn (chunks=5)


async def _echo_chat(emu: Emulator, client: AsyncClient) -> Chat:
    chat, _ = await client.chats.create(emu.character("Echo").id, greeting=False)
    return chat


async def _assert_once(client: AsyncClient, chat: Chat, text: str) -> None:
    """The message is in the history exactly once, followed by exactly one reply."""
    history = await client.chats.history(chat)
    humans = [i for i, t in enumerate(history) if t.is_human and t.text == text]
    assert len(humans) == 1, [t.text for t in history]
    after = history[humans[0] + 1 :]
    assert after, "no reply stored"
    assert not after[0].is_human
    assert after[0].text.startswith(text)


@pytest.mark.parametrize("frames", range(FRAMES_PER_REPLY))
async def test_drop_mid_reply_is_recovered(emu: Emulator, client: AsyncClient, frames: int) -> None:
    chat = await _echo_chat(emu, client)
    emu.faults.drop_after(frames)
    text = f"dropped after {frames} frames"
    reply = await client.chats.send(chat, text, timeout=10)
    assert reply.text.startswith(text)
    assert reply.is_final
    assert client.stats.recovered_replies == 1
    assert client.stats.resent_messages == 0
    await _assert_once(client, chat, text)


@pytest.mark.parametrize("frames", [1, 2, 4])
async def test_stream_resumes_without_repeating_text(
    emu: Emulator, client: AsyncClient, frames: int
) -> None:
    emu.chunk_delay = 0.01
    chat = await _echo_chat(emu, client)
    emu.faults.drop_after(frames)
    text = "a stream that loses its socket"
    chunks = [c async for c in client.chats.stream(chat, text, timeout=10)]
    assert chunks[-1].final
    assert "".join(c.delta for c in chunks) == chunks[-1].text
    assert chunks[-1].text.startswith(text)
    assert not any(c.rewritten for c in chunks)


async def test_message_lost_on_the_way_is_sent_again_once(
    emu: Emulator, client: AsyncClient
) -> None:
    chat = await _echo_chat(emu, client)
    emu.faults.drop_on_request()
    reply = await client.chats.send(chat, "did you get this?", timeout=10)
    assert reply.text.startswith("did you get this?")
    assert client.stats.resent_messages == 1
    await _assert_once(client, chat, "did you get this?")


@pytest.mark.parametrize("code", [1000, 1001, 1011, 4000])
async def test_close_codes_mid_reply_are_recovered(
    emu: Emulator, client: AsyncClient, code: int
) -> None:
    chat = await _echo_chat(emu, client)
    emu.faults.close_socket(code, after_frames=2)
    reply = await client.chats.send(chat, f"closed with {code}", timeout=10)
    assert reply.text.startswith(f"closed with {code}")
    await _assert_once(client, chat, f"closed with {code}")


async def test_reconnects_after_a_drop_between_requests(emu: Emulator, client: AsyncClient) -> None:
    chat = await _echo_chat(emu, client)
    emu.faults.drop_after(0)
    await client.chats.send(chat, "first", timeout=10)
    await client.chats.send(chat, "second", timeout=10)
    assert client._core.socket.connects >= 2
    await _assert_once(client, chat, "second")


async def test_delayed_frames_past_the_deadline_time_out_and_the_client_recovers(
    emu: Emulator, client: AsyncClient
) -> None:
    chat = await _echo_chat(emu, client)
    emu.faults.delay_frames(1.0, frames=1)
    with pytest.raises(Timeout):
        await client.chats.send(chat, "too slow", timeout=0.3)
    reply = await client.chats.send(chat, "on time", timeout=10)
    assert reply.text.startswith("on time")


async def test_malformed_frames_are_skipped(emu: Emulator, client: AsyncClient) -> None:
    chat = await _echo_chat(emu, client)
    emu.faults.malformed_frame(times=3)
    reply = await client.chats.send(chat, "through the noise", timeout=10)
    assert reply.text.startswith("through the noise")


async def test_cloudflare_on_the_socket_upgrade_is_blocked_not_auth(emu: Emulator) -> None:
    emu.faults.cloudflare(rest=False, websocket=True)
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        with pytest.raises(BlockedError):
            await client.chats.create(emu.character("Echo").id)


async def test_rate_limit_on_the_socket_carries_retry_after(
    emu: Emulator, client: AsyncClient
) -> None:
    chat = await _echo_chat(emu, client)
    emu.rate_limit(generations=1, per=30)
    await client.chats.send(chat, "one is fine")
    with pytest.raises(RateLimited) as limited:
        await client.chats.send(chat, "two is too many")
    assert limited.value.retry_after is not None
    assert 0 < limited.value.retry_after <= 30


async def test_opt_in_wait_on_rate_limit(emu: Emulator) -> None:
    emu.rate_limit(generations=1, per=1)
    async with AsyncClient(
        emu.token, endpoints=Endpoints.local(emu.url), rate_limit_wait=5
    ) as client:
        chat = await _echo_chat(emu, client)
        await client.chats.send(chat, "first")
        reply = await client.chats.send(chat, "second, after waiting", timeout=10)
    assert reply.text.startswith("second, after waiting")


async def test_non_idempotent_rest_calls_are_not_retried(
    emu: Emulator, client: AsyncClient
) -> None:
    emu.faults.http_status(503, times=1, path_prefix="/plus/chat/persona/create")
    with pytest.raises(ServerError):
        await client.personas.create("Retry Me", "a definition")
    assert [p.name for p in await client.personas.list()] == []
    created = await client.personas.create("Retry Me", "a definition")
    assert created.name == "Retry Me"


async def test_close_fails_in_flight_requests_and_leaves_nothing_running(emu: Emulator) -> None:
    emu.chunk_delay = 0.2
    client = AsyncClient(emu.token, endpoints=Endpoints.local(emu.url))
    chat = await _echo_chat(emu, client)
    task = asyncio.create_task(client.chats.send(chat, "never finished", timeout=30))
    for _ in range(1000):  # until the request is on the wire (bounded)
        if client._core.socket.in_flight:
            break
        await asyncio.sleep(0.005)
    await client.aclose()
    with pytest.raises(ClientClosed):
        await asyncio.wait_for(task, 5)
    leftovers = [
        t
        for t in asyncio.all_tasks()
        if t is not asyncio.current_task() and "caiclient" in t.get_name()
    ]
    assert leftovers == []


async def test_token_never_reaches_logs_or_errors(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        chat = await _echo_chat(emu, client)
        emu.faults.drop_after(2)
        await client.chats.send(chat, "with a drop", timeout=10)
        emu.faults.http_status(503, times=1)
        await client.account.me()
        emu.faults.cloudflare(rest=True, websocket=False)
        try:
            await client.account.me()
        except BlockedError as exc:
            errors += [str(exc), repr(exc)]
        errors.append(repr(client))
    async with AsyncClient("0" * 40, endpoints=Endpoints.local(emu.url)) as bad:
        try:
            await bad.chats.create(emu.character("Echo").id)
        except Exception as exc:  # we only look at the text
            errors += [str(exc), repr(exc)]
    text = "\n".join(errors + [r.getMessage() for r in caplog.records])
    assert caplog.records  # the run did log
    assert emu.token not in text
    assert "0" * 40 not in text


async def test_first_chunk_timeout_is_separate_from_the_total(emu: Emulator) -> None:
    async with AsyncClient(
        emu.token, endpoints=Endpoints.local(emu.url), first_chunk_timeout=0.3
    ) as client:
        chat = await _echo_chat(emu, client)
        emu.faults.delay_frames(1.0, frames=1)
        started = asyncio.get_running_loop().time()
        with pytest.raises(Timeout):
            await client.chats.send(chat, "first frame is late", timeout=10)
        assert asyncio.get_running_loop().time() - started < 1.0
        # A slow but steady reply is fine: only the first frame has the tight deadline.
        emu.chunk_delay = 0.1
        other = await _echo_chat(emu, client)  # the first chat is still busy server-side
        reply = await client.chats.send(other, "slow and steady", timeout=10)
        assert reply.text.startswith("slow and steady")
