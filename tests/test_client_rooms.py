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


async def test_history_selection_settings_and_deletion(client: Any, emu: Emulator) -> None:
    echo, sage = _cast(emu)
    room = await client.rooms.create([echo, sage], greeting=False)
    await client.rooms.send(room, "first")
    reply = await client.rooms.generate(room, echo)
    swiped = await client.rooms.regenerate(reply)
    history = await client.rooms.history(room, all_candidates=True)
    assert [t.text for t in history] == ["first", swiped.text]
    assert len(history[-1].candidates) == 2
    older = next(c for c in swiped.candidates if c.candidate_id != swiped.primary_candidate_id)
    chosen = await client.rooms.select(swiped, older)
    assert chosen.primary_candidate_id == older.candidate_id
    assert (await client.rooms.history(room))[-1].text == older.raw_content
    pages = [page async for page in client.rooms.iter_history(room)]
    assert [t.turn_id for t in pages[0]] == [history[1].turn_id, history[0].turn_id]

    changed = await client.rooms.update_settings(room, anyone_can_join=False, auto_smart_reply=True)
    assert changed.settings.anyone_can_join is False and changed.settings.auto_smart_reply
    with pytest.raises(ValidationError):
        await client.rooms.update_settings(room)

    await client.rooms.delete_turns(room, history[-1])
    assert [t.text for t in await client.rooms.history(room)] == ["first"]


async def test_a_reply_cut_by_a_dropped_socket_is_recovered(emu: Emulator) -> None:
    echo, _ = _cast(emu)
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        room = await client.rooms.create(echo, greeting=False)
        await client.rooms.send(room, "warm up")  # the socket is open and the room watched
        emu.faults.drop_after(2, socket="rooms")  # the rpc ack, one push, then the cut
        chunks = [c async for c in client.rooms.stream_generate(room, echo, timeout=15)]
        assert chunks[-1].final
        assert "".join(c.delta for c in chunks) == chunks[-1].text  # nothing repeated
        assert client._core.rooms_socket.connects == 2
        (stored,) = [t for t in await client.rooms.history(room) if not t.is_human]
        assert stored.text == chunks[-1].text


async def test_events_across_a_cut_yield_every_turn_exactly_once(
    emu: Emulator, stranger: AsyncClient
) -> None:
    echo, sage = _cast(emu)
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as owner:
        room = await owner.rooms.create([echo, sage], greeting=False)
        await stranger.rooms.join(await owner.rooms.join_token(room))
        turns: list[str] = []

        async def follow() -> None:
            async for event in stranger.rooms.events(room.id, timeout=15):
                assert event.turn is not None
                turns.append(event.turn.turn_id)
                if len(turns) == 6:
                    return

        follower = asyncio.create_task(follow())
        await _until(lambda: _watching(stranger, room))
        made = [(await owner.rooms.send(room, "one")).turn_id]
        made.append((await owner.rooms.generate(room, echo)).turn_id)
        emu.faults.drop_after(0, socket="rooms", times=2)  # cut both users' next frame
        made.append((await owner.rooms.send(room, "two", timeout=15)).turn_id)
        made.append((await owner.rooms.generate(room, sage, timeout=15)).turn_id)
        made.append((await owner.rooms.send(room, "three", timeout=15)).turn_id)
        made.append((await owner.rooms.generate(room, echo, timeout=15)).turn_id)
        await asyncio.wait_for(follower, 20)
        assert turns == made
        assert stranger._core.rooms_socket.connects >= 2


async def test_when_the_server_cannot_replay_the_history_fills_in(
    emu: Emulator, stranger: AsyncClient
) -> None:
    from caiclient.emulator.rooms.store import ROOMS

    echo, _ = _cast(emu)
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as owner:
        room = await owner.rooms.create(echo, greeting=False)
        await stranger.rooms.join(await owner.rooms.join_token(room))
        seen: list[str] = []

        async def follow() -> None:
            async for event in stranger.rooms.events(room.id, timeout=15):
                assert event.turn is not None
                seen.append(event.turn.text)
                if len(seen) == 3:
                    return

        follower = asyncio.create_task(follow())
        await _until(lambda: _watching(stranger, room))
        await owner.rooms.send(room, "before")
        await _until(lambda: len(seen) == 1)
        # The server forgets the channel's history (a restart mints a new epoch) while the
        # follower is away: it cannot be replayed, so the follower reads the history.
        channel = emu.app[ROOMS].channels[f"room:{room.id}"]
        channel.history.clear()
        channel.epoch = "new-epoch"
        socket = stranger._core.rooms_socket
        socket._ws.abort()
        await owner.rooms.send(room, "while away")
        await owner.rooms.send(room, "after")
        await asyncio.wait_for(follower, 20)
        assert seen == ["before", "while away", "after"]


async def test_cancelling_a_room_generation_tells_the_server_to_stop(emu: Emulator) -> None:
    emu.chunk_delay = 0.05
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        room = await client.rooms.create(emu.character("Echo").id, greeting=False)
        stream = client.rooms.stream_generate(room, timeout=10)
        async with contextlib.aclosing(stream) as chunks:  # type: ignore[type-var]
            async for _chunk in chunks:
                break
        await _until(lambda: len(emu.aborts) == 1)
        (stored,) = await client.rooms.history(room, all_candidates=True)
        assert stored.primary is not None and stored.primary.is_final
        assert stored.primary.aborted  # cut short, and marked so
        assert (await client.rooms.send(room, "next")).text == "next"
