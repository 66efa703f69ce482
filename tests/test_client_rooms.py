"""Tier 3: group chats (``client.rooms``) end to end against the emulator, sync and async."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from caiclient import (
    AsyncClient,
    CharacterNotFound,
    Endpoints,
    RoomNotFound,
    ValidationError,
)
from caiclient.emulator import Emulator
from caiclient.models import Room, RoomEvent


def _cast(emu: Emulator) -> tuple[str, str]:
    return emu.character("Echo").id, emu.character("Sage").id


async def test_rooms_rest_calls(client: Any, emu: Emulator) -> None:
    echo, sage = _cast(emu)
    room = await client.rooms.create([echo, sage], title="Tea party")
    assert isinstance(room, Room) and room.title == "Tea party"
    assert room.character_ids == [echo, sage]
    assert len(room.preview_turns) == 2  # each character greets the room
    assert [r.id for r in await client.rooms.list()] == [room.id]
    assert (await client.rooms.get(room.id)).id == room.id
    renamed = await client.rooms.rename(room, "Garden party")
    assert renamed.title == "Garden party"
    fewer = await client.rooms.remove_character(room, sage)
    assert fewer.character_ids == [echo]
    more = await client.rooms.add_character(room.id, sage)
    assert more.character_ids == [echo, sage]
    token = await client.rooms.join_token(room)
    assert (await client.rooms.preview(token)).id == room.id
    await client.rooms.delete(room)
    assert await client.rooms.list() == []
    with pytest.raises(RoomNotFound):
        await client.rooms.get(room.id)


async def test_a_quiet_room_has_no_greetings(client: Any, emu: Emulator) -> None:
    room = await client.rooms.create(emu.character("Echo").id, greeting=False)
    assert room.preview_turns == []


async def test_messages_replies_swipes_and_edits(client: Any, emu: Emulator) -> None:
    echo, sage = _cast(emu)
    room = await client.rooms.create([echo, sage], greeting=False)
    mine = await client.rooms.send(room, "hello all")
    assert mine.is_human and mine.text == "hello all"
    named = await client.rooms.generate(room, sage)
    assert named.author.author_id == sage and named.is_final and named.text
    picked = await client.rooms.generate(room)  # the service picks who speaks
    assert picked.author.author_id in (echo, sage) and picked.text

    chunks = [c async for c in client.rooms.stream(room, "and you, Echo?", character=echo)]
    assert len(chunks) >= 2 and chunks[-1].final
    assert "".join(c.delta for c in chunks) == chunks[-1].text
    reply = chunks[-1].turn
    assert reply.author.author_id == echo

    swiped = await client.rooms.regenerate(reply)
    assert swiped.turn_id == reply.turn_id and len(swiped.candidates) == 2
    assert swiped.primary_candidate_id != reply.primary_candidate_id
    edited = await client.rooms.edit(swiped, "Edited by me")
    assert edited.text == "Edited by me" and edited.primary is not None
    assert edited.primary.base_candidate_id is not None

    streamed = [c async for c in client.rooms.stream_generate(room, sage)]
    assert streamed[-1].final and streamed[-1].turn.author.author_id == sage


async def test_bad_input_is_typed_and_never_hangs(client: Any, emu: Emulator) -> None:
    echo, _ = _cast(emu)
    room = await client.rooms.create(echo, greeting=False)
    with pytest.raises(ValidationError):
        await client.rooms.send(room, "   ")
    with pytest.raises(ValidationError, match="not in room"):
        await client.rooms.generate(room, emu.character("Sage").id)
    with pytest.raises(CharacterNotFound):  # the same, found by the server
        await client.rooms.generate(room.id, emu.character("Sage").id, timeout=5)
    with pytest.raises(CharacterNotFound):
        await client.rooms.create("no-such-character-id")
    with pytest.raises(ValidationError):
        await client.rooms.create([])
    with pytest.raises(RoomNotFound):
        await client.rooms.send("no-such-room", "hello", timeout=5)
    with pytest.raises(RoomNotFound):
        await client.rooms.rename("no-such-room", "x")
    with pytest.raises(RoomNotFound):
        await client.rooms.join("not-a-join-token")


@pytest.fixture
async def stranger(emu: Emulator) -> Any:
    user = emu.store.add_user("stranger", "Stranger")
    async with AsyncClient(user.token, endpoints=Endpoints.local(emu.url)) as other:
        yield other


async def test_a_room_you_are_not_in_reads_as_missing_until_you_join(
    client: Any, stranger: AsyncClient, emu: Emulator
) -> None:
    room = await client.rooms.create(emu.character("Echo").id, greeting=False)
    with pytest.raises(RoomNotFound):
        await stranger.rooms.send(room.id, "let me in", timeout=5)
    with pytest.raises(RoomNotFound):
        await stranger.rooms.get(room.id)
    joined = await stranger.rooms.join(await client.rooms.join_token(room))
    assert joined.id == room.id
    assert (await stranger.rooms.send(room.id, "I am in")).text == "I am in"
    assert len(joined.users) == 2


async def test_two_users_see_each_others_turns_through_events(
    client: Any, stranger: AsyncClient, emu: Emulator
) -> None:
    echo, _ = _cast(emu)
    room = await client.rooms.create(echo, greeting=False)
    await stranger.rooms.join(await client.rooms.join_token(room))
    seen: list[RoomEvent] = []

    async def follow() -> None:
        async for event in stranger.rooms.events(room.id, timeout=10):
            seen.append(event)
            if len(seen) == 2:
                return

    follower = asyncio.create_task(follow())
    await _until(lambda: stranger._core.rooms_socket.in_flight == 0 and _watching(stranger, room))
    await client.rooms.send(room, "from the owner")
    await client.rooms.generate(room, echo)
    await asyncio.wait_for(follower, 10)
    assert [e.kind for e in seen] == ["turn", "turn"]
    assert seen[0].turn is not None and seen[0].turn.text == "from the owner"
    assert seen[1].turn is not None and seen[1].turn.author.author_id == echo
    assert all(e.final for e in seen)


async def test_fifty_concurrent_generations_over_ten_rooms_reach_their_callers(
    emu: Emulator,
) -> None:
    echo, sage = _cast(emu)
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        rooms = await asyncio.gather(
            *(client.rooms.create([echo, sage], greeting=False) for _ in range(10))
        )

        async def one(n: int) -> tuple[str, str]:
            room = rooms[n % 10]
            character = echo if n % 2 else sage
            turn = await client.rooms.generate(room, character, timeout=30)
            return room.id, turn.author.author_id

        results = await asyncio.gather(*(one(n) for n in range(50)))
        for n, (room_id, author) in enumerate(results):
            assert room_id == rooms[n % 10].id
            assert author == (echo if n % 2 else sage)
        for room in rooms:
            history = await client.rooms.history(room)
            assert len(history) == 5 and all(t.turn_key.chat_id == room.id for t in history)


def _watching(client: AsyncClient, room: Room) -> bool:
    channel = client._core.rooms_socket._channels.get(f"room:{room.id}")
    return channel is not None and channel.subscribed is not None


async def _until(condition: Any, seconds: float = 5) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_cancelling_a_room_generation_leaves_nothing_behind(emu: Emulator) -> None:
    emu.chunk_delay = 0.05
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        room = await client.rooms.create(emu.character("Echo").id, greeting=False)
        task = asyncio.create_task(client.rooms.generate(room, timeout=10))
        await asyncio.sleep(0.08)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert client._core.rooms_socket.in_flight == 0
        assert (await client.rooms.send(room, "still fine")).text == "still fine"
