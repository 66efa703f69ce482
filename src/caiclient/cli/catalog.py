"""The scriptable commands: ``characters``, ``chats``, ``personas``, ``voices`` and ``tts``.

Each prints a table on a terminal and, with ``--json``, the shapes of ``_output.py``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import PersonaNotFound, ValidationError
from ._app import EXIT_OK, Options, Session, command, group, run_with_client
from ._output import (
    character_json,
    chat_json,
    echo_json,
    persona_json,
    table,
    turn_json,
    voice_json,
)
from ._resolve import resolve_character, resolve_chat, resolve_turn

if TYPE_CHECKING:
    from ..models import CharacterShort, Chat, Persona, Turn, Voice

__all__ = ["characters", "chats", "personas", "tts", "voices"]


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _characters_out(options: Options, title: str, found: list[CharacterShort]) -> int:
    if options.json:
        echo_json([character_json(c) for c in found])
    else:
        rows = [(c.name, c.title, c.creator_username, c.num_interactions, c.id) for c in found]
        table(title, ("name", "title", "creator", "chats", "id"), rows)
    return EXIT_OK


# --- characters --------------------------------------------------------------------------------


@group("characters")
def characters() -> None:
    """Search characters and show them."""


@characters.command("search")
@click.argument("query")
@click.pass_obj
def characters_search(options: Options, query: str) -> int:
    """Characters matching QUERY, best match first."""

    async def body(session: Session) -> int:
        found = await session.client.characters.search(query)
        return _characters_out(options, f"Characters matching {query!r}", found)

    return run_with_client(options, body)


@characters.command("info")
@click.argument("character")
@click.pass_obj
def characters_info(options: Options, character: str) -> int:
    """One character in full: CHARACTER is an id, a character.ai URL or a name."""

    async def body(session: Session) -> int:
        found = await resolve_character(session.client, character, interactive=_interactive())
        if options.json:
            echo_json({**character_json(found), "definition": found.definition})
            return EXIT_OK
        rows = [
            ("name", found.name),
            ("title", found.title),
            ("description", found.description),
            ("greeting", found.greeting),
            ("creator", found.creator_username),
            ("chats", found.num_interactions),
            ("likes", found.upvotes),
            ("id", found.id),
        ]
        table(found.name, ("field", "value"), rows)
        return EXIT_OK

    return run_with_client(options, body)


@characters.command("similar")
@click.argument("character")
@click.pass_obj
def characters_similar(options: Options, character: str) -> int:
    """Characters like CHARACTER."""

    async def body(session: Session) -> int:
        found = await resolve_character(session.client, character, interactive=_interactive())
        similar = await session.client.characters.similar(found)
        return _characters_out(options, f"Similar to {found.name}", similar)

    return run_with_client(options, body)


@characters.command("mine")
@click.pass_obj
def characters_mine(options: Options) -> int:
    """Your own characters, newest first."""

    async def body(session: Session) -> int:
        return _characters_out(options, "Your characters", await session.client.characters.mine())

    return run_with_client(options, body)


# --- chats -----------------------------------------------------------------------------------


def _chats_out(options: Options, title: str, found: list[Chat]) -> int:
    if options.json:
        echo_json([chat_json(c) for c in found])
        return EXIT_OK
    rows = [
        (
            c.character_name or c.character_id,
            c.name,
            c.create_time.strftime("%Y-%m-%d %H:%M") if c.create_time else "",
            "yes" if c.is_archived else "",
            c.chat_id,
        )
        for c in found
    ]
    table(title, ("character", "name", "created", "archived", "chat id"), rows)
    return EXIT_OK


def _turns_out(options: Options, title: str, turns: list[Turn]) -> None:
    if options.json:
        echo_json([turn_json(t) for t in turns])
        return
    rows = [(t.author.name, t.text, "📌" if t.is_pinned else "", t.turn_id) for t in turns]
    table(title, ("who", "text", "pin", "turn id"), rows)


@group("chats")
def chats() -> None:
    """List, show, rename, archive and copy chats."""


@chats.command("list")
@click.argument("character", required=False)
@click.option("--all", "everything", is_flag=True, help="Include archived chats (needs CHARACTER).")
@click.pass_obj
def chats_list(options: Options, character: str | None, everything: bool) -> int:
    """Your recent chats, or every chat with CHARACTER."""

    async def body(session: Session) -> int:
        client = session.client
        if character is None:
            if everything:
                raise ValidationError("--all needs a CHARACTER")
            return _chats_out(options, "Recent chats", await client.chats.recent())
        found = await resolve_character(client, character, interactive=_interactive())
        listed = (
            await client.chats.list(found.id) if everything else await client.chats.recent(found.id)
        )
        return _chats_out(options, f"Chats with {found.name}", listed)

    return run_with_client(options, body)


@chats.command("show")
@click.argument("chat")
@click.option("-n", "--last", type=click.IntRange(min=1), default=20, show_default=True)
@click.pass_obj
def chats_show(options: Options, chat: str, last: int) -> int:
    """The last turns of CHAT (an id or a URL with hist=), oldest first."""

    async def body(session: Session) -> int:
        found = await resolve_chat(session.client, chat)
        turns: list[Turn] = []
        async for page in session.client.chats.iter_history(found):
            turns.extend(page)
            if len(turns) >= last:
                break
        shown = list(reversed(turns[:last]))
        if options.json:
            echo_json({"chat": chat_json(found), "turns": [turn_json(t) for t in shown]})
        else:
            _turns_out(options, f"Chat {found.name or found.chat_id}", shown)
        return EXIT_OK

    return run_with_client(options, body)


def _one_chat(options: Options, chat: str, verb: str, name: str | None = None) -> int:
    async def body(session: Session) -> int:
        client = session.client
        found = await resolve_chat(client, chat)
        if verb == "rename":
            assert name is not None
            changed = await client.chats.rename(found, name)
        elif verb == "archive":
            changed = await client.chats.archive(found)
        else:
            changed = await client.chats.unarchive(found)
        if options.json:
            echo_json(chat_json(changed))
        else:
            past = {"rename": "renamed", "archive": "archived", "unarchive": "unarchived"}[verb]
            click.echo(f"{past} chat {changed.chat_id}")
        return EXIT_OK

    return run_with_client(options, body)


@chats.command("rename")
@click.argument("chat")
@click.argument("name")
@click.pass_obj
def chats_rename(options: Options, chat: str, name: str) -> int:
    """Give CHAT a NAME."""
    return _one_chat(options, chat, "rename", name)


@chats.command("archive")
@click.argument("chat")
@click.pass_obj
def chats_archive(options: Options, chat: str) -> int:
    """Archive CHAT (it leaves the recent chats)."""
    return _one_chat(options, chat, "archive")


@chats.command("unarchive")
@click.argument("chat")
@click.pass_obj
def chats_unarchive(options: Options, chat: str) -> int:
    """Bring an archived CHAT back."""
    return _one_chat(options, chat, "unarchive")


@chats.command("copy")
@click.argument("chat")
@click.option("--up-to", metavar="TURN_ID", help="Last turn to copy (default: the latest).")
@click.pass_obj
def chats_copy(options: Options, chat: str, up_to: str | None) -> int:
    """A new chat holding CHAT's turns up to and including one turn."""

    async def body(session: Session) -> int:
        client = session.client
        found = await resolve_chat(client, chat)
        if up_to is None:
            async for page in client.chats.iter_history(found):
                target: Turn | str = page[0]
                break
            else:
                raise ValidationError("the chat has no turns to copy")
        else:
            target = up_to
        copied = await client.chats.copy(found, up_to=target)
        if options.json:
            echo_json(chat_json(copied))
        else:
            click.echo(f"copied to chat {copied.chat_id}")
        return EXIT_OK

    return run_with_client(options, body)


