"""``cai chat CHARACTER``: the terminal chat (see ``_repl.py``), or a filter without a terminal.

As a filter each stdin line is one message and each reply goes to stdout as it streams
(``--json``: one object per reply); ``--once TEXT`` sends one message and exits.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import click

from ..errors import ValidationError
from ._app import EXIT_OK, Options, Session, closing, command, run_with_client
from ._output import echo_json, turn_json
from ._resolve import parse_reference, resolve_character

if TYPE_CHECKING:
    from ..client import AsyncClient
    from ..models import Character, Chat

__all__ = ["chat", "open_chat", "send_filtered"]


async def open_chat(
    client: AsyncClient,
    character: str | None,
    *,
    new: bool,
    chat_id: str | None,
    interactive: bool,
) -> tuple[Chat, Character]:
    """The chat to talk in: ``--chat ID``, a URL's ``hist=``, a new one (``--new``), or the
    latest with the character (a new one when there is none)."""
    if chat_id is None and character is not None:
        chat_id = parse_reference(character).chat_id
    if chat_id is not None:
        if new:
            raise ValidationError("--new and --chat (or a chat URL) cannot be combined")
        found = await client.chats.get(chat_id)
        return found, await client.characters.info(found.character_id)
    if character is None:
        raise click.UsageError("name a CHARACTER (an id, a character.ai URL or a name)")
    who = await resolve_character(client, character, interactive=interactive)
    if not new:
        recent = await client.chats.recent(who.id)
        if recent:
            return recent[0], who
    made, _greeting = await client.chats.create(who.id)
    return made, who


async def send_filtered(client: AsyncClient, chat: Chat, text: str, as_json: bool) -> None:
    """One message of the filter: the reply streamed to stdout (or one JSON object)."""
    stream = client.chats.stream(chat, text, coalesce=True)  # One write per batch of frames.
    async with closing(stream):
        async for chunk in stream:
            if as_json:
                if chunk.final:
                    echo_json(turn_json(chunk.turn))
                continue
            if chunk.rewritten:
                sys.stdout.write(f"\n[rewritten] {chunk.text}")
            sys.stdout.write(chunk.delta)
            sys.stdout.flush()
    if not as_json:
        sys.stdout.write("\n")
        sys.stdout.flush()


async def _filter(session: Session, chat: Chat) -> int:
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return EXIT_OK
        text = line.rstrip("\r\n")
        if text.strip():
            await send_filtered(session.client, chat, text, session.options.json)


@command("chat")
@click.argument("character", required=False)
@click.option("--new", is_flag=True, help="Start a new chat instead of resuming the latest.")
@click.option("--chat", "chat_id", metavar="ID", help="Open this chat.")
@click.option("--once", metavar="TEXT", help="Send one message, print the reply, exit.")
@click.option(
    "--last",
    type=click.IntRange(min=0),
    default=6,
    show_default=True,
    help="Turns shown when the chat opens (terminal only).",
)
@click.pass_obj
def chat(
    options: Options,
    character: str | None,
    new: bool,
    chat_id: str | None,
    once: str | None,
    last: int,
) -> int:
    """Chat with CHARACTER: an id, a character.ai chat or character URL, or a name.

    In a terminal: streamed Markdown replies, a line editor with history, and slash
    commands (/help lists them). Otherwise a filter: each stdin line is a message and each
    reply goes to stdout; --once TEXT sends one message; --json prints one object per reply.
    """
    interactive = once is None and sys.stdin.isatty() and sys.stdout.isatty()

    async def body(session: Session) -> int:
        found, who = await open_chat(
            session.client, character, new=new, chat_id=chat_id, interactive=interactive
        )
        if once is not None:
            await send_filtered(session.client, found, once, options.json)
            return EXIT_OK
        if not interactive:
            return await _filter(session, found)
        from ._repl import Repl

        return await Repl(session, found, who).run(show_last=last)

    return run_with_client(options, body)
