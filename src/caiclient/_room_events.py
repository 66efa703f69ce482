"""Following rooms: their publications as :class:`~caiclient.models.RoomEvent`, each turn
once, with the history filling in what a drop made the socket miss."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from ._core import ClientCore
from ._deadline import Deadline
from ._rooms_socket import GAP
from .errors import CaiError, RoomNotFound, Timeout
from .models import RoomEvent, Turn
from .protocol import chats as chats_proto
from .protocol import neo
from .protocol import rooms as proto

if TYPE_CHECKING:
    from ._api.rooms import AsyncRoomsAPI

__all__ = ["RoomEvents"]

# What a yielded turn looked like, to recognise the same state again (never yield it twice).
_State = tuple[str | None, str, bool]


def _state(turn: Turn) -> _State:
    return turn.primary_candidate_id, turn.text, turn.is_final


class RoomEvents:
    """One ``client.rooms.events(...)`` iteration."""

    def __init__(
        self,
        core: ClientCore,
        rooms: AsyncRoomsAPI,
        room_ids: list[str] | None,
        *,
        partial: bool,
        timeout: float | None,
        since: str | None = None,
    ) -> None:
        self._since = since
        self._core = core
        self._rooms = rooms
        self._room_ids = room_ids
        self._partial = partial
        self._timeout = timeout
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._seen: dict[str, _State] = {}

    async def run(self) -> AsyncIterator[RoomEvent]:
        socket = self._core.rooms_socket
        ids = self._room_ids
        if ids is None:
            ids = [room.id for room in await self._rooms.list()]
        for room_id in ids:
            socket.listen(room_id, self._queue)
        try:
            deadline = self._core.deadline(None)
            for room_id in ids:
                await socket.watch(room_id, deadline)
            if self._since is not None:
                for event in await self._after(ids[0], self._since):
                    yield event
            while True:
                item = await self._next()
                for event in await self._events(item):
                    yield event
        finally:
            for room_id in ids:
                socket.unlisten(room_id, self._queue)

    async def _next(self) -> Any:
        if self._timeout is None:
            item = await self._queue.get()
        else:
            try:
                item = await asyncio.wait_for(self._queue.get(), self._timeout)
            except (asyncio.TimeoutError, TimeoutError):
                raise Timeout(f"no room event within {self._timeout:g} s") from None
        if isinstance(item, CaiError):
            raise item
        return item

    async def _events(self, item: Any) -> list[RoomEvent]:
        if isinstance(item, tuple) and item[0] is GAP:
            return await self._catch_up(item[1])
        assert isinstance(item, proto.Publication)
        room_id = item.channel.removeprefix("room:")
        return list(self._from_publication(room_id, item.data))

    def _from_publication(self, room_id: str, data: dict[str, Any]) -> Iterator[RoomEvent]:
        event = proto.room_event(data)
        if isinstance(event, (neo.AddTurn, neo.UpdateTurn)):
            yield from self._turn(room_id, event.turn, event.request_id)
        elif isinstance(event, neo.UnknownFrame) and event.command in (
            "remove_turns",
            "remove_turn",
        ):
            ids = event.data.get("turn_ids") or []
            gone = tuple(str(i) for i in ids if isinstance(i, str))
            for turn_id in gone:
                self._seen.pop(turn_id, None)
            if gone:
                yield RoomEvent("removed", room_id, turn_ids=gone, request_id=event.request_id)

    def _turn(self, room_id: str, turn: Turn, request_id: str | None) -> Iterator[RoomEvent]:
        state = _state(turn)
        if not turn.is_final and not self._partial:
            return
        if self._seen.get(turn.turn_id) == state:
            return  # The same state again (e.g. replayed after a reconnect): once only.
        if turn.is_final:
            self._seen[turn.turn_id] = state
        yield RoomEvent("turn", room_id, turn, final=turn.is_final, request_id=request_id)

    async def _after(self, room_id: str, since: str) -> list[RoomEvent]:
        """The complete turns after turn ``since`` (oldest first), read from the history
        once the room is watched, so none falls between the two."""
        newer: list[Turn] = []
        async for page in self._rooms.iter_history(room_id):
            for turn in page:
                if turn.turn_id == since:
                    return self._as_events(room_id, newer)
                newer.append(turn)
        return self._as_events(room_id, newer)

    def _as_events(self, room_id: str, newest_first: list[Turn]) -> list[RoomEvent]:
        events: list[RoomEvent] = []
        for turn in reversed(newest_first):
            if turn.is_final:
                events.extend(self._turn(room_id, turn, None))
        return events

    async def _catch_up(self, room_id: str) -> list[RoomEvent]:
        """Publications may be lost: read the newest turns and yield what is new or changed
        (oldest first); turns older than the page are assumed unchanged."""
        deadline = Deadline.after(self._core.options.timeout)
        request = chats_proto.turns_page(self._core.endpoints, room_id)
        body = await self._core.call(request, deadline=deadline, not_found=RoomNotFound)
        return self._as_events(room_id, chats_proto.parse_turns_page(body)[0])
