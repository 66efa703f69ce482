"""``client.v1`` (legacy Chat V1) end to end against the emulator."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import Any

import aiohttp
import pytest

from caiclient import AsyncClient, Endpoints, auth
from caiclient.emulator import Emulator
from caiclient.emulator import v1 as emu_v1
from caiclient.errors import (
    CharacterNotFound,
    Filtered,
    HistoryNotFound,
    LoginRequired,
    Timeout,
    ValidationError,
)
from caiclient.models._v1 import V1Chunk, V1History, V1Message

UNKNOWN = "x" * 43


async def count_messages(client: AsyncClient, history: V1History) -> int:
    return len(await client.v1.messages(history))


# ---- histories --------------------------------------------------------------------------


async def test_create_returns_history_with_tgt_and_greeting(
    emu: Emulator, client: AsyncClient
) -> None:
    echo = emu.character("Echo")
    history = await client.v1.create(echo.id)
    assert history.character_id == echo.id
    assert history.tgt == echo.participant_username
    assert history.character_name == "Echo"
    assert history.history_id == history.external_id
    [greeting] = history.messages
    assert greeting.text == echo.greeting
    assert not greeting.is_human
    assert int(greeting.id) > 2**53  # An exact digit string of a big integer id.


async def test_create_errors(client: AsyncClient) -> None:
    with pytest.raises(CharacterNotFound):
        await client.v1.create(UNKNOWN)
    with pytest.raises(ValidationError):
        await client.v1.create("bad/id")
    with pytest.raises(ValidationError):
        await client.v1.create(UNKNOWN, timeout=0)


async def test_histories_lists_newest_first(emu: Emulator, client: AsyncClient) -> None:
    sage = emu.character("Sage")
    first = await client.v1.create(sage.id)
    second = await client.v1.create(sage.id)
    listed = await client.v1.histories(sage.id)
    assert [h.external_id for h in listed] == [second.external_id, first.external_id]
    assert all(h.tgt == sage.participant_username for h in listed)
    assert listed[0].messages[0].text == sage.greeting
    assert await client.v1.histories(emu.character("Nova").id) == []
    with pytest.raises(CharacterNotFound):
        await client.v1.histories(UNKNOWN)
    with pytest.raises(ValidationError):
        await client.v1.histories("")


async def test_continue_returns_the_latest_or_raises(emu: Emulator, client: AsyncClient) -> None:
    nova = emu.character("Nova")
    with pytest.raises(HistoryNotFound):
        await client.v1.continue_(nova.id)
    older = await client.v1.create(nova.id)
    newer = await client.v1.create(nova.id)
    latest = await client.v1.continue_(nova.id)
    assert latest.external_id == newer.external_id
    assert latest.tgt == nova.participant_username
    named = await client.v1.continue_(nova.id, older.external_id)
    assert named.external_id == older.external_id
    with pytest.raises(HistoryNotFound):
        await client.v1.continue_(nova.id, "nope")
    with pytest.raises(CharacterNotFound):
        await client.v1.continue_(UNKNOWN)
    with pytest.raises(ValidationError):
        await client.v1.continue_(nova.id, "a b")


async def test_another_users_history_is_not_found(emu: Emulator, client: AsyncClient) -> None:
    echo = emu.character("Echo")
    mine = await client.v1.create(echo.id)
    other = emu.store.add_user("someone")
    async with AsyncClient(other.token, endpoints=Endpoints.local(emu.url)) as theirs:
        with pytest.raises(HistoryNotFound):
            await theirs.v1.continue_(echo.id, mine.external_id)
        with pytest.raises(HistoryNotFound):
            await theirs.v1.messages(mine)
        with pytest.raises(HistoryNotFound):
            await theirs.v1.send(mine, "hi")
        with pytest.raises(HistoryNotFound):
            await theirs.v1.delete(mine, mine.messages)
    assert await count_messages(client, mine) == 1


# ---- messages ---------------------------------------------------------------------------


async def test_messages_reads_every_page_oldest_first(emu: Emulator, client: AsyncClient) -> None:
    echo = emu.character("Echo")
    history = await client.v1.create(echo.id)
    for i in range(11):  # 23 messages: more than one page.
        await client.v1.send(history, f"message {i}")
    messages = await client.v1.messages(history)
    assert len(messages) == 23 > emu_v1.PAGE_SIZE
    assert messages[0].text == echo.greeting
    assert [m.text for m in messages if m.is_human] == [f"message {i}" for i in range(11)]
    assert [int(m.id) for m in messages] == sorted(int(m.id) for m in messages)
    assert await client.v1.messages(history.external_id) == messages


async def test_messages_errors(client: AsyncClient) -> None:
    with pytest.raises(HistoryNotFound):
        await client.v1.messages("nope")
    with pytest.raises(ValidationError):
        await client.v1.messages(42)  # type: ignore[arg-type]


# ---- send / stream ----------------------------------------------------------------------


async def test_send_returns_the_reply(emu: Emulator, client: AsyncClient) -> None:
    echo = emu.character("Echo")
    history = await client.v1.create(echo.id)
    reply = await client.v1.send(history, "Hello V1")
    assert reply.text == echo.reply("Hello V1", 1)
    assert not reply.is_human and not reply.is_alternative
    assert reply.src == echo.participant_username
    stored = await client.v1.messages(history)
    assert stored[-1].uuid == reply.uuid and stored[-1].id == reply.id
    assert reply.reply_to == stored[-2].uuid
    assert stored[-2].text == "Hello V1"


async def test_send_validates_before_io(emu: Emulator, client: AsyncClient) -> None:
    history = await client.v1.create(emu.character("Echo").id)
    for args in ((history, ""), (history, "   "), (history, 5), (history.external_id, "hi")):
        with pytest.raises(ValidationError):
            await client.v1.send(*args)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            client.v1.stream(*args)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await client.v1.send(history, "hi", primary=7)  # type: ignore[arg-type]
    assert await count_messages(client, history) == 1  # Nothing was sent.


async def test_stream_deltas_concatenate(emu: Emulator, client: AsyncClient) -> None:
    nova = emu.character("Nova")
    history = await client.v1.create(nova.id)
    chunks = [c async for c in client.v1.stream(history, "Tell me about Saturn ☄️")]
    assert len(chunks) == emu.chunks
    assert "".join(c.delta for c in chunks) == chunks[-1].text
    assert [c.final for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].message.text == nova.reply("Tell me about Saturn ☄️", 1)
    assert len({c.message.uuid for c in chunks}) == 1


async def test_stream_delivers_chunks_as_they_arrive(emu: Emulator, client: AsyncClient) -> None:
    emu.chunk_delay = 0.1
    history = await client.v1.create(emu.character("Echo").id)
    loop = asyncio.get_running_loop()
    times: list[float] = []
    async for _ in client.v1.stream(history, "slow and steady"):
        times.append(loop.time())
    # Five lines 0.1 s apart: the first arrives well before the last (not all at the end).
    assert times[-1] - times[0] >= 0.25


async def test_stream_can_stop_early(emu: Emulator, client: AsyncClient) -> None:
    emu.chunk_delay = 0.05
    history = await client.v1.create(emu.character("Echo").id)
    async with aclosing(client.v1.stream(history, "stop me")) as stream:
        first: Any = await stream.__anext__()
        assert isinstance(first, V1Chunk) and not first.final
    emu.chunk_delay = 0.0
    # The reply still completes on the server; the client can go on at once.
    reply = await client.v1.send(history, "next")
    assert reply.text.startswith("next")


async def test_filtered_reply(emu: Emulator, client: AsyncClient) -> None:
    history = await client.v1.create(emu.character("Echo").id)
    text = f"please {emu_v1.FILTER_TRIGGER}"
    with pytest.raises(Filtered, match="No eligible candidates"):
        await client.v1.send(history, text)
    seen: list[V1Chunk] = []
    with pytest.raises(Filtered):
        async for chunk in client.v1.stream(history, text):
            seen.append(chunk)
    assert seen and not seen[-1].final  # Partial text came first.
    stored = await client.v1.messages(history)
    assert [m.is_human for m in stored] == [False, True, True]  # No reply kept.


async def test_guest_over_the_limit_must_log_in(emu: Emulator) -> None:
    endpoints = Endpoints.local(emu.url)
    token = await auth.guest(endpoints=endpoints)
    async with aiohttp.ClientSession() as http:
        await http.post(
            f"{emu.url}/__emulator__/v1/guest_limit",
            json={"limit": 1},
            headers={"X-Emulator-Control": emu.control_token},
        )
    async with AsyncClient(token, endpoints=endpoints) as guest:
        history = await guest.v1.create(emu.character("Echo").id)
        await guest.v1.send(history, "one")
        with pytest.raises(LoginRequired):
            await guest.v1.send(history, "two")


async def test_history_without_tgt_is_resolved(emu: Emulator, client: AsyncClient) -> None:
    echo = emu.character("Echo")
    created = await client.v1.create(echo.id)
    bare = V1History(external_id=created.external_id, character_id=echo.id)
    reply = await client.v1.send(bare, "who are you?")
    assert reply.text.startswith("who are you?")


# ---- regenerate / delete ----------------------------------------------------------------


async def test_regenerate_from_the_reply(emu: Emulator, client: AsyncClient) -> None:
    sage = emu.character("Sage")
    history = await client.v1.create(sage.id)
    reply = await client.v1.send(history, "What should I read?")
    alternative = await client.v1.regenerate(history, reply)
    assert alternative.is_alternative
    assert alternative.reply_to == reply.reply_to
    assert alternative.uuid != reply.uuid
    assert alternative.text != reply.text
    stored = await client.v1.messages(history)
    assert [m.is_alternative for m in stored[-2:]] == [False, True]
    # A listed reply (no reply_to) and the user message itself work too.
    listed_reply = stored[2]
    assert listed_reply.reply_to is None
    third = await client.v1.regenerate(history, listed_reply)
    fourth = await client.v1.regenerate(history, stored[1])
    assert third.reply_to == fourth.reply_to == stored[1].uuid
    # Going on from a chosen alternative makes it the primary one.
    await client.v1.send(history, "go on", primary=alternative)
    stored = await client.v1.messages(history)
    flags = {m.uuid: m.is_alternative for m in stored}
    assert flags[alternative.uuid] is False
    assert flags[reply.uuid] is True


async def test_regenerate_errors(emu: Emulator, client: AsyncClient) -> None:
    history = await client.v1.create(emu.character("Echo").id)
    with pytest.raises(ValidationError):
        await client.v1.regenerate(history, "not-in-history")
    with pytest.raises(ValidationError):
        await client.v1.regenerate(history, history.messages[0])  # The greeting answers nothing.
    with pytest.raises(ValidationError):
        await client.v1.regenerate(history, 3)  # type: ignore[arg-type]
    gone = V1History(external_id="nope", character_id=emu.character("Echo").id, tgt="t")
    user_message = V1Message(id="1", uuid="u", is_human=True)
    with pytest.raises(HistoryNotFound):
        await client.v1.regenerate(gone, user_message)


async def test_delete(emu: Emulator, client: AsyncClient) -> None:
    history = await client.v1.create(emu.character("Echo").id)
    reply = await client.v1.send(history, "delete us")
    stored = await client.v1.messages(history)
    await client.v1.delete(history, [stored[-2], reply.uuid])
    assert [m.uuid for m in await client.v1.messages(history)] == [stored[0].uuid]
    await client.v1.delete(history.external_id, stored[0])
    assert await client.v1.messages(history) == []
    with pytest.raises(HistoryNotFound):
        await client.v1.delete("nope", ["u"])
    with pytest.raises(ValidationError):
        await client.v1.delete(history, [])
    with pytest.raises(ValidationError):
        await client.v1.delete(history, [None])  # type: ignore[list-item]


async def test_history_without_character_id_still_sends(emu: Emulator, client: AsyncClient) -> None:
    echo = emu.character("Echo")
    created = await client.v1.create(echo.id)
    bare = V1History(external_id=created.external_id, tgt=created.tgt)
    assert (await client.v1.send(bare, "hi")).text.startswith("hi")
    with pytest.raises(ValidationError):
        await client.v1.send(V1History(external_id=created.external_id), "hi")  # No way to tgt.


async def test_timeout_bounds_the_whole_reply(emu: Emulator, client: AsyncClient) -> None:
    emu.chunk_delay = 0.2
    history = await client.v1.create(emu.character("Echo").id)
    chunks: list[V1Chunk] = []
    with pytest.raises(Timeout):
        async for chunk in client.v1.stream(history, "slow", timeout=0.3):
            chunks.append(chunk)
    assert 1 <= len(chunks) < emu.chunks
