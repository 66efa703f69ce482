"""``cai demo``: a conversation with a seeded character on an in-process emulator."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

import click

from ..client import AsyncClient
from ..endpoints import Endpoints
from ..errors import CaiError
from ..models import Chat

__all__ = ["SCRIPT", "demo", "run_demo"]

SCRIPT = (
    "Hello! Who are you?",
    "What should I read this winter?",
    "Thank you, goodbye!",
)


async def _reply(client: AsyncClient, chat: Chat, name: str, text: str, out: TextIO) -> None:
    out.write(f"{name}> ")
    out.flush()
    async for chunk in client.chats.stream(chat, text):
        out.write(chunk.delta)
        out.flush()
    out.write("\n\n")


async def _ask(prompt: str) -> str | None:
    try:
        line = await asyncio.to_thread(input, prompt)
    except EOFError:
        return None
    return line.strip() or None


async def run_demo(
    *, character: str = "Sage", interactive: bool = False, out: TextIO | None = None
) -> int:
    """Start an emulator, chat with ``character``; scripted unless ``interactive``."""
    from ..emulator import Emulator

    out = out or sys.stdout
    async with Emulator(chunk_delay=0.02) as emu:
        names = [c.name for c in emu.characters]
        if character not in names:
            print(f"no character {character!r}; choose one of {', '.join(names)}", file=sys.stderr)
            return 2
        seed = emu.character(character)
        async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client:
            me = await client.account.me()
            chat, greeting = await client.chats.create(seed.id)
            out.write(f"Emulator at {emu.url}; you are {me.name}, chatting with {seed.name}.\n")
            if interactive:
                out.write("Type a message and press Enter; an empty line quits.\n")
            out.write("\n")
            if greeting is not None:
                out.write(f"{seed.name}> {greeting.text}\n\n")
            try:
                if interactive:
                    while (text := await _ask("you> ")) is not None:
                        await _reply(client, chat, seed.name, text, out)
                else:
                    for text in SCRIPT:
                        out.write(f"you> {text}\n")
                        await _reply(client, chat, seed.name, text, out)
            except CaiError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
    return 0


@click.command("demo")
@click.option("--character", default="Sage", show_default=True, help="Seeded character's name.")
@click.option(
    "--script", is_flag=True, help="Run the scripted conversation even when stdin is a terminal."
)
def demo(character: str, script: bool) -> int:
    """Chat with a character on a built-in emulator (no account or network needed)."""
    from ._app import run

    interactive = sys.stdin.isatty() and not script
    return run(run_demo(character=character, interactive=interactive))