# --- personas --------------------------------------------------------------------------------


async def _persona(session: Session, reference: str) -> Persona:
    """A persona by id or by name (case-insensitive)."""
    mine = await session.client.personas.list()
    for persona in mine:
        if (
            reference in (persona.id, persona.name)
            or persona.name.casefold() == reference.casefold()
        ):
            return persona
    names = ", ".join(p.name for p in mine) or "none yet"
    raise PersonaNotFound(f"no persona {reference!r} (yours: {names})")


def _persona_out(options: Options, persona: Persona, verb: str) -> int:
    if options.json:
        echo_json(persona_json(persona))
    else:
        click.echo(f"{verb} persona {persona.name} ({persona.id})")
    return EXIT_OK


@group("personas")
def personas() -> None:
    """List, create, update and delete personas (who you are in chats)."""


@personas.command("list")
@click.pass_obj
def personas_list(options: Options) -> int:
    """Your personas."""

    async def body(session: Session) -> int:
        found = await session.client.personas.list()
        settings = await session.client.account.settings()
        if options.json:
            echo_json(
                [{**persona_json(p), "default": p.id == settings.default_persona_id} for p in found]
            )
            return EXIT_OK
        rows = [
            (p.name, p.definition, "yes" if p.id == settings.default_persona_id else "", p.id)
            for p in found
        ]
        table("Your personas", ("name", "definition", "default", "id"), rows)
        return EXIT_OK

    return run_with_client(options, body)


