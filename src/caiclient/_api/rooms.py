"""``client.rooms``: group chats, over the REST routes and the Centrifugo socket (§9).

The reply rules are the chat socket's (:mod:`caiclient.protocol.generation`), driven by the
same :class:`~caiclient._exchange.SocketCall` over the rooms socket.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable, Iterable
from functools import partial
from typing import Any, TypeVar

from .._core import ClientCore
from .._deadline import Deadline
from .._exchange import Frame, Locate, SocketCall
from .._ids import new_id
from .._locks import KeyedLocks
from .._paging import cursor_pages
from .._validate import (
    candidate_id_of,
    check_bool,
    check_character_turn,
    check_id,
    check_str,
    check_text,
    check_timeout,
    check_turn,
    turn_id_in,
    turn_ids_in,
)
from ..errors import NotFound, RoomNotFound, ValidationError
from ..models import Candidate, Room, RoomEvent, Turn
from ..protocol import chats as chats_proto
from ..protocol import generation, neo
from ..protocol import rooms as proto
from ..protocol.generation import Located
from ..protocol.http import check_refusal
from ..protocol.stream import ReplyChunk

__all__ = ["AsyncRoomsAPI"]

R = TypeVar("R")
VISIBILITIES = ("VISIBILITY_UNLISTED", "VISIBILITY_PRIVATE", "VISIBILITY_PUBLIC")
SETTINGS = ("anyone_can_join", "require_approval", "auto_smart_reply", "smart_reply_timer")


def room_id_of(room: object) -> str:
    if isinstance(room, Room):
        return check_id(room.id, "room.id")
    if isinstance(room, str):
        return check_id(room, "room")
    raise ValidationError(f"room must be a Room or a room id, got {type(room).__name__}")


def _character_in(room: object, character: object) -> str | None:
    """The id of ``character`` (None: let the service choose), checked against the room's
    cast when ``room`` is a Room."""
    if character is None:
        return None
    character_id = check_id(character, "character")
    if isinstance(room, Room) and character_id not in room.character_ids:
        raise ValidationError(f"character {character_id!r} is not in room {room.id!r}")
    return character_id


class AsyncRoomsAPI:
    """Group chats (``client.rooms``): several characters and users in one chat.

    Rooms: ``list``, ``get``, ``create``, ``delete``, ``rename``, ``add_character``,
    ``remove_character``, ``update_settings``, ``join_token``, ``preview``, ``join``,
    ``history``, ``iter_history``. Turns: ``send`` (your message), ``generate`` /
    ``stream_generate`` (a character's reply), ``stream`` (your message, then a reply),
    ``regenerate`` / ``stream_regenerate`` (a swipe), ``select``, ``edit``, ``delete_turns``.
    Following a room: ``events``. Requests about one room run one after another; different
    rooms run concurrently. A room you are not in reads as RoomNotFound.
    """

    def __init__(self, core: ClientCore) -> None:
        self._core = core
        self._locks = KeyedLocks()

    # --- rooms (REST) -------------------------------------------------------------------------

    async def list(self, *, timeout: float | None = None) -> builtins.list[Room]:
        """The rooms you are a member of (without their turns). Safe to cancel."""
        body = await self._core.call(proto.list_rooms(self._core.endpoints), timeout=timeout)
        return proto.parse_rooms(body)

    async def get(self, room: Room | str, *, timeout: float | None = None) -> Room:
        """The room with this id, as it is now. Raises RoomNotFound (also for a room you are
        not in)."""
        room_id = room_id_of(room)
        for found in await self.list(timeout=timeout):
            if found.id == room_id:
                return found
        raise RoomNotFound(f"no room {room_id!r} among yours")

    async def create(
        self,
        characters: str | Iterable[str],
        *,
        title: str = "",
        description: str = "",
        visibility: str = "VISIBILITY_UNLISTED",
        anyone_can_join: bool = True,
        require_approval: bool = False,
        greeting: bool = True,
        timeout: float | None = None,
    ) -> Room:
        """A new room with these characters (one id or several); you are its owner. With
        ``greeting`` each character greets the room. Raises CharacterNotFound, ValidationError.
        """
        check_str(title, "title")
        check_str(description, "description")
        check_bool(greeting, "greeting")
        if isinstance(characters, str):
            ids = [characters]
        elif isinstance(characters, Iterable):
            ids = builtins.list(characters)
        else:
            raise ValidationError(
                f"characters must be a character id or several, not {type(characters).__name__}"
            )
        if not ids:
            raise ValidationError("a room needs at least one character")
        for character_id in ids:
            check_id(character_id, "character id")
        if visibility not in VISIBILITIES:
            raise ValidationError(f"visibility must be one of {', '.join(VISIBILITIES)}")
        check_bool(anyone_can_join, "anyone_can_join")
        check_bool(require_approval, "require_approval")
        request = proto.create_room(
            self._core.endpoints,
            ids,
            title=title,
            description=description,
            visibility=visibility,
            anyone_can_join=anyone_can_join,
            require_approval=require_approval,
            with_greeting=greeting,
        )
        body = await self._core.call(request, timeout=timeout, not_found=NotFound)
        return proto.parse_room(body, "/muroom/create", not_found=NotFound)

    async def delete(self, room: Room | str, *, timeout: float | None = None) -> None:
        """Delete the room (its creator only: ServerError 403 otherwise). RoomNotFound."""
        request = proto.delete_room(self._core.endpoints, room_id_of(room))
        body = await self._core.call(request, timeout=timeout, not_found=RoomNotFound)
        check_refusal(body, "room delete", not_found=RoomNotFound)

    async def _patch(
        self,
        room: Room | str,
        ops: Callable[[str], builtins.list[dict[str, Any]]],
        timeout: float | None,
    ) -> Room:
        room_id = room_id_of(room)
        deadline = self._core.deadline(timeout)
        request = proto.patch_room(self._core.endpoints, room_id, ops(room_id))
        body = await self._core.call(request, deadline=deadline, not_found=RoomNotFound)
        check_refusal(body, "room change", not_found=RoomNotFound)
        return await self.get(room_id, timeout=deadline.left("reading the changed room"))

    async def rename(self, room: Room | str, title: str, *, timeout: float | None = None) -> Room:
        """Give the room a new title; return the room. Raises RoomNotFound."""
        check_text(title, "title")
        return await self._patch(room, lambda rid: [proto.rename_op(rid, title)], timeout)

    async def add_character(
        self, room: Room | str, character_id: str, *, timeout: float | None = None
    ) -> Room:
        """Bring a character into the room; return the room. Raises RoomNotFound,
        CharacterNotFound, ServerError when the room is full."""
        check_id(character_id, "character_id")
        ops = partial(_one_op, proto.character_op, character_id, add=True)
        return await self._patch(room, ops, timeout)

    async def remove_character(
        self, room: Room | str, character_id: str, *, timeout: float | None = None
    ) -> Room:
        """Take a character out of the room (a room keeps at least one). Raises
        RoomNotFound, CharacterNotFound (not in the room)."""
        check_id(character_id, "character_id")
        ops = partial(_one_op, proto.character_op, character_id, add=False)
        return await self._patch(room, ops, timeout)

    async def update_settings(
        self,
        room: Room | str,
        *,
        anyone_can_join: bool | None = None,
        require_approval: bool | None = None,
        auto_smart_reply: bool | None = None,
        smart_reply_timer: bool | None = None,
        timeout: float | None = None,
    ) -> Room:
        """Change the room's settings (None keeps one as it is); return the room."""
        values = (anyone_can_join, require_approval, auto_smart_reply, smart_reply_timer)
        changes = {k: v for k, v in zip(SETTINGS, values, strict=True) if v is not None}
        if not changes or not all(isinstance(v, bool) for v in changes.values()):
            raise ValidationError("pass at least one setting, each a bool")
        return await self._patch(room, lambda rid: [proto.settings_op(rid, changes)], timeout)

    async def join_token(self, room: Room | str, *, timeout: float | None = None) -> str:
        """The token another user passes to :meth:`join` (the web client's invite link
        carries it). Raises RoomNotFound."""
        token = (await self.get(room, timeout=timeout)).join_token
        if not token:
            raise RoomNotFound("the room has no join token (joining may be closed)")
        return token

    async def preview(self, join_token: str, *, timeout: float | None = None) -> Room:
        """The room a join token opens, without joining it. Raises RoomNotFound."""
        check_id(join_token, "join_token")
        request = proto.preview_room(self._core.endpoints, join_token)
        body = await self._core.call(request, timeout=timeout, not_found=RoomNotFound)
        return proto.parse_room(body, "/muroom/", not_found=RoomNotFound)

    async def join(self, join_token: str, *, timeout: float | None = None) -> Room:
        """Join the room of a join token (joining twice is harmless); return it. Raises
        RoomNotFound for an unknown token, ServerError when the room is full."""
        check_id(join_token, "join_token")
        request = proto.join_room(self._core.endpoints, join_token)
        body = await self._core.call(request, timeout=timeout, not_found=RoomNotFound)
        return proto.parse_room(body, "/muroom/join", not_found=RoomNotFound)

    async def history(
        self, room: Room | str, *, all_candidates: bool = False, timeout: float | None = None
    ) -> builtins.list[Turn]:
        """Every turn of the room, oldest first (all pages; ``timeout`` bounds the whole
        call). ``all_candidates`` loads every swipe of each turn. Raises RoomNotFound."""
        room_id = room_id_of(room)
        deadline = self._core.deadline(timeout)
        turns: builtins.list[Turn] = []
        async for page in self._pages(room_id, all_candidates, None, deadline):
            turns.extend(page)
        turns.reverse()
        return turns

    def iter_history(
        self, room: Room | str, *, all_candidates: bool = False, timeout: float | None = None
    ) -> AsyncIterator[builtins.list[Turn]]:
        """The room's history a page at a time, newest page first, each page newest first
        (``timeout`` bounds each page)."""
        room_id = room_id_of(room)
        check_timeout(timeout)
        return self._pages(room_id, all_candidates, timeout, None)

    def _pages(
        self, room_id: str, all_candidates: bool, timeout: float | None, deadline: Deadline | None
    ) -> AsyncIterator[builtins.list[Turn]]:
        core = self._core

        async def fetch(cursor: str | None) -> tuple[builtins.list[Turn], str | None]:
            request = chats_proto.turns_page(
                core.endpoints, room_id, cursor, all_candidates=all_candidates
            )
            body = await core.call(
                request, timeout=timeout, deadline=deadline, not_found=RoomNotFound
            )
            return chats_proto.parse_turns_page(body, not_found=RoomNotFound)

        return cursor_pages(fetch, f"room {room_id}")

    # --- turns (the rooms socket) -------------------------------------------------------------

    def _call(
        self,
        room_id: str,
        exchange: generation.Exchange[R],
        frame: Frame,
        request_id: str,
        timeout: float | None,
        locate: Locate | None = None,
    ) -> SocketCall[R]:
        socket = self._core.rooms_socket

        async def watch(deadline: Deadline) -> None:
            await socket.watch(room_id, deadline)  # its publications must reach us

        lock = (self._locks, room_id)
        return SocketCall(
            self._core, exchange, frame, request_id, timeout, lock, locate, socket, watch
        )

    async def _find(self, room_id: str, turn_id: str | None, deadline: Deadline) -> Turn | None:
        request = chats_proto.turns_page(self._core.endpoints, room_id)
        body = await self._core.call(request, deadline=deadline, not_found=RoomNotFound)
        turns = chats_proto.parse_turns_page(body)[0]
        return next((t for t in turns if t.turn_id == turn_id), None)

    def _user_turn(self, room: Room | str, text: str, timeout: float | None) -> SocketCall[Turn]:
        room_id = room_id_of(room)
        check_text(text)
        request_id, turn_id = new_id(), new_id()
        candidate_id = new_id()

        def frame(author_id: str) -> bytes:
            return proto.create_turn(
                request_id=request_id,
                room_id=room_id,
                turn_id=turn_id,
                candidate_id=candidate_id,
                author_id=author_id,
                text=text,
            )

        async def locate(deadline: Deadline) -> tuple[Located, Turn | None]:
            found = await self._find(room_id, turn_id, deadline)
            return (Located.NOT_RECEIVED, None) if found is None else (Located.REPLIED, found)

        exchange = generation.TurnAdded(turn_id)
        return self._call(room_id, exchange, frame, request_id, timeout, locate)

    def _generation(
        self, room: Room | str, character: str | None, timeout: float | None
    ) -> SocketCall[Turn]:
        room_id = room_id_of(room)
        character_id = _character_in(room, character)
        request_id = new_id()
        frame = proto.generate_turn(
            request_id=request_id, room_id=room_id, character_id=character_id
        )
        exchange = generation.Reply()

        async def locate(deadline: Deadline) -> tuple[Located, Turn | None]:
            found = await self._find(room_id, exchange.reply_turn_id, deadline)
            done = found is not None and found.is_final
            return (Located.REPLIED, found) if done else (Located.PENDING, None)

        return self._call(room_id, exchange, frame, request_id, timeout, locate)

    async def send(self, room: Room | str, text: str, *, timeout: float | None = None) -> Turn:
        """Post your message in the room (no one answers yet: see :meth:`generate`); return
        your turn as stored. Raises RoomNotFound, Filtered, ValidationError."""
        return await self._user_turn(room, text, timeout).result()

    async def generate(
        self, room: Room | str, character: str | None = None, *, timeout: float | None = None
    ) -> Turn:
        """A character's reply: ``character`` (an id of the room's cast) or, with None, the
        one the service picks (the web client's "smart reply"). Returns the complete turn.
        Raises RoomNotFound, CharacterNotFound, RateLimited, Timeout; cancelling tells the
        server to stop."""
        return await self._generation(room, character, timeout).result()

    def stream_generate(
        self, room: Room | str, character: str | None = None, *, timeout: float | None = None
    ) -> AsyncIterator[ReplyChunk]:
        """Like :meth:`generate`, iterating over the reply as it is generated (the chunks of
        ``client.chats.stream``)."""
        check_timeout(timeout)
        return self._generation(room, character, timeout).chunks()

    def stream(
        self,
        room: Room | str,
        text: str,
        *,
        character: str | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[ReplyChunk]:
        """Post your message, then stream a character's reply to it (``character`` as in
        :meth:`generate`). ``timeout`` bounds each of the two steps."""
        check_timeout(timeout)
        user = self._user_turn(room, text, timeout)
        reply = self._generation(room, character, timeout)
        return _then(user, reply)

    def _swipe(self, turn: Turn, timeout: float | None) -> SocketCall[Turn]:
        check_character_turn(turn, "regenerated")
        request_id = new_id()
        frame = proto.regenerate(
            request_id=request_id,
            room_id=turn.chat_id,
            turn_id=turn.turn_id,
            character_id=turn.author.author_id,
        )
        exchange = generation.Reply(base=turn)
        return self._call(turn.chat_id, exchange, frame, request_id, timeout)

    async def regenerate(self, turn: Turn, *, timeout: float | None = None) -> Turn:
        """Another reply ("swipe") for a character's turn of the room; it becomes the
        primary candidate. Returns the turn with all its candidates."""
        return await self._swipe(turn, timeout).result()

    def stream_regenerate(
        self, turn: Turn, *, timeout: float | None = None
    ) -> AsyncIterator[ReplyChunk]:
        """Like :meth:`regenerate`, as chunks."""
        check_timeout(timeout)
        return self._swipe(turn, timeout).chunks()

    async def _on_turn(
        self,
        turn: Turn,
        exchange: generation.Exchange[R],
        build: Callable[..., bytes],
        timeout: float | None,
    ) -> R:
        request_id = new_id()
        frame = build(request_id=request_id, room_id=turn.chat_id, turn_id=turn.turn_id)
        return await self._call(turn.chat_id, exchange, frame, request_id, timeout).result()

    async def select(
        self, turn: Turn, candidate: Candidate | str, *, timeout: float | None = None
    ) -> Turn:
        """Make one of a turn's candidates the primary one; return the turn."""
        check_turn(turn)
        if candidate is None:
            raise ValidationError("candidate is required: a Candidate of the turn or its id")
        build = partial(proto.select_candidate, candidate_id=candidate_id_of(turn, candidate))
        return await self._on_turn(turn, generation.TurnChange(turn), build, timeout)

    async def edit(self, turn: Turn, text: str, *, timeout: float | None = None) -> Turn:
        """Replace the text of a turn of the room (yours or a character's; not another
        user's): a new candidate, first and primary. Returns the turn."""
        check_turn(turn)
        check_text(text)
        build = partial(proto.edit, candidate_id=candidate_id_of(turn, None), text=text)
        return await self._on_turn(turn, generation.TurnChange(turn), build, timeout)

    async def delete_turns(
        self,
        room: Room | str,
        turns: Turn | str | Iterable[Turn | str],
        *,
        timeout: float | None = None,
    ) -> None:
        """Delete turns of the room. As in the web client, this goes through the chat
        socket (``remove_turns``, §9). Raises RoomNotFound."""
        room_id = room_id_of(room)
        turn_ids = turn_ids_in(room_id, turns)
        request_id = new_id()
        frame = neo.remove_turns(request_id=request_id, chat_id=room_id, turn_ids=turn_ids)
        exchange = generation.Acknowledged(neo.TurnsRemoved)
        lock = (self._locks, room_id)
        call = SocketCall(self._core, exchange, frame, request_id, timeout, lock)
        await call.result()

    # --- following rooms ----------------------------------------------------------------------

    def events(
        self,
        room: Room | str | None = None,
        *,
        since: Turn | str | None = None,
        partial: bool = False,
        timeout: float | None = None,
    ) -> AsyncIterator[RoomEvent]:
        """What happens in a room (or, with None, in every room you are in when it starts):
        other users' turns, characters' replies, edits, swipes, deletions — yours too.

        Each complete turn is yielded once (``partial=True`` also yields the streaming
        steps of replies, with ``final=False``). Across a dropped connection the socket
        asks the server for what it missed; when the server cannot replay it, the history
        is read and what changed is yielded, so nothing is missed or repeated. ``since`` (a
        turn of the room, or its id) first yields the turns after it from the history —
        the way to start without missing what happened before the room was watched, or to
        resume after a restart. ``timeout`` bounds the wait for each event (None: until you
        stop iterating). Raises RoomNotFound, Disconnected when the socket cannot be
        reopened.
        """
        rooms = None if room is None else [room_id_of(room)]
        check_timeout(timeout)
        after: str | None = None
        if since is not None:
            if rooms is None:
                raise ValidationError("since= needs one room to follow")
            after = turn_id_in(rooms[0], since, "since")
        from .._room_events import RoomEvents  # Imported here: only followers need it.

        events = RoomEvents(self._core, self, rooms, partial=partial, timeout=timeout, since=after)
        return events.run()


def _one_op(
    build: Callable[..., dict[str, Any]], character_id: str, room_id: str, *, add: bool
) -> builtins.list[dict[str, Any]]:
    return [build(room_id, character_id, add=add)]


async def _then(first: SocketCall[Turn], second: SocketCall[Turn]) -> AsyncIterator[ReplyChunk]:
    await first.result()
    async for chunk in second.chunks():
        yield chunk
