"""A seeded account for the archive tests, built through the public client API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from caiclient import Chat, Turn
from caiclient.emulator import Emulator
from caiclient.emulator.chat import CHAT
from caiclient.models import Room


@dataclass
class Seeded:
    """What was made: chats by role, and some turns the tests change later."""

    long: Chat
    short: Chat
    archived: Chat
    pirate: Chat
    swiped: Turn
    pinned: Turn
    old_bot_turn: Turn
    chats: list[Chat] = field(default_factory=list)
    v1_history_id: str = ""


async def seed_account(client: Any, emu: Emulator, *, long_messages: int = 30) -> Seeded:
    """Several characters; a chat over two history pages with swipes, an edit and a pin;
    an archived chat; a V1 history with an alternative; a persona."""
    sage, echo, captain = (emu.character(n) for n in ("Sage", "Echo", "Captain Byte"))
    long, _ = await client.chats.create(sage.id)
    replies = [await client.chats.send(long, f"question {i}") for i in range(long_messages)]
    swiped = await client.chats.regenerate(replies[-1])
    pinned = await client.chats.pin(replies[-3])
    await client.chats.edit(replies[-5], "An edited answer.")
    short, _ = await client.chats.create(echo.id)
    for i in range(3):
        await client.chats.send(short, f"echo {i}")
    archived, _ = await client.chats.create(sage.id)
    await client.chats.send(archived, "to be archived")
    archived = await client.chats.archive(archived)
    pirate, _ = await client.chats.create(captain.id)
    await client.chats.send(pirate, "ahoy")
    history = await client.v1.create(sage.id)
    reply = await client.v1.send(history, "hello from v1")
    await client.v1.regenerate(history, reply)
    await client.personas.create("Ada", "A mathematician.")
    return Seeded(
        long=long,
        short=short,
        archived=archived,
        pirate=pirate,
        swiped=swiped,
        pinned=pinned,
        old_bot_turn=replies[-8],
        chats=[long, short, archived, pirate],
        v1_history_id=history.external_id,
    )


def delete_chat_on_server(emu: Emulator, chat_id: str) -> None:
    """The live service can lose a chat; no client call deletes one, so reach into the
    emulator's store (test-only)."""
    emu.app[CHAT].delete_chat(chat_id)


@dataclass
class SeededRooms:
    """Group chats: ``party`` (two characters, two users, over two history pages, with a
    swipe and an edit) and ``quiet`` (one character)."""

    party: Room
    quiet: Room
    swiped: Turn
    edited: Turn
    old_reply: Turn
    guest_username: str


async def seed_rooms(client: Any, guest: Any, emu: Emulator, *, rounds: int = 14) -> SeededRooms:
    """Rooms made through the public client: ``guest`` (another user's client) joins the
    party and talks in it."""
    echo, sage, nova = (emu.character(n).id for n in ("Echo", "Sage", "Nova"))
    party = await client.rooms.create([echo, sage], title="Tea party")
    await guest.rooms.join(await client.rooms.join_token(party))
    replies: list[Turn] = []
    for i in range(rounds):
        await client.rooms.send(party, f"round {i}, Sage?")
        replies.append(await client.rooms.generate(party, sage))
        await guest.rooms.send(party, f"and Echo, round {i}?")
        replies.append(await client.rooms.generate(party, echo))
    swiped = await client.rooms.regenerate(replies[-1])
    edited = await client.rooms.edit(replies[-4], "Sage, edited by hand.")
    quiet = await client.rooms.create(nova, title="Quiet corner", greeting=False)
    await client.rooms.send(quiet, "anyone here?")
    await client.rooms.generate(quiet)
    me = await guest.account.me()
    return SeededRooms(
        party=party,
        quiet=quiet,
        swiped=swiped,
        edited=edited,
        old_reply=replies[1],
        guest_username=me.username,
    )
