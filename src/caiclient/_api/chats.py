from __future__ import annotations

import asyncio
import builtins
import dataclasses
import logging
import os
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime, timezone
from typing import TypeVar

import msgspec

from .._core import ClientCore
from .._validate import check_chat, check_id, check_text, check_timeout
from ..errors import (
    CaiError,
    CharacterNotFound,
    ChatNotFound,
    Disconnected,
    NotFound,
    ProtocolError,
    RateLimited,
    ServerError,
    TransportError,
    ValidationError,
)
from ..models import Candidate, Chat, Turn
from ..protocol import chats as chats_proto
from ..protocol import neo
from ..protocol.stream import ReplyAccumulator, ReplyChunk

__all__ = ["RATING_LABELS", "ChatsAPI"]

log = logging.getLogger("caiclient.chats")

R = TypeVar("R")

# The feedback labels of the web client (the ``previous_annotations`` counters, §8.5).
RATING_LABELS = frozenset(
    f"{prefix}{name}" for prefix in ("", "not_") for name in neo.ANNOTATION_COUNTERS
)
_MODEL_TYPE = re.compile(r"MODEL_TYPE_[A-Z0-9_]+")
_EPOCH = datetime.min.replace(tzinfo=timezone.utc)


def _new_id() -> str:
    """A random UUIDv4 string, formatted directly (3x faster than ``str(uuid.uuid4())``)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _KeyedLocks:
    """A first-come-first-served lock per key, forgotten when nobody holds or awaits it.

    Hand-rolled rather than ``asyncio.Lock`` per key: on the hot path (nobody else sending
    to that chat) taking and releasing it allocates nothing but one deque.
    """

    def __init__(self) -> None:
        # key -> [holder marker, waiters…]; the head of the deque holds the lock.
        self._queues: dict[str, deque[asyncio.Future[None] | None]] = {}

    def hold(self, key: str) -> _Held:
        return _Held(self, key)

    async def acquire(self, key: str) -> None:
        queue = self._queues.get(key)
        if queue is None:
            self._queues[key] = deque((None,))
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(key)  # Handed the lock just as we were cancelled: pass it on.
            else:
                queue.remove(waiter)
            raise

    def release(self, key: str) -> None:
        queue = self._queues[key]
        queue.popleft()
        while queue:
            waiter = queue[0]
            if waiter is not None and not waiter.done():
                waiter.set_result(None)  # It holds the lock now, at the head.
                return
            queue.popleft()
        del self._queues[key]


class _Held:
    __slots__ = ("_key", "_locks")

    def __init__(self, locks: _KeyedLocks, key: str) -> None:
        self._locks = locks
        self._key = key

    async def __aenter__(self) -> None:
        await self._locks.acquire(self._key)

    async def __aexit__(self, *exc_info: object) -> None:
        self._locks.release(self._key)


def _unexpected(event: neo.Event, during: str) -> Exception | None:
    """The error an event stands for while waiting for ``during``, or None to skip it."""
    if isinstance(event, (neo.ErrorFrame, neo.FilterFrame)):
        return neo.error_from_frame(event)
    if isinstance(event, neo.Malformed):
        return neo.error_from_malformed(event)
    log.debug("ignored %s while waiting for %s", type(event).__name__, during)
    return None


# --- argument checks (before any I/O) --------------------------------------------------------


def _chat_id(chat: object) -> str:
    if isinstance(chat, Chat):
        return check_id(chat.chat_id, "chat.chat_id")
    if isinstance(chat, str):
        return check_id(chat, "chat")
    raise ValidationError(f"chat must be a Chat or a chat id, got {type(chat).__name__}")


def _check_turn(turn: object) -> Turn:
    if not isinstance(turn, Turn):
        hint = " (load turns with client.chats.history)" if isinstance(turn, str) else ""
        raise ValidationError(f"turn must be a Turn, got {type(turn).__name__}{hint}")
    check_id(turn.chat_id, "turn.chat_id")
    check_id(turn.turn_id, "turn.turn_id")
    return turn


def _check_character_turn(turn: object, action: str) -> Turn:
    turn = _check_turn(turn)
    if turn.is_human:
        raise ValidationError(f"only character turns can be {action}; this turn is yours")
    check_id(turn.author.author_id, "turn.author.author_id")
    return turn


def _turn_id_in(chat_id: str, turn: object, what: str) -> str:
    """The id of ``turn`` (a Turn or a turn id), which must belong to chat ``chat_id``."""
    if isinstance(turn, Turn):
        if turn.chat_id != chat_id:
            raise ValidationError(
                f"{what} belongs to chat {turn.chat_id!r}, not to chat {chat_id!r}"
            )
        return check_id(turn.turn_id, f"{what}.turn_id")
    if isinstance(turn, str):
        return check_id(turn, what)
    raise ValidationError(f"{what} must be a Turn or a turn id, got {type(turn).__name__}")


def _turn_ids(chat_id: str, turns: object) -> builtins.list[str]:
    items = [turns] if isinstance(turns, (Turn, str)) else turns
    if not isinstance(items, Iterable):
        raise ValidationError(
            f"turns must be a Turn, a turn id or a list of them, got {type(turns).__name__}"
        )
    ids = [_turn_id_in(chat_id, item, "turn") for item in items]
    if not ids:
        raise ValidationError("no turns given; nothing to delete")
    return ids


def _candidate_id(turn: Turn, candidate: object) -> str:
    if candidate is None:
        primary = turn.primary
        if primary is None:
            raise ValidationError("the turn has no candidate; pass candidate=... explicitly")
        return check_id(primary.candidate_id, "candidate_id")
    if isinstance(candidate, Candidate):
        return check_id(candidate.candidate_id, "candidate.candidate_id")
    return check_id(candidate, "candidate")


def _check_model(model: object) -> str:
    if not isinstance(model, str):
        raise ValidationError(f"model must be a str, got {type(model).__name__}")
    if not _MODEL_TYPE.fullmatch(model):
        raise ValidationError(
            f"model {model!r} is not a model type; use a name like 'MODEL_TYPE_SMART'"
        )
    return model


def _rating(stars: object, label: object) -> tuple[str, int]:
    """The annotation type and value for ``stars`` (1–4) or ``label`` (exactly one)."""
    if (stars is None) == (label is None):
        raise ValidationError("rate() takes exactly one of stars=1..4 or label=...")
    if stars is not None:
        if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 4:
            raise ValidationError(f"stars must be an integer from 1 to 4, got {stars!r}")
        return "star", stars
    if not isinstance(label, str) or label not in RATING_LABELS:
        known = ", ".join(sorted(RATING_LABELS))
        raise ValidationError(f"label {label!r} is not one of: {known}")
    return label, 1


def _merged(new: Turn, known: Turn) -> Turn:
    """``new`` (a frame's turn) plus the candidates of ``known`` it does not carry."""
    have = {c.candidate_id for c in new.candidates}
    extra = [c for c in known.candidates if c.candidate_id not in have]
    if not extra:
        return new
    return msgspec.structs.replace(new, candidates=[*new.candidates, *extra])


def _new_candidate(turn: Turn, known: set[str]) -> str | None:
    """The candidate a regeneration adds: the first one we did not know, else the primary."""
    for candidate in turn.candidates:
        if candidate.candidate_id not in known:
            return candidate.candidate_id
    primary = turn.primary
    return primary.candidate_id if primary is not None else None


class ChatsAPI:
    """Chat V2 conversations (``client.chats``).

    Chats: ``create``, ``open``, ``get``, ``list``, ``recent``, ``rename``, ``archive``,
    ``unarchive``, ``copy``, ``set_model``. Messages: ``send``, ``stream``, ``regenerate``,
    ``stream_regenerate``, ``select``, ``edit``, ``pin``, ``unpin``, ``delete``, ``rate``,
    ``unrate``, ``history``, ``iter_history``. Calls that change one chat's turns (sends,
    swipes, edits, selections, pins, deletions) run one after another per chat; different
    chats run concurrently.
    """

    def __init__(self, core: ClientCore) -> None:
        self._core = core
        self._chat_locks = _KeyedLocks()

    # --- chats ------------------------------------------------------------------------------

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
        async with await core.socket.subscribe(request_id, deadline) as inbox:
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

    async def open(self, character_id: str, *, timeout: float | None = None) -> Chat:
        """Your most recently active chat with a character, or a new one (with its greeting)
        when you have none. Archived chats are not picked.

        Read the conversation so far with :meth:`history`. Raises CharacterNotFound when a
        new chat is needed for an unknown character.
        """
        check_id(character_id, "character_id")
        check_timeout(timeout)
        chats = await self.recent(character_id, timeout=timeout)
        if chats:
            return chats[0]
        chat, _ = await self.create(character_id, timeout=timeout)
        return chat

    async def get(self, chat_id: str, *, timeout: float | None = None) -> Chat:
        """The chat with this id. Raises ChatNotFound (also for another account's chat)."""
        check_id(chat_id, "chat_id")
        check_timeout(timeout)
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
        check_timeout(timeout)
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
        check_timeout(timeout)
        request = chats_proto.recent_chats(self._core.endpoints, character_id)
        return chats_proto.parse_chats(await self._core.call(request, timeout=timeout))

    async def _changed(self, chat_id: str, body: bytes, timeout: float | None) -> Chat:
        """The chat a PATCH answered with, or (when its body has none) fetched afresh."""
        chat = chats_proto.parse_chat(body)
        return chat if chat is not None else await self.get(chat_id, timeout=timeout)

    async def rename(self, chat: Chat | str, name: str, *, timeout: float | None = None) -> Chat:
        """Give a chat a name; return the updated chat. Raises ChatNotFound."""
        chat_id = _chat_id(chat)
        check_text(name, "name")
        check_timeout(timeout)
        request = chats_proto.rename(self._core.endpoints, chat_id, name)
        body = await self._core.call(request, timeout=timeout, not_found=ChatNotFound)
        return await self._changed(chat_id, body, timeout)

    async def archive(self, chat: Chat | str, *, timeout: float | None = None) -> Chat:
        """Archive a chat: it leaves the recent chats (and :meth:`open`). Archiving twice is
        harmless. Return the updated chat. Raises ChatNotFound."""
        return await self._set_archived(chat, True, timeout)

    async def unarchive(self, chat: Chat | str, *, timeout: float | None = None) -> Chat:
        """Bring an archived chat back; return the updated chat. Raises ChatNotFound."""
        return await self._set_archived(chat, False, timeout)

    async def _set_archived(self, chat: Chat | str, archived: bool, timeout: float | None) -> Chat:
        chat_id = _chat_id(chat)
        check_timeout(timeout)
        request = chats_proto.archive(self._core.endpoints, chat_id, archived)
        body = await self._core.call(request, timeout=timeout, not_found=ChatNotFound)
        return await self._changed(chat_id, body, timeout)

    async def set_model(
        self, chat: Chat | str, model: str, *, timeout: float | None = None
    ) -> Chat:
        """Choose the model that writes the chat's next replies, e.g. ``"MODEL_TYPE_SMART"``
        (§2.3 lists the known ones); return the updated chat. Raises ChatNotFound."""
        chat_id = _chat_id(chat)
        _check_model(model)
        check_timeout(timeout)
        request = chats_proto.set_model(self._core.endpoints, chat_id, model)
        body = await self._core.call(request, timeout=timeout, not_found=ChatNotFound)
        return await self._changed(chat_id, body, timeout)

    async def copy(
        self, chat: Chat | str, *, up_to: Turn | str, timeout: float | None = None
    ) -> Chat:
        """A new chat holding this chat's turns up to and including ``up_to`` (a Turn of
        this chat or a turn id). Raises ChatNotFound, or TurnNotFound for an unknown turn."""
        chat_id = _chat_id(chat)
        turn_id = _turn_id_in(chat_id, up_to, "up_to")
        check_timeout(timeout)
        request = chats_proto.copy_chat(self._core.endpoints, chat_id, turn_id)
        # Either the chat or the turn may be missing: the error's comment says which.
        body = await self._core.call(request, timeout=timeout, not_found=NotFound)
        return await self.get(chats_proto.parse_new_chat_id(body), timeout=timeout)

    # --- sending ----------------------------------------------------------------------------

    async def send(self, chat: Chat, text: str, *, timeout: float | None = None) -> Turn:
        """Send ``text`` and return the character's complete reply turn.

        ``turn.text`` is the reply. Messages to one chat are sent one after another; messages
        to different chats run concurrently. Raises ChatNotFound, Filtered, RateLimited,
        Timeout (no complete reply within ``timeout``) or Disconnected. An archived chat
        refuses messages (ServerError) until unarchived.
        """
        check_chat(chat)
        check_text(text)
        check_timeout(timeout)
        last: ReplyChunk | None = None
        async for chunk in self._generate(chat, text, timeout, every_chunk=False):
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
        self, chat: Chat, text: str, timeout: float | None, *, every_chunk: bool = True
    ) -> AsyncIterator[ReplyChunk]:
        """Send a message and yield its reply's chunks (only the final one unless
        ``every_chunk``), recovering the reply if the socket drops on the way."""
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
        socket = core.socket
        first_deadline = deadline
        if core.first_chunk_timeout is not None:
            first_deadline = min(deadline, core.deadline(core.first_chunk_timeout))
        async with self._chat_locks.hold(chat.chat_id):
            resent = False
            while True:
                try:
                    # One flat loop, no nested generators: this is the hot path of every
                    # message (docs/benchmarks.md).
                    inbox = await socket.subscribe(request_id, deadline)
                    try:
                        await inbox.send(frame)
                        while not accumulator.final:
                            # Until the reply's first frame, the tighter first-chunk deadline.
                            started = accumulator.turn is not None
                            event = await inbox.next(deadline if started else first_deadline)
                            if isinstance(event, (neo.UpdateTurn, neo.AddTurn)):
                                turn = event.turn
                                if turn.turn_key.turn_id == turn_id:
                                    continue  # The echo of our own message.
                                if every_chunk:
                                    chunk = accumulator.feed(turn)
                                    if chunk is not None:
                                        yield chunk
                                else:
                                    accumulator.track(turn)
                            elif (error := _unexpected(event, "the reply")) is not None:
                                raise error
                    finally:
                        socket.unregister(inbox)
                    if not every_chunk:
                        yield accumulator.final_chunk()
                    return
                except (Disconnected, RateLimited, ServerError) as exc:
                    if await self._waited_out(exc, resent, accumulator, deadline):
                        continue  # A rate limit we were allowed to wait for: send again.
                reply = await self._recover_reply(chat.chat_id, turn_id, deadline)
                if reply is None:  # The server never got the message: send it again.
                    resent = True
                    core.stats.resent_messages += 1
                    continue
                core.stats.recovered_replies += 1
                last = accumulator.feed(reply)
                if last is None and not accumulator.final:
                    # The reply's candidate id changed: deliver its text as a rewrite.
                    last = ReplyAccumulator(delivered=accumulator.text).feed(reply)
                if last is not None:
                    yield last
                return

    async def _waited_out(
        self, exc: CaiError, resent: bool, accumulator: ReplyAccumulator, deadline: float
    ) -> bool:
        """Decide what a failed send means. True: a rate limit was waited out, send again.
        False: recover the reply from the history. Anything else is re-raised."""
        core = self._core
        if isinstance(exc, Disconnected) and not core.closed:
            log.info("socket lost during a reply (%s); recovering it", exc)
            return False
        if isinstance(exc, RateLimited) and core.rate_limit_wait and not accumulator.text:
            wait = exc.retry_after
            loop = asyncio.get_running_loop()
            if wait is not None and wait <= core.rate_limit_wait and loop.time() + wait < deadline:
                log.info("rate limited; waiting %.1f s as the server asked", wait)
                await asyncio.sleep(wait)
                return True
        if isinstance(exc, ServerError) and resent and "already exists" in str(exc):
            return False  # The re-sent message was there after all: its reply is coming.
        raise exc

    async def _recover_reply(self, chat_id: str, turn_id: str, deadline: float) -> Turn | None:
        """After the socket dropped mid-reply: the finished reply from history, or None when
        the server never received the message. Polls while the reply is still being
        generated; raises Disconnected if it is not done by ``deadline``."""
        core = self._core
        loop = asyncio.get_running_loop()
        pause = 0.05
        while True:
            remaining = deadline - loop.time()
            if core.closed:
                raise Disconnected("the client was closed")
            if remaining <= 0:
                raise Disconnected(
                    "the connection dropped during the reply and the reply could not be "
                    "recovered in time; it may still appear in the chat's history"
                )
            request = chats_proto.turns_page(core.endpoints, chat_id)
            try:
                body = await core.call(request, timeout=remaining, not_found=ChatNotFound)
            except (TransportError, ServerError) as exc:
                log.info("recovery: history not readable yet (%s)", exc)
            else:
                turns, _ = chats_proto.parse_turns_page(body)
                found, reply = chats_proto.locate_reply(turns, turn_id)
                if not found:
                    return None
                if reply is not None and reply.is_final:
                    return reply
            await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
            pause = min(pause * 2, 1.0)

    async def regenerate(self, turn: Turn, *, timeout: float | None = None) -> Turn:
        """Generate another reply ("swipe") for a character turn and make it the primary one.

        Returns the turn with the new candidate first and primary (``turn.text`` is the new
        reply), followed by the candidates ``turn`` already had. Raises ValidationError for
        your own turns, TurnNotFound, ChatNotFound, RateLimited, Timeout.
        """
        _check_character_turn(turn, "regenerated")
        check_timeout(timeout)
        last: ReplyChunk | None = None
        async for chunk in self._regenerate(turn, timeout):
            last = chunk
        if last is None:  # pragma: no cover - _regenerate always ends with a final chunk
            raise ProtocolError("the regeneration ended without a final frame")
        return last.turn

    def stream_regenerate(
        self, turn: Turn, *, timeout: float | None = None
    ) -> AsyncIterator[ReplyChunk]:
        """Like :meth:`regenerate`, iterating over the new reply as it is generated (chunks
        as in :meth:`stream`; the final chunk's ``turn`` is what ``regenerate`` returns)."""
        _check_character_turn(turn, "regenerated")
        check_timeout(timeout)
        return self._regenerate(turn, timeout)

    async def _regenerate(self, turn: Turn, timeout: float | None) -> AsyncIterator[ReplyChunk]:
        core = self._core
        deadline = core.deadline(timeout)
        request_id = _new_id()
        frame = neo.generate_turn_candidate(
            request_id=request_id,
            chat_id=turn.chat_id,
            turn_id=turn.turn_id,
            character_id=turn.author.author_id,
        )
        known = {c.candidate_id for c in turn.candidates}
        accumulator: ReplyAccumulator | None = None
        async with (
            self._chat_locks.hold(turn.chat_id),
            await core.socket.subscribe(request_id, deadline) as inbox,
        ):
            await inbox.send(frame)
            while accumulator is None or not accumulator.final:
                event = await inbox.next(deadline)
                if isinstance(event, (neo.AddTurn, neo.UpdateTurn)):
                    if event.turn.turn_id != turn.turn_id:
                        continue
                    if accumulator is None:
                        # Lock onto the new candidate whether or not the frames also carry
                        # the older ones (§15.7).
                        new_id = _new_candidate(event.turn, known)
                        accumulator = ReplyAccumulator(candidate_id=new_id)
                    chunk = accumulator.feed(event.turn)
                    if chunk is None:
                        continue
                    if chunk.final:
                        chunk = dataclasses.replace(chunk, turn=_merged(chunk.turn, turn))
                    yield chunk
                elif (error := _unexpected(event, "the regenerated reply")) is not None:
                    raise error

    # --- changing turns ---------------------------------------------------------------------

    async def _ws_call(
        self,
        chat_id: str,
        frame: Callable[[str], bytes],
        accept: Callable[[neo.Event], R | None],
        during: str,
        timeout: float | None,
    ) -> R:
        """Send one request about a chat's turns and wait for the frame ``accept`` takes."""
        core = self._core
        deadline = core.deadline(timeout)
        request_id = _new_id()
        async with (
            self._chat_locks.hold(chat_id),
            await core.socket.subscribe(request_id, deadline) as inbox,
        ):
            await inbox.send(frame(request_id))
            while True:
                event = await inbox.next(deadline)
                result = accept(event)
                if result is not None:
                    return result
                if (error := _unexpected(event, during)) is not None:
                    raise error

    @staticmethod
    def _updated(turn: Turn) -> Callable[[neo.Event], Turn | None]:
        def accept(event: neo.Event) -> Turn | None:
            if isinstance(event, neo.UpdateTurn) and event.turn.turn_id == turn.turn_id:
                return _merged(event.turn, turn)
            return None

        return accept

    async def edit(self, turn: Turn, text: str, *, timeout: float | None = None) -> Turn:
        """Replace the text of a turn (yours or the character's).

        The edit becomes a new candidate, first and primary, with ``editor`` set and
        ``base_candidate_id`` naming the candidate it replaced; returns the updated turn.
        Raises TurnNotFound, ChatNotFound, Filtered.
        """
        _check_turn(turn)
        check_text(text)
        check_timeout(timeout)
        candidate_id = _candidate_id(turn, None)

        def frame(request_id: str) -> bytes:
            return neo.edit_turn_candidate(
                request_id=request_id,
                chat_id=turn.chat_id,
                turn_id=turn.turn_id,
                candidate_id=candidate_id,
                text=text,
            )

        return await self._ws_call(turn.chat_id, frame, self._updated(turn), "the edit", timeout)

    async def select(
        self, turn: Turn, candidate: Candidate | str, *, timeout: float | None = None
    ) -> None:
        """Make one of a turn's candidates (swipes) the primary one; waits for the server's
        ``ok``. Raises TurnNotFound (also for an unknown candidate), ChatNotFound."""
        _check_turn(turn)
        if candidate is None:
            raise ValidationError("candidate is required: a Candidate of the turn or its id")
        candidate_id = _candidate_id(turn, candidate)
        check_timeout(timeout)

        def frame(request_id: str) -> bytes:
            return neo.update_primary_candidate(
                request_id=request_id,
                chat_id=turn.chat_id,
                turn_id=turn.turn_id,
                candidate_id=candidate_id,
            )

        def accept(event: neo.Event) -> bool | None:
            return True if isinstance(event, neo.Ok) else None

        await self._ws_call(turn.chat_id, frame, accept, "ok", timeout)

    async def pin(self, turn: Turn, *, timeout: float | None = None) -> Turn:
        """Pin a turn (a memory the character keeps in mind); return the updated turn.
        Raises TurnNotFound, ChatNotFound."""
        return await self._set_pin(turn, True, timeout)

    async def unpin(self, turn: Turn, *, timeout: float | None = None) -> Turn:
        """Unpin a turn; return the updated turn. Raises TurnNotFound, ChatNotFound."""
        return await self._set_pin(turn, False, timeout)

    async def _set_pin(self, turn: Turn, pinned: bool, timeout: float | None) -> Turn:
        _check_turn(turn)
        check_timeout(timeout)

        def frame(request_id: str) -> bytes:
            return neo.set_turn_pin(
                request_id=request_id, chat_id=turn.chat_id, turn_id=turn.turn_id, pinned=pinned
            )

        return await self._ws_call(turn.chat_id, frame, self._updated(turn), "the pin", timeout)

    async def delete(
        self,
        chat: Chat | str,
        turns: Turn | str | Iterable[Turn | str],
        *,
        timeout: float | None = None,
    ) -> None:
        """Delete turns from a chat: one Turn, one turn id, or a list of them (all of this
        chat). Ids the chat does not have are ignored. Raises ChatNotFound."""
        chat_id = _chat_id(chat)
        turn_ids = _turn_ids(chat_id, turns)
        check_timeout(timeout)
        request = chats_proto.remove_turns(self._core.endpoints, chat_id, turn_ids)
        async with self._chat_locks.hold(chat_id):
            await self._core.call(request, timeout=timeout, not_found=ChatNotFound)

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
        _check_turn(turn)
        candidate_id = _candidate_id(turn, candidate)
        annotation_type, value = _rating(stars, label)
        check_timeout(timeout)
        request = chats_proto.create_annotation(
            self._core.endpoints,
            chat_id=turn.chat_id,
            turn_id=turn.turn_id,
            candidate_id=candidate_id,
            annotation_type=annotation_type,
            value=value,
        )
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
        _check_turn(turn)
        check_id(annotation_id, "annotation_id")
        candidate_id = _candidate_id(turn, candidate)
        check_timeout(timeout)
        request = chats_proto.remove_annotation(
            self._core.endpoints,
            annotation_id=annotation_id,
            chat_id=turn.chat_id,
            turn_id=turn.turn_id,
            candidate_id=candidate_id,
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
        ``timeout`` applies to each page. Raises ChatNotFound for an unknown chat or one
        that belongs to another account.
        """
        turns: builtins.list[Turn] = []
        async for page in self.iter_history(
            chat, pinned_only=pinned_only, all_candidates=all_candidates, timeout=timeout
        ):
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
        iterate, so stopping early saves requests. Arguments as in :meth:`history`."""
        chat_id = _chat_id(chat)
        check_timeout(timeout)
        return self._pages(chat_id, pinned_only, all_candidates, timeout)

    async def _pages(
        self, chat_id: str, pinned_only: bool, all_candidates: bool, timeout: float | None
    ) -> AsyncIterator[builtins.list[Turn]]:
        token: str | None = None
        while True:
            request = chats_proto.turns_page(
                self._core.endpoints,
                chat_id,
                token,
                pinned_only=pinned_only,
                all_candidates=all_candidates,
            )
            body = await self._core.call(request, timeout=timeout, not_found=ChatNotFound)
            page, token = chats_proto.parse_turns_page(body)
            if page:
                yield page
            if not page or token is None:
                return
