from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .._core import ClientCore
from .._validate import check_chat, check_id, check_text, check_timeout
from ..errors import CharacterNotFound, ChatNotFound, ProtocolError
from ..models import Chat, Turn
from ..protocol import chats as chats_proto
from ..protocol import neo
from ..protocol.stream import ReplyAccumulator, ReplyChunk

__all__ = ["ChatsAPI"]

log = logging.getLogger("caiclient.chats")


def _new_id() -> str:
    return str(uuid.uuid4())


class _KeyedLocks:
    """One asyncio.Lock per key, forgotten again when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]


def _unexpected(event: neo.Event, during: str) -> Exception | None:
    """The error an event stands for while waiting for ``during``, or None to skip it."""
    if isinstance(event, (neo.ErrorFrame, neo.FilterFrame)):
        return neo.error_from_frame(event)
    if isinstance(event, neo.Malformed):
        return neo.error_from_malformed(event)
    log.debug("ignored %s while waiting for %s", type(event).__name__, during)
    return None


class ChatsAPI:
    """Chat V2 conversations (``client.chats``): create, send, stream, history."""

    def __init__(self, core: ClientCore) -> None:
        self._core = core
        self._chat_locks = _KeyedLocks()

    async def create(
        self, character_id: str, *, greeting: bool = True, timeout: float | None = None
    ) -> tuple[Chat, Turn | None]:
        """Start a new chat with a character; return it and the greeting turn (if asked for).

        Raises CharacterNotFound for an unknown character, ValidationError for a malformed id.
        Cancelling is safe, but the chat may still be created on the server.
        """
        check_id(character_id, "character_id")
        check_timeout(timeout)
        core = self._core
        deadline = core.deadline(timeout)
        user = await core.user(timeout=timeout)
        request_id = _new_id()
        frame = neo.create_chat(
            request_id=request_id,
            chat_id=_new_id(),
            character_id=character_id,
            creator_id=user.id,
            with_greeting=greeting,
        )
        chat: Chat | None = None
        async with await core.socket.subscribe(request_id) as inbox:
            await inbox.send(frame)
            while True:
                event = await inbox.next(deadline)
                if isinstance(event, neo.ChatCreated):
                    chat = event.chat
                    if not greeting:
                        return chat, None
                elif isinstance(event, (neo.AddTurn, neo.UpdateTurn)) and chat is not None:
                    if event.turn.is_final:
                        return chat, event.turn
                elif (error := _unexpected(event, "create_chat_response")) is not None:
                    if isinstance(error, ChatNotFound):
                        raise CharacterNotFound(str(error)) from None
                    raise error

    async def send(self, chat: Chat, text: str, *, timeout: float | None = None) -> Turn:
        """Send ``text`` and return the character's complete reply turn.

        ``turn.text`` is the reply. Messages to one chat are sent one after another; messages
        to different chats run concurrently. Raises ChatNotFound, Filtered, RateLimited,
        Timeout (no complete reply within ``timeout``) or Disconnected.
        """
        check_chat(chat)
        check_text(text)
        check_timeout(timeout)
        last: ReplyChunk | None = None
        async for chunk in self._generate(chat, text, timeout):
            last = chunk
        if last is None:  # pragma: no cover - _generate always ends with a final chunk
            raise ProtocolError("the reply ended without a final frame")
        return last.turn

    def stream(
        self, chat: Chat, text: str, *, timeout: float | None = None
    ) -> AsyncIterator[ReplyChunk]:
        """Send ``text`` and iterate over the reply as it is generated.

        Each :class:`ReplyChunk` has ``.delta`` (new text), ``.text`` (all so far), ``.final``
        and ``.turn``; the deltas concatenate to the final text. Arguments are checked at once
        (ValidationError before any I/O); ``timeout`` bounds the whole reply. To stop early
        and release the request at once, use ``contextlib.aclosing(client.chats.stream(...))``.
        """
        check_chat(chat)
        check_text(text)
        check_timeout(timeout)
        return self._generate(chat, text, timeout)

    async def _generate(
        self, chat: Chat, text: str, timeout: float | None
    ) -> AsyncIterator[ReplyChunk]:
        core = self._core
        deadline = core.deadline(timeout)
        user = await core.user(timeout=timeout)
        request_id, turn_id = _new_id(), _new_id()
        frame = neo.create_and_generate_turn(
            request_id=request_id,
            chat_id=chat.chat_id,
            character_id=chat.character_id,
            turn_id=turn_id,
            candidate_id=_new_id(),
            author_id=user.id,
            text=text,
        )
        accumulator = ReplyAccumulator()
        async with (
            self._chat_locks.hold(chat.chat_id),
            await core.socket.subscribe(request_id) as inbox,
        ):
            await inbox.send(frame)
            while not accumulator.final:
                event = await inbox.next(deadline)
                if isinstance(event, (neo.AddTurn, neo.UpdateTurn)):
                    if event.turn.turn_key.turn_id == turn_id:
                        continue  # The echo of our own message.
                    chunk = accumulator.feed(event.turn)
                    if chunk is not None:
                        yield chunk
                elif (error := _unexpected(event, "the reply")) is not None:
                    raise error

    async def history(self, chat: Chat | str, *, timeout: float | None = None) -> list[Turn]:
        """Every turn of a chat, oldest first (all pages are fetched).

        ``timeout`` applies to each page. Raises ChatNotFound for an unknown chat or one that
        belongs to another account.
        """
        chat_id = chat.chat_id if isinstance(chat, Chat) else check_id(chat, "chat")
        check_timeout(timeout)
        turns: list[Turn] = []
        token: str | None = None
        while True:
            request = chats_proto.turns_page(self._core.endpoints, chat_id, token)
            body = await self._core.call(request, timeout=timeout, not_found=ChatNotFound)
            page, token = chats_proto.parse_turns_page(body)
            turns.extend(page)
            if not page or token is None:
                break
        turns.reverse()
        return turns

    async def recent(
        self, character_id: str | None = None, *, timeout: float | None = None
    ) -> list[Chat]:
        """Your recent chats, most recently active first; only those with one character
        when ``character_id`` is given."""
        if character_id is not None:
            check_id(character_id, "character_id")
        check_timeout(timeout)
        request = chats_proto.recent_chats(self._core.endpoints, character_id)
        return chats_proto.parse_chats(await self._core.call(request, timeout=timeout))
