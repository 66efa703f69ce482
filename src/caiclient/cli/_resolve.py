"""Turning what a user types (an id, a character.ai URL, a name) into characters, chats and
turns, through the client's public calls."""

from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import click

from ..errors import CharacterNotFound, ChatNotFound, TurnNotFound, ValidationError
from ..models import Character, CharacterShort, Chat, Turn

if TYPE_CHECKING:
    from ..client import AsyncClient

__all__ = ["Reference", "parse_reference", "resolve_character", "resolve_chat", "resolve_turn"]

_ID = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PATH_KINDS = ("chat", "character", "chat2")


@dataclass(frozen=True)
class Reference:
    """What a CHARACTER argument named: a character id, a chat id, both, or neither (a name)."""

    character_id: str | None = None
    chat_id: str | None = None
    from_url: bool = False


def parse_reference(text: str) -> Reference:
    """``https://character.ai/chat/<id>?hist=<chat>``, ``…/character/<id>``, the old
    ``chat2?char=<id>``, a bare character id, or a chat id (a UUID)."""
    text = text.strip()
    if text.lower().startswith(("http://", "https://")):
        parts = urlsplit(text)
        query = parse_qs(parts.query)
        segments = [s for s in parts.path.split("/") if s]
        character: str | None = query.get("char", [""])[0] or None
        for kind, value in itertools.pairwise(segments):
            if kind in _PATH_KINDS and _ID.match(value):
                character = value
        chat: str | None = query.get("hist", [""])[0] or None
        if character is None and chat is None:
            raise ValidationError(f"{text!r} is not a character.ai chat or character URL")
        return Reference(character, chat, from_url=True)
    if _UUID.match(text):
        return Reference(chat_id=text)
    if _ID.match(text):
        return Reference(character_id=text)
    return Reference()


async def _close_matches(client: AsyncClient, text: str) -> list[str]:
    pool: dict[str, None] = {}
    for probe in {text[:3], text.split()[0][:4] if text.split() else ""}:
        if len(probe) >= 2:
            pool.update(dict.fromkeys(c.name for c in await client.characters.search(probe)))
    pool.update(dict.fromkeys(c.name for c in await client.characters.featured()))
    return difflib.get_close_matches(text, list(pool), n=5, cutoff=0.4)


def _pick(text: str, found: list[CharacterShort], interactive: bool) -> CharacterShort:
    listing = "\n".join(
        f"  {n}) {c.name}: {c.title or c.description[:60]} ({c.id})"
        for n, c in enumerate(found[:9], 1)
    )
    if not interactive:
        raise ValidationError(
            f"{len(found)} characters match {text!r}; pass one's id: "
            + "; ".join(f"{c.name} ({c.id})" for c in found[:9])
        )
    click.echo(f"Several characters match {text!r}:\n{listing}", err=True)
    choice: int = click.prompt(
        "Which one", type=click.IntRange(1, min(9, len(found))), default=1, err=True
    )
    return found[choice - 1]


async def resolve_character(client: AsyncClient, text: str, *, interactive: bool) -> Character:
    """The character ``text`` names; a pick list (interactive) or ValidationError when several
    match, CharacterNotFound with close matches when none does."""
    ref = parse_reference(text)
    if ref.character_id is not None:
        try:
            return await client.characters.info(ref.character_id)
        except CharacterNotFound:
            if ref.from_url:
                raise
    elif ref.chat_id is not None:
        chat = await client.chats.get(ref.chat_id)
        return await client.characters.info(chat.character_id)
    found = await client.characters.search(text)
    exact = [c for c in found if c.name.casefold() == text.strip().casefold()]
    candidates = exact or found
    if not candidates:
        close = await _close_matches(client, text)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise CharacterNotFound(f"no character matches {text!r}{hint}")
    chosen = candidates[0] if len(candidates) == 1 else _pick(text, candidates, interactive)
    return await client.characters.info(chosen.id)


async def resolve_chat(client: AsyncClient, text: str) -> Chat:
    """A chat from its id or a character.ai URL holding ``hist=<chat id>``."""
    ref = parse_reference(text)
    if ref.chat_id is None:
        raise ValidationError(f"{text!r} is not a chat id (a UUID) or a chat URL with hist=")
    return await client.chats.get(ref.chat_id)


async def resolve_turn(client: AsyncClient, text: str) -> Turn:
    """``CHAT_ID:TURN_ID`` → that turn; ``CHAT_ID`` → the chat's latest character turn."""
    chat_part, _, turn_id = text.partition(":")
    chat = await resolve_chat(client, chat_part)
    async for page in client.chats.iter_history(chat):
        for turn in page:
            if (turn_id and turn.turn_id == turn_id) or (not turn_id and not turn.is_human):
                return turn
    if turn_id:
        raise TurnNotFound(f"chat {chat.chat_id} has no turn {turn_id}")
    raise ChatNotFound(f"chat {chat.chat_id} has no character turn yet")