@personas.command("create")
@click.argument("name")
@click.option("--definition", default="", help="What characters are told about you.")
@click.option("--greeting", default=None)
@click.option("--description", default=None)
@click.pass_obj
def personas_create(
    options: Options, name: str, definition: str, greeting: str | None, description: str | None
) -> int:
    """Create a persona called NAME."""

    async def body(session: Session) -> int:
        made = await session.client.personas.create(name, definition)
        if greeting is not None or description is not None:
            made = await session.client.personas.update(
                made, greeting=greeting, description=description
            )
        return _persona_out(options, made, "created")

    return run_with_client(options, body)


@personas.command("update")
@click.argument("persona")
@click.option("--name", default=None)
@click.option("--definition", default=None)
@click.option("--greeting", default=None)
@click.option("--description", default=None)
@click.pass_obj
def personas_update(
    options: Options,
    persona: str,
    name: str | None,
    definition: str | None,
    greeting: str | None,
    description: str | None,
) -> int:
    """Change PERSONA (an id or a name)."""

    async def body(session: Session) -> int:
        found = await _persona(session, persona)
        changed = await session.client.personas.update(
            found, name=name, definition=definition, greeting=greeting, description=description
        )
        return _persona_out(options, changed, "updated")

    return run_with_client(options, body)


@personas.command("delete")
@click.argument("persona")
@click.pass_obj
def personas_delete(options: Options, persona: str) -> int:
    """Delete PERSONA (an id or a name)."""

    async def body(session: Session) -> int:
        found = await _persona(session, persona)
        await session.client.personas.delete(found)
        return _persona_out(options, found, "deleted")

    return run_with_client(options, body)


@personas.command("default")
@click.argument("persona", required=False)
@click.option("--clear", is_flag=True, help="Have no default persona.")
@click.pass_obj
def personas_default(options: Options, persona: str | None, clear: bool) -> int:
    """Show the default persona, or make PERSONA the default."""

    async def body(session: Session) -> int:
        client = session.client
        if clear:
            await client.personas.set_default(None)
            chosen = None
        elif persona is not None:
            chosen = await _persona(session, persona)
            await client.personas.set_default(chosen)
        else:
            settings = await client.account.settings()
            mine = {p.id: p for p in await client.personas.list()}
            chosen = mine.get(settings.default_persona_id or "")
        if options.json:
            echo_json({"default": persona_json(chosen) if chosen else None})
        else:
            click.echo(f"default persona: {chosen.name if chosen else 'none'}")
        return EXIT_OK

    return run_with_client(options, body)


# --- voices and tts --------------------------------------------------------------------------


@group("voices")
def voices() -> None:
    """Search voices."""


@voices.command("search")
@click.argument("query", required=False)
@click.option("--creator", metavar="USERNAME", help="Voices made by this user.")
@click.pass_obj
def voices_search(options: Options, query: str | None, creator: str | None) -> int:
    """Voices whose name or description matches QUERY (or by --creator)."""

    async def body(session: Session) -> int:
        found: list[Voice] = await session.client.voices.search(query, creator=creator)
        if options.json:
            echo_json([voice_json(v) for v in found])
        else:
            rows = [(v.name, v.description, v.creator_username, v.id) for v in found]
            table("Voices", ("name", "description", "creator", "id"), rows)
        return EXIT_OK

    return run_with_client(options, body)


@command("tts")
@click.argument("turn", required=False)
@click.option("--text", metavar="TEXT", help="Not offered by the service; see docs/cli.md.")
@click.option("--voice", required=True, metavar="ID", help="A voice id, or a voice's name.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def tts(options: Options, turn: str | None, text: str | None, voice: str, output: Path) -> int:
    """Save TURN read aloud by a voice as an MP3 file.

    TURN is CHAT_ID:TURN_ID, or CHAT_ID for the chat's latest character turn.
    """
    if text is not None:
        raise ValidationError(
            "the service reads only chat turns aloud (no free-text speech): pass a TURN"
        )
    if turn is None:
        raise click.UsageError("give a TURN (CHAT_ID or CHAT_ID:TURN_ID)")

    async def body(session: Session) -> int:
        found = await resolve_turn(session.client, turn)
        audio = await session.client.voices.tts_bytes(found, voice)
        await asyncio.to_thread(output.write_bytes, audio)
        if options.json:
            echo_json({"turn": turn_json(found), "file": str(output), "bytes": len(audio)})
        else:
            click.echo(f"saved {len(audio)} bytes to {output}")
        return EXIT_OK

    return run_with_client(options, body)
