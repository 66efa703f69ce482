"""A state file keeps everything across a restart, and two users never see each other's data."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from caiclient import (
    AsyncClient,
    CharacterNotFound,
    ChatNotFound,
    Endpoints,
    PersonaNotFound,
    TurnNotFound,
)
from caiclient.emulator import Emulator

ALICE = "a1" * 20
BOB = "b2" * 20
SEED = {"users": [{"username": "alice", "token": ALICE}, {"username": "bob", "token": BOB}]}


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def client(emu: Emulator, token: str) -> AsyncClient:
    return AsyncClient(token, endpoints=Endpoints.local(emu.url))


async def test_every_area_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "emulator.sqlite"
    async with Emulator(state_file=state, seed=SEED) as emu, client(emu, ALICE) as alice:
        sage = emu.character("Sage").id
        await alice.account.update(name="Alice A.", bio="Reads a lot")
        chat, _ = await alice.chats.create(sage)
        reply = await alice.chats.send(chat, "remember me")
        swiped = await alice.chats.regenerate(reply)
        await alice.chats.pin(swiped)
        await alice.chats.rename(chat, "Saved chat")
        persona = await alice.personas.create("Wanderer", "Walks far")
        await alice.personas.set_default(persona.id)
        mine = await alice.characters.create("Keeper", "I keep things.", visibility="PRIVATE")
        await alice.characters.vote(sage, True)
        await alice.users.follow("bob")
        image = await alice.images.upload(tiny_png())
        history = await alice.v1.create(emu.character("Echo").id)
        await alice.v1.send(history, "old school")
        expected_turns = [(t.turn_id, t.text) for t in await alice.chats.history(chat)]

    async with Emulator(state_file=state) as emu, client(emu, ALICE) as alice:
        me = await alice.account.me()
        assert (me.name, me.bio) == ("Alice A.", "Reads a lot")
        restored = await alice.chats.get(chat.chat_id)
        assert restored.name == "Saved chat"
        turns = await alice.chats.history(restored, all_candidates=True)
        assert [(t.turn_id, t.text) for t in turns] == expected_turns
        assert len(turns[-1].candidates) == 2  # the swipe survived
        pinned = await alice.chats.history(restored, pinned_only=True)
        assert [t.turn_id for t in pinned] == [swiped.turn_id]
        assert (await alice.personas.get(persona.id)).name == "Wanderer"
        assert (await alice.account.settings()).default_persona_id == persona.id
        assert (await alice.characters.info(mine.external_id)).name == "Keeper"
        assert sage in [c.external_id for c in await alice.characters.liked()]
        assert "bob" in await alice.account.following()
        assert await alice.images.download(alice.images.url(image)) == tiny_png()
        messages = await alice.v1.messages(history)
        assert [m.text for m in messages][-2] == "old school"
        # New writes after the restart work and do not collide with restored ids.
        assert (await alice.chats.send(restored, "still here")).text


async def test_two_users_are_isolated(emu: Emulator) -> None:
    emu.store.add_user("alice", token=ALICE)
    emu.store.add_user("bob", token=BOB)
    async with client(emu, ALICE) as alice, client(emu, BOB) as bob:
        chat, greeting = await alice.chats.create(emu.character("Sage").id)
        assert greeting is not None
        secret = await alice.characters.create("Hidden", "Only Alice knows me.")
        persona = await alice.personas.create("Private", "Alice's persona")

        with pytest.raises(ChatNotFound):
            await bob.chats.get(chat.chat_id)
        with pytest.raises(ChatNotFound):
            await bob.chats.history(chat.chat_id)
        with pytest.raises(ChatNotFound):
            await bob.chats.send(chat, "let me in")
        with pytest.raises((ChatNotFound, TurnNotFound)):
            await bob.chats.pin(greeting)
        with pytest.raises(CharacterNotFound):
            await bob.characters.info(secret.external_id)
        with pytest.raises(CharacterNotFound):
            await bob.chats.create(secret.external_id)  # not even over the socket
        with pytest.raises(PersonaNotFound):
            await bob.personas.get(persona.id)
        assert secret.external_id not in [
            c.external_id for c in await bob.characters.search("Hidden")
        ]
        assert await bob.chats.recent() == []
        assert await bob.personas.list() == []
        # Alice still sees all of it.
        assert (await alice.chats.get(chat.chat_id)).chat_id == chat.chat_id
        assert (await alice.characters.info(secret.external_id)).name == "Hidden"
