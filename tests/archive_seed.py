"""A seeded account for the archive tests, built through the public client API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from caiclient import Chat, Turn
from caiclient.emulator import Emulator
from caiclient.emulator.chat import CHAT


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
