"""The interactive ``cai chat``: prompt_toolkit for the line editor, rich for the replies.

Replies stream as Markdown. Ctrl-C during a reply cancels the streaming task (the client
then tells the service to stop) and returns to the prompt; Ctrl-C or Ctrl-D at the prompt
quits. A message that fails is put back into the prompt, so nothing typed is lost.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import HTML
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.markup import escape

from ..errors import CaiError, PersonaNotFound, ValidationError
from ..models import Candidate, Turn
from ._app import EXIT_OK, Session, closing, describe_error, on_sigint
from ._output import turn_json

if TYPE_CHECKING:
    from ..models import Character, Chat
    from ..protocol.stream import ReplyChunk

__all__ = ["SLASH_COMMANDS", "Repl"]

SLASH_COMMANDS: dict[str, str] = {
    "/swipe": "another reply to your last message",
    "/next": "show the next candidate of the last reply",
    "/prev": "show the previous candidate of the last reply",
    "/select": "N: make candidate N of the last reply the one kept",
    "/edit": "edit your last message and regenerate the reply",
    "/undo": "remove the last exchange (your message and the reply)",
    "/delete": "N: delete turn N (1 = the newest, as /history numbers them)",
    "/pin": "[N]: pin or unpin turn N (default 1, the newest)",
    "/history": "[N]: show the last N turns (default 10)",
    "/new": "start a new chat with this character",
    "/chats": "list your chats with this character and switch",
    "/persona": "[NAME|none]: who you are with this character",
    "/model": "[NAME]: the model writing replies (fast, balanced, smart, …)",
    "/tts": "[VOICE]: speak the last reply (saved as MP3; played if a player exists)",
    "/export": "FILE: this chat as Markdown, or JSON lines for .jsonl/.json",
    "/help": "this list",
    "/quit": "leave (also Ctrl-D)",
}
_PLAYERS: tuple[tuple[str, list[str]], ...] = (
    ("mpv", ["--no-video", "--really-quiet"]),
    ("ffplay", ["-nodisp", "-autoexit", "-loglevel", "quiet"]),
    ("mpg123", ["-q"]),
    ("afplay", []),
    ("paplay", []),
)
_QUIT = object()


class _SlashCompleter(Completer):
    """Completes slash commands at the start of the line."""

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        text = document.text_before_cursor
        if not text.startswith("/") or " " in text:
            return
        for name, help_text in SLASH_COMMANDS.items():
            if name.startswith(text):
                yield Completion(name, start_position=-len(text), display_meta=help_text)


def _history(profile: str) -> History:
    from ..profiles import data_dir

    path = data_dir() / "history" / f"{profile}.txt"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
    except OSError:
        return InMemoryHistory()  # An unwritable data folder must not stop the chat.
    return FileHistory(str(path))


def _bindings() -> KeyBindings:
    keys = KeyBindings()

    @keys.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        """Alt-Enter (or Esc, Enter) starts a new line; Enter sends."""
        event.current_buffer.insert_text("\n")

    return keys


def _by_age(turn: Turn) -> list[Candidate]:
    return sorted(turn.candidates, key=lambda c: (c.create_time is None, c.create_time or 0))


class Repl:
    """One interactive chat session with one character (the chat may change: /new, /chats)."""

    def __init__(self, session: Session, chat: Chat, character: Character) -> None:
        self.session = session
        self.client = session.client
        self.chat = chat
        self.character = character
        self.console = Console(highlight=False)
        self.recent: list[Turn] = []  # The newest turns, newest first.
        self.pending = ""  # Put back into the prompt after a failed send.
        self.prompt: PromptSession[str] = PromptSession(
            history=_history(session.options.profile),
            completer=_SlashCompleter(),
            key_bindings=_bindings(),
            complete_while_typing=True,
        )

    # --- the loop ------------------------------------------------------------------------

    async def run(self, *, show_last: int = 6) -> int:
        self.console.print(
            f"Chatting with [bold]{escape(self.character.name)}[/] "
            f"(chat {self.chat.chat_id}). /help lists commands; Ctrl-D quits."
        )
        await self._refresh(max(show_last, 2))
        self._show(list(reversed(self.recent[:show_last])))
        while True:
            try:
                text = await self.prompt.prompt_async(HTML("<b>you&gt;</b> "), default=self.pending)
            except (KeyboardInterrupt, EOFError):
                return EXIT_OK
            self.pending = ""
            if not text.strip():
                continue
            if text.startswith("/") and not text.startswith("//"):
                if await self._guard(self._command(text)) is _QUIT:
                    return EXIT_OK
                continue
            message = text[1:] if text.startswith("//") else text
            if await self._guard(self._send(message)) is None:
                self.pending = text  # Failed: nothing typed is lost.

    async def _guard(self, action: Awaitable[Any]) -> Any:
        """Run a command; a CaiError becomes one line and the chat goes on. None = failed."""
        try:
            result = await action
        except ValidationError as exc:
            self.console.print(f"[red]{escape(str(exc))}[/]")
            return None
        except CaiError as exc:
            self.console.print(f"[red]{escape(describe_error(exc))}[/]")
            return None
        return True if result is None else result

    # --- showing turns -------------------------------------------------------------------

    def _show(self, turns: Iterable[Turn], *, numbered: bool = False) -> None:
        shown = list(turns)
        for number, turn in zip(range(len(shown), 0, -1), shown, strict=True):
            label = f"{number}. " if numbered else ""
            pin = " 📌" if turn.is_pinned else ""
            style = "green" if turn.is_human else "cyan"
            self.console.print(f"[bold {style}]{label}{escape(turn.author.name)}[/]{pin}")
            self.console.print(Markdown(turn.text or "…"))

    async def _refresh(self, at_least: int = 2) -> None:
        turns: list[Turn] = []
        async for page in self.client.chats.iter_history(self.chat):
            turns.extend(page)
            if len(turns) >= at_least:
                break
        self.recent = turns

    @property
    def last_reply(self) -> Turn | None:
        if self.recent and not self.recent[0].is_human:
            return self.recent[0]
        return None

    @property
    def last_user(self) -> Turn | None:
        for turn in self.recent[:2]:
            if turn.is_human:
                return turn
        return None

    # --- streaming -----------------------------------------------------------------------

    async def _stream(self, stream: AsyncIterator[ReplyChunk]) -> Turn | None:
        """Show a reply as it streams; None when Ctrl-C stopped it."""
        task = asyncio.ensure_future(self._render(stream))
        stats = self.client.stats
        before = (stats.reconnects, stats.recovered_replies, stats.resent_messages)
        stopped: list[bool] = []

        def stop() -> None:
            stopped.append(True)
            task.cancel()

        with on_sigint(stop):
            try:
                turn = await task
            except asyncio.CancelledError:
                if not stopped:
                    raise  # We are being cancelled ourselves, not by Ctrl-C.
                self.console.print("[yellow](stopped)[/]")
                return None
        stats = self.client.stats
        if (stats.reconnects, stats.recovered_replies, stats.resent_messages) != before:
            self.console.print("[dim](the connection dropped and was reopened; nothing lost)[/]")
        return turn

    async def _render(self, stream: AsyncIterator[ReplyChunk]) -> Turn:
        self.console.print(f"[bold cyan]{escape(self.character.name)}[/]")
        final: Turn | None = None
        with Live(
            Markdown("…"), console=self.console, refresh_per_second=15, vertical_overflow="visible"
        ) as live:
            async with closing(stream):
                async for chunk in stream:
                    live.update(Markdown(chunk.text or "…"))
                    if chunk.final:
                        final = chunk.turn
        if final is None:  # pragma: no cover - streams end with a final chunk
            raise ValidationError("the reply ended without a final frame")
        return final

    async def _send(self, text: str) -> None:
        await self._stream(self.client.chats.stream(self.chat, text, coalesce=True))
        await self._refresh()

    # --- slash commands ------------------------------------------------------------------

    async def _command(self, line: str) -> Any:
        name, _, argument = line.strip().partition(" ")
        handler = self._handlers().get(name)
        if handler is None:
            raise ValidationError(f"unknown command {name}; /help lists them")
        return await handler(argument.strip())

    def _handlers(self) -> dict[str, Callable[[str], Awaitable[Any]]]:
        return {
            "/swipe": self._swipe,
            "/next": lambda _: self._step(+1),
            "/prev": lambda _: self._step(-1),
            "/select": self._select,
            "/edit": self._edit,
            "/undo": self._undo,
            "/delete": self._delete,
            "/pin": self._pin,
            "/history": self._history,
            "/new": self._new,
            "/chats": self._chats,
            "/persona": self._persona,
            "/model": self._model,
            "/tts": self._tts,
            "/export": self._export,
            "/help": self._help,
            "/quit": self._quit,
        }

    async def _help(self, _: str) -> None:
        for name, text in SLASH_COMMANDS.items():
            self.console.print(f"  [bold]{name:<9}[/] {escape(text)}")
        self.console.print("  Alt-Enter starts a new line; a line starting // sends a literal /.")

    async def _quit(self, _: str) -> object:
        return _QUIT

    async def _need_reply(self) -> Turn:
        await self._refresh()  # A stopped reply may have been stored since.
        reply = self.last_reply
        if reply is None:
            raise ValidationError("there is no reply from the character to work on yet")
        return reply

    async def _swipe(self, _: str) -> None:
        reply = await self._need_reply()
        turn = await self._stream(self.client.chats.stream_regenerate(reply, coalesce=True))
        await self._refresh()
        if turn is not None:
            self.console.print(f"[dim](candidate {len(turn.candidates)} of this reply)[/]")

    async def _with_candidates(self) -> Turn:
        reply = await self._need_reply()
        async for page in self.client.chats.iter_history(self.chat, all_candidates=True):
            for turn in page:
                if turn.turn_id == reply.turn_id:
                    return turn
            break
        return reply

    async def _choose(self, turn: Turn, index: int) -> None:
        ordered = _by_age(turn)
        if not 0 <= index < len(ordered):
            raise ValidationError(f"the last reply has candidates 1 to {len(ordered)}")
        chosen = ordered[index]
        await self.client.chats.select(turn, chosen)
        self.console.print(
            f"[bold cyan]{escape(turn.author.name)}[/] [dim]({index + 1}/{len(ordered)})[/]"
        )
        self.console.print(Markdown(chosen.raw_content or "…"))
        self.recent[0] = msgspec.structs.replace(turn, primary_candidate_id=chosen.candidate_id)

    async def _step(self, step: int) -> None:
        turn = await self._with_candidates()
        ordered = _by_age(turn)
        current = next(
            (i for i, c in enumerate(ordered) if c.candidate_id == turn.primary_candidate_id), 0
        )
        target = current + step
        if not 0 <= target < len(ordered):
            edge = "last" if step > 0 else "first"
            raise ValidationError(f"this is the {edge} candidate ({current + 1}/{len(ordered)})")
        await self._choose(turn, target)

    async def _select(self, argument: str) -> None:
        if not argument.isdigit():
            raise ValidationError("/select needs a candidate number, e.g. /select 2")
        await self._choose(await self._with_candidates(), int(argument) - 1)

    async def _edit(self, _: str) -> None:
        mine = self.last_user
        if mine is None:
            raise ValidationError("you have no message to edit yet")
        reply = self.last_reply
        text = await self.prompt.prompt_async(HTML("<b>edit&gt;</b> "), default=mine.text)
        if not text.strip() or text == mine.text:
            self.console.print("[dim](unchanged)[/]")
            return
        await self.client.chats.edit(mine, text)
        if reply is not None:
            await self._stream(self.client.chats.stream_regenerate(reply, coalesce=True))
        await self._refresh()

    async def _undo(self, _: str) -> None:
        exchange = [t for t in (self.last_reply, self.last_user) if t is not None]
        if not exchange:
            raise ValidationError("nothing to undo")
        await self.client.chats.delete(self.chat, exchange)
        await self._refresh()
        self.console.print(f"[dim](removed {len(exchange)} turns)[/]")

    async def _numbered(self, argument: str, default: int | None = None) -> Turn:
        if not argument and default is not None:
            number = default
        elif argument.isdigit() and int(argument) >= 1:
            number = int(argument)
        else:
            raise ValidationError("give a turn number (1 = the newest; see /history)")
        await self._refresh(number)
        if number > len(self.recent):
            raise ValidationError(f"the chat has only {len(self.recent)} turns")
        return self.recent[number - 1]

    async def _delete(self, argument: str) -> None:
        turn = await self._numbered(argument)
        await self.client.chats.delete(self.chat, turn)
        await self._refresh()
        self.console.print(f"[dim](deleted: {escape(turn.text[:60])})[/]")

    async def _pin(self, argument: str) -> None:
        turn = await self._numbered(argument, default=1)
        if turn.is_pinned:
            await self.client.chats.unpin(turn)
        else:
            await self.client.chats.pin(turn)
        await self._refresh()
        self.console.print(f"[dim]({'unpinned' if turn.is_pinned else 'pinned'})[/]")

    async def _history(self, argument: str) -> None:
        count = int(argument) if argument.isdigit() and int(argument) > 0 else 10
        await self._refresh(count)
        self._show(reversed(self.recent[:count]), numbered=True)

    async def _open(self, chat: Chat) -> None:
        self.chat = chat
        await self._refresh(6)
        self.console.print(f"[dim](chat {chat.chat_id})[/]")
        self._show(reversed(self.recent[:6]))

    async def _new(self, _: str) -> None:
        chat, _greeting = await self.client.chats.create(self.character.id)
        await self._open(chat)

    async def _chats(self, _: str) -> None:
        chats = await self.client.chats.list(self.character.id)
        for number, chat in enumerate(chats, 1):
            mark = "*" if chat.chat_id == self.chat.chat_id else " "
            when = chat.create_time.strftime("%Y-%m-%d %H:%M") if chat.create_time else ""
            archived = " (archived)" if chat.is_archived else ""
            self.console.print(f" {mark}{number}. {escape(chat.name or '')} {when}{archived}")
        answer = await self.prompt.prompt_async("switch to (number, Enter stays): ")
        if answer.strip().isdigit() and 1 <= int(answer) <= len(chats):
            await self._open(chats[int(answer) - 1])

    async def _persona(self, argument: str) -> None:
        client = self.client
        mine = await client.personas.list()
        if not argument:
            settings = await client.account.settings()
            current = settings.persona_overrides.get(self.character.id)
            for persona in mine:
                mark = "*" if persona.id == current else " "
                self.console.print(f" {mark} {escape(persona.name)}")
            return
        if argument.lower() == "none":
            await client.personas.set_for_character(self.character.id, None)
            self.console.print("[dim](no persona with this character)[/]")
            return
        for persona in mine:
            if persona.name.casefold() == argument.casefold() or persona.id == argument:
                await client.personas.set_for_character(self.character.id, persona)
                self.console.print(f"[dim](you are {escape(persona.name)} here now)[/]")
                return
        raise PersonaNotFound(f"no persona {argument!r}; /persona lists yours")

    async def _model(self, argument: str) -> None:
        if not argument:
            self.console.print(f"model: {self.chat.preferred_model_type or 'the default'}")
            return
        name = argument.upper()
        model = name if name.startswith("MODEL_TYPE_") else f"MODEL_TYPE_{name}"
        self.chat = await self.client.chats.set_model(self.chat, model)
        self.console.print(f"[dim](model {model})[/]")

    async def _tts(self, argument: str) -> None:
        from ..profiles import data_dir

        reply = await self._need_reply()
        audio = await self.client.voices.tts_bytes(reply, argument or None)
        path = data_dir() / "audio" / f"{reply.chat_id}_{reply.turn_id}.mp3"
        await asyncio.to_thread(_write_private, path, audio)
        self.console.print(f"[dim](saved {path})[/]")
        await self._play(path)

    async def _play(self, path: Path) -> None:
        for program, arguments in _PLAYERS:
            found = shutil.which(program)
            if found is None:
                continue
            player = await asyncio.create_subprocess_exec(
                found,
                *arguments,
                str(path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            waiting = asyncio.ensure_future(player.wait())
            with on_sigint(waiting.cancel):
                try:
                    await waiting
                except asyncio.CancelledError:
                    player.kill()
                    await player.wait()
            return
        self.console.print("[dim](no audio player found: mpv, ffplay, mpg123, afplay, paplay)[/]")

    async def _export(self, argument: str) -> None:
        if not argument:
            raise ValidationError("/export needs a file name, e.g. /export chat.md")
        path = Path(argument)
        if await asyncio.to_thread(path.exists):
            raise ValidationError(f"{path} exists; choose another name (nothing was written)")
        turns = await self.client.chats.history(self.chat)
        if path.suffix.lower() in (".json", ".jsonl"):
            body = "".join(json.dumps(turn_json(t), ensure_ascii=False) + "\n" for t in turns)
        else:
            title = self.chat.name or f"Chat with {self.character.name}"
            body = f"# {title}\n\n" + "".join(f"**{t.author.name}**: {t.text}\n\n" for t in turns)
        await asyncio.to_thread(path.write_text, body, encoding="utf-8")
        self.console.print(f"[dim](wrote {len(turns)} turns to {path})[/]")


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_bytes(data)
