"""``client.chats``: Chat V2 conversations. The reply rules live in the protocol core
(:mod:`caiclient.protocol.generation`), the socket I/O in :mod:`._exchange`."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime, timezone
from functools import partial
from typing import TypeVar

from .._core import ClientCore
from .._deadline import Deadline
from .._exchange import Frame, ReplyLocator, SocketCall
from .._ids import new_id, new_ids
from .._locks import KeyedLocks
from .._paging import cursor_pages
from .._validate import (
    candidate_id_of,
    chat_id_of,
    check_bool,
    check_character_turn,
    check_chat,
    check_id,
    check_model,
    check_rating,
    check_text,
    check_timeout,
    check_turn,
    turn_id_in,
    turn_ids_in,
)
from ..errors import ChatNotFound, NotFound, ProtocolError, ValidationError
from ..models import Candidate, Chat, Turn
from ..protocol import chats as chats_proto
from ..protocol import generation, neo
from ..protocol.http import Request
from ..protocol.stream import ReplyChunk

__all__ = ["AsyncChatsAPI"]

_EPOCH = datetime.min.replace(tzinfo=timezone.utc)

R = TypeVar("R")


class AsyncChatsAPI:
    """Chat V2 conversations (``client.chats``).

    Chats: ``create``, ``open``, ``get``, ``list``, ``recent``, ``rename``, ``archive``,
    ``unarchive``, ``copy``, ``set_model``. Messages: ``send``, ``stream``, ``regenerate``,
    ``stream_regenerate``, ``select``, ``edit``, ``pin``, ``unpin``, ``delete``, ``rate``,
    ``unrate``, ``history``, ``iter_history``. Calls that change one chat's turns (sends,
    swipes, edits, selections, pins, deletions) run one after another per chat; different
    chats run concurrently. Waiting for a chat's previous call counts against ``timeout``.
    """

    def __init__(self, core: ClientCore) -> None:
        self._core = core
        self._chat_locks = KeyedLocks()

    # --- chats ------------------------------------------------------------------------------

    async def create(
        self, character_id: str, *, greeting: bool = True, timeout: float | None = None
    ) -> tuple[Chat, Turn | None]:
        """Start a new chat with a character; return it and the greeting turn (if asked for).

        Raises CharacterNotFound for an unknown character, ValidationError for a malformed id.
        Cancelling is safe, but the chat may still be created on the server.
        """
        check_id(character_id, "character_id")
        request_id = new_id()
        chat_id = new_id()

        def frame(creator_id: str) -> bytes:
            return neo.create_chat(
                request_id=request_id,
                chat_id=chat_id,
                character_id=character_id,
                creator_id=creator_id,
                with_greeting=greeting,
            )

        exchange = generation.CreateChat(with_greeting=greeting)
        return await SocketCall(self._core, exchange, frame, request_id, timeout).result()

    async def open(self, character_id: str, *, timeout: float | None = None) -> Chat:
        """Your most recently active chat with a character, or a new one (with its greeting)
        when you have none. Archived chats are not picked.

        Read the conversation so far with :meth:`history`. Raises CharacterNotFound when a
        new chat is needed for an unknown character.
        """
        check_id(character_id, "character_id")
        chats = await self.recent(character_id, timeout=timeout)
        if chats:
            return chats[0]
        chat, _ = await self.create(character_id, timeout=timeout)
        return chat

    async def get(self, chat_id: str, *, timeout: float | None = None) -> Chat:
        """The chat with this id. Raises ChatNotFound (also for another account's chat)."""
        check_id(chat_id, "chat_id")
        request = chats_proto.get_chat(self._core.endpoints, chat_id)
        body = await self._core.call(request, timeout=timeout, not_found=ChatNotFound)
        chat = chats_proto.parse_chat(body)
        if chat is None:
            raise ProtocolError("the /chat/ answer has no chat")
        return chat

    async def list(self, character_id: str, *, timeout: float | None = None) -> builtins.list[Chat]:
        """Every chat you have with a character, archived ones included, newest first (by
        creation time; the server's own order is not reliable, §7.3)."""
        check_id(character_id, "character_id")
        request = chats_proto.list_chats(self._core.endpoints, character_id)
        chats = chats_proto.parse_chats(await self._core.call(request, timeout=timeout))
        return sorted(chats, key=lambda c: c.create_time or _EPOCH, reverse=True)

    async def recent(
        self, character_id: str | None = None, *, timeout: float | None = None
    ) -> builtins.list[Chat]:
        """Your recent chats, most recently active first; only those with one character
        when ``character_id`` is given. Archived chats are not listed."""
        if character_id is not None:
            check_id(character_id, "character_id")
        request = chats_proto.recent_chats(self._core.endpoints, character_id)
        return chats_proto.parse_chats(await self._core.call(request, timeout=timeout))

    async def _patch(
        self, chat: Chat | str, build: Callable[..., Request], *args: object, timeout: float | None
    ) -> Chat:
        """Send ``build(endpoints, chat_id, *args)``; return the chat the server answered
        with or, when its body has none, the chat read afresh."""
        chat_id = chat_id_of(chat)
        deadline = self._core.deadline(timeout)
        request = build(self._core.endpoints, chat_id, *args)
        body = await self._core.call(request, deadline=deadline, not_found=ChatNotFound)
        changed = chats_proto.parse_chat(body)
        if changed is not None:
            return changed
        return await self.get(chat_id, timeout=deadline.left("reading the changed chat"))

    async def rename(self, chat: Chat | str, name: str, *, timeout: float | None = None) -> Chat:
        """Give a chat a name; return the updated chat. Raises ChatNotFound."""
        check_text(name, "name")
        return await self._patch(chat, chats_proto.rename, name, timeout=timeout)

    async def archive(self, chat: Chat | str, *, timeout: float | None = None) -> Chat:
        """Archive a chat: it leaves the recent chats (and :meth:`open`). Archiving twice is
        harmless. Return the updated chat. Raises ChatNotFound."""
        return await self._patch(chat, chats_proto.archive, True, timeout=timeout)

    async def unarchive(self, chat: Chat | str, *, timeout: float | None = None) -> Chat:
        """Bring an archived chat back; return the updated chat. Raises ChatNotFound."""
        return await self._patch(chat, chats_proto.archive, False, timeout=timeout)

    async def set_model(
        self, chat: Chat | str, model: str, *, timeout: float | None = None
    ) -> Chat:
        """Choose the model that writes the chat's next replies, e.g. ``"MODEL_TYPE_SMART"``
        (§2.3 lists the known ones); return the updated chat. Raises ChatNotFound."""
        check_model(model)
        return await self._patch(chat, chats_proto.set_model, model, timeout=timeout)

    async def copy(
        self, chat: Chat | str, *, up_to: Turn | str, timeout: float | None = None
    ) -> Chat:
        """A new chat holding this chat's turns up to and including ``up_to`` (a Turn of
        this chat or a turn id). Raises ChatNotFound, or TurnNotFound for an unknown turn."""
        chat_id = chat_id_of(chat)
        turn_id = turn_id_in(chat_id, up_to, "up_to")
        deadline = self._core.deadline(timeout)
        request = chats_proto.copy_chat(self._core.endpoints, chat_id, turn_id)
        # Either the chat or the turn may be missing: the error's comment says which.
        body = await self._core.call(request, deadline=deadline, not_found=NotFound)
        new_chat_id = chats_proto.parse_new_chat_id(body)
        return await self.get(new_chat_id, timeout=deadline.left("reading the copy"))

    # --- sending ----------------------------------------------------------------------------

    def _reply(self, chat: Chat, text: str, timeout: float | None) -> SocketCall[Turn]:
        # Bytes or partials, not closures: thousands of these may wait at once, and every
        # closure cell is one more object for the garbage collector to walk.
        request_id, turn_id, candidate_id = new_ids(3)
        core = self._core
        user = core.cached_user
        frame: Frame = (
            partial(chats_proto.message_frame, request_id, chat, turn_id, candidate_id, text)
            if user is None
            else chats_proto.message_frame(request_id, chat, turn_id, candidate_id, text, user.id)
        )
        exchange = generation.Reply(own_turn_id=turn_id)
        lock = (self._chat_locks, chat.chat_id)
        locate = ReplyLocator(core, chat, turn_id)
        return SocketCall(core, exchange, frame, request_id, timeout, lock, locate)

    async def send(self, chat: Chat, text: str, *, timeout: float | None = None) -> Turn:
        """Send ``text`` and return the character's complete reply turn.

        ``turn.text`` is the reply. Messages to one chat are sent one after another; messages
        to different chats run concurrently. Raises ChatNotFound, Filtered, RateLimited,
        Timeout (no complete reply within ``timeout``) or Disconnected. An archived chat
        refuses messages (ServerError) until unarchived. Cancelling tells the server to stop
        generating; what it generated until then stays in the chat, marked ``aborted``.
        """
        check_chat(chat)
        check_text(text)
        return await self._reply(chat, text, timeout).result()

    def stream(
        self, chat: Chat, text: str, *, timeout: float | None = None, coalesce: bool = False
    ) -> AsyncIterator[ReplyChunk]:
        """Send ``text`` and iterate over the reply as it is generated.

        Each :class:`ReplyChunk` has ``.delta`` (new text), ``.text`` (all so far), ``.final``
        and ``.turn``; the deltas concatenate to the final text. Arguments are checked at once
        (ValidationError before any I/O); ``timeout`` bounds the whole reply. Leaving early
        (``break`` inside ``contextlib.aclosing(client.chats.stream(...))``, or cancelling)
        tells the server to stop generating and frees the chat at once; an iterator broken
        out of but kept unclosed frees it at its deadline. ``coalesce=True`` makes the frames
        that have already arrived when the next chunk is asked for one chunk (fewer, longer
        deltas, nothing held back: for a consumer that writes or repaints once per chunk).
        """
        check_chat(chat)
        check_text(text)
        check_timeout(timeout)
        return self._reply(chat, text, timeout).chunks(check_bool(coalesce, "coalesce"))

    def _regeneration(self, turn: Turn, timeout: float | None) -> SocketCall[Turn]:
        build = partial(
            neo.generate_turn_candidate,
            chat_id=turn.chat_id,
            turn_id=turn.turn_id,
            character_id=turn.author.author_id,
        )
        return self._on_turn(turn, generation.Reply(base=turn), build, timeout)

    async def regenerate(self, turn: Turn, *, timeout: float | None = None) -> Turn:
        """Generate another reply ("swipe") for a character turn and make it the primary one.

        Returns the turn with the new candidate first and primary (``turn.text`` is the new
        reply), followed by the candidates ``turn`` already had. Raises ValidationError for
        your own turns, TurnNotFound, ChatNotFound, RateLimited, Timeout. Cancelling tells
        the server to stop generating.
        """
        check_character_turn(turn, "regenerated")
        return await self._regeneration(turn, timeout).result()

    def stream_regenerate(
        self, turn: Turn, *, timeout: float | None = None, coalesce: bool = False
    ) -> AsyncIterator[ReplyChunk]:
        """Like :meth:`regenerate`, iterating over the new reply as it is generated (chunks
        and ``coalesce`` as in :meth:`stream`; the final chunk's ``turn`` is what
        ``regenerate`` returns)."""
        check_character_turn(turn, "regenerated")
        check_timeout(timeout)
        return self._regeneration(turn, timeout).chunks(check_bool(coalesce, "coalesce"))

    # --- changing turns ---------------------------------------------------------------------

    def _on_turn(
        self,
        turn: Turn,
        exchange: generation.Exchange[R],
        build: Callable[..., bytes],
        timeout: float | None,
    ) -> SocketCall[R]:
        """A request about one turn: ``build(request_id=...)`` makes its frame."""
        request_id = new_id()
        frame = build(request_id=request_id)
        lock = (self._chat_locks, turn.chat_id)
        return SocketCall(self._core, exchange, frame, request_id, timeout, lock)

    async def edit(self, turn: Turn, text: str, *, timeout: float | None = None) -> Turn:
        """Replace the text of a turn (yours or the character's).

        The edit becomes a new candidate, first and primary, with ``editor`` set and
        ``base_candidate_id`` naming the candidate it replaced; returns the updated turn.
        Raises TurnNotFound, ChatNotFound, Filtered.
        """
        check_turn(turn)
        check_text(text)
        build = partial(
            neo.edit_turn_candidate,
            chat_id=turn.chat_id,
            turn_id=turn.turn_id,
            candidate_id=candidate_id_of(turn, None),
            text=text,
        )
        return await self._on_turn(turn, generation.TurnChange(turn), build, timeout).result()

    async def select(
        self, turn: Turn, candidate: Candidate | str, *, timeout: float | None = None
    ) -> None:
        """Make one of a turn's candidates (swipes) the primary one; waits for the server's
        ``ok``. Raises TurnNotFound (also for an unknown candidate), ChatNotFound."""
        check_turn(turn)
        if candidate is None:
            raise ValidationError("candidate is required: a Candidate of the turn or its id")
        build = partial(
            neo.update_primary_candidate,
            chat_id=turn.chat_id,
            turn_id=turn.turn_id,
            candidate_id=candidate_id_of(turn, candidate),
        )
        await self._on_turn(turn, generation.Acknowledged(), build, timeout).result()

    async def pin(self, turn: Turn, *, timeout: float | None = None) -> Turn:
        """Pin a turn (a memory the character keeps in mind); return the updated turn.
        Raises TurnNotFound, ChatNotFound."""
        return await self._set_pin(turn, True, timeout)

    async def unpin(self, turn: Turn, *, timeout: float | None = None) -> Turn:
        """Unpin a turn; return the updated turn. Raises TurnNotFound, ChatNotFound."""
        return await self._set_pin(turn, False, timeout)

    async def _set_pin(self, turn: Turn, pinned: bool, timeout: float | None) -> Turn:
        check_turn(turn)
        build = partial(neo.set_turn_pin, chat_id=turn.chat_id, turn_id=turn.turn_id, pinned=pinned)
        return await self._on_turn(turn, generation.TurnChange(turn), build, timeout).result()

    async def delete(
        self,
        chat: Chat | str,
        turns: Turn | str | Iterable[Turn | str],
        *,
        timeout: float | None = None,
    ) -> None:
        """Delete turns from a chat: one Turn, one turn id, or a list of them (all of this
        chat). Ids the chat does not have are ignored. Raises ChatNotFound."""
        chat_id = chat_id_of(chat)
        turn_ids = turn_ids_in(chat_id, turns)
        deadline = self._core.deadline(timeout)
        request = chats_proto.remove_turns(self._core.endpoints, chat_id, turn_ids)
        lease = await self._chat_locks.acquire(chat_id, deadline)
        async with lease:
            await self._core.call(request, deadline=deadline, not_found=ChatNotFound)

    async def rate(
        self,
        turn: Turn,
        candidate: Candidate | str | None = None,
        *,
        stars: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """Rate a candidate of a character turn (its primary one by default) with
        ``stars`` (1–4) or a feedback ``label`` (``"funny"``, ``"not_boring"`` …, see
        ``RATING_LABELS``). Returns the annotation id (for :meth:`unrate`).
        Raises TurnNotFound, ChatNotFound."""
        check_turn(turn)
        candidate_id = candidate_id_of(turn, candidate)
        kind, value = check_rating(stars, label)
        endpoints = self._core.endpoints
        request = chats_proto.create_annotation(endpoints, turn.turn_key, candidate_id, kind, value)
        body = await self._core.call(request, timeout=timeout, not_found=NotFound)
        return chats_proto.parse_annotation_id(body)

    async def unrate(
        self,
        turn: Turn,
        annotation_id: str,
        candidate: Candidate | str | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """Withdraw a rating made with :meth:`rate`. Raises NotFound for an unknown one."""
        check_turn(turn)
        check_id(annotation_id, "annotation_id")
        candidate_id = candidate_id_of(turn, candidate)
        request = chats_proto.remove_annotation(
            self._core.endpoints, turn.turn_key, candidate_id, annotation_id
        )
        await self._core.call(request, timeout=timeout)

    # --- history ----------------------------------------------------------------------------

    async def history(
        self,
        chat: Chat | str,
        *,
        pinned_only: bool = False,
        all_candidates: bool = False,
        timeout: float | None = None,
    ) -> builtins.list[Turn]:
        """Every turn of a chat, oldest first (all pages are fetched).

        ``pinned_only`` keeps pinned turns only; ``all_candidates`` loads every candidate
        (swipe and edit) of each turn, newest first, instead of the primary one only.
        ``timeout`` bounds the whole call (all pages). Raises ChatNotFound for an unknown
        chat or one that belongs to another account, ProtocolError if the server repeats a
        page.
        """
        chat_id = chat_id_of(chat)
        deadline = self._core.deadline(timeout)
        turns: builtins.list[Turn] = []
        async for page in self._pages(chat_id, pinned_only, all_candidates, None, deadline):
            turns.extend(page)
        turns.reverse()
        return turns

    def iter_history(
        self,
        chat: Chat | str,
        *,
        pinned_only: bool = False,
        all_candidates: bool = False,
        timeout: float | None = None,
    ) -> AsyncIterator[builtins.list[Turn]]:
        """Iterate over a chat's history one page at a time, as the server pages it: the
        newest page first, each page a list of turns newest first. Pages are fetched as you
        iterate, so stopping early saves requests. ``timeout`` bounds each page; other
        arguments as in :meth:`history`."""
        chat_id = chat_id_of(chat)
        check_timeout(timeout)
        return self._pages(chat_id, pinned_only, all_candidates, timeout, None)

    def _pages(
        self,
        chat_id: str,
        pinned_only: bool,
        all_candidates: bool,
        timeout: float | None,
        deadline: Deadline | None,
    ) -> AsyncIterator[builtins.list[Turn]]:
        core = self._core

        async def fetch(cursor: str | None) -> tuple[builtins.list[Turn], str | None]:
            request = chats_proto.turns_page(
                core.endpoints,
                chat_id,
                cursor,
                pinned_only=pinned_only,
                all_candidates=all_candidates,
            )
            body = await core.call(
                request, timeout=timeout, deadline=deadline, not_found=ChatNotFound
            )
            return chats_proto.parse_turns_page(body)

        return cursor_pages(fetch, f"chat {chat_id}")
