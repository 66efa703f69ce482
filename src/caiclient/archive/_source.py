"""The calls a sync makes, over either client.

The engine is async. With an :class:`~caiclient.AsyncClient` it awaits the client directly;
with the blocking :class:`~caiclient.Client` each call runs in a worker thread (the client
is thread-safe: every thread shares its one loop and socket). Both go through the public
namespaces only (``client.chats.list`` …), never the client's internals.

Each call runs inside ``AsyncClient.capture_raw()``, and what it returns comes with the
service's own JSON of every object (:class:`Sent`, cut out by :mod:`._raw`), so the archive
keeps fields the client's models do not know. The capture is per task, and follows a call
of the blocking client too: ``asyncio.to_thread`` copies the task's context into the worker
thread, and the client's loop thread runs the call in a copy of that one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from .. import RawBody
from ..errors import ValidationError
from ..models import Chat, Persona, Room, Turn, User, V1History, V1Message
from ..models._character import Character, CharacterShort
from ._raw import raws_for, single

__all__ = ["Sent", "Source", "source_for"]

T = TypeVar("T")


@dataclass(frozen=True)
class Sent(Generic[T]):
    """Objects as the client decoded them, and beside each (``raws``, in the same order)
    its JSON exactly as the service sent it (None if no captured body held it)."""

    items: list[T]
    raws: list[bytes | None]


class Source(Protocol):
    async def me(self) -> tuple[User, bytes | None]: ...
    async def personas(self) -> Sent[Persona]: ...
    async def recent_chats(self) -> list[Chat]: ...
    async def recent_characters(self) -> list[CharacterShort]: ...
    async def my_characters(self) -> list[CharacterShort]: ...
    async def character(self, character_id: str) -> tuple[Character, bytes | None]: ...
    async def chats_of(self, character_id: str) -> Sent[Chat]: ...
    async def chat(self, chat_id: str) -> tuple[Chat, bytes | None]: ...
    def pages(self, chat_id: str) -> AsyncIterator[Sent[Turn]]: ...
    async def v1_histories(self, character_id: str) -> Sent[V1History]: ...
    async def v1_messages(self, history: V1History) -> Sent[V1Message]: ...
    async def avatar(self, character: Character) -> bytes | None: ...
    async def rooms(self) -> Sent[Room]: ...
    def room_pages(self, room_id: str) -> AsyncIterator[Sent[Turn]]: ...


def _capture() -> AbstractContextManager[list[RawBody]]:
    """Every REST body the calls of this task receive inside the block (the sync client's
    calls too: its loop thread runs each call in a copy of the caller's context)."""
    from ..client import AsyncClient

    return AsyncClient.capture_raw()


async def _sent(
    call: Callable[[], Awaitable[Iterable[T]]], kind: str, key: Callable[[T], str]
) -> Sent[T]:
    with _capture() as bodies:
        items = list(await call())
    return Sent(items, raws_for(bodies, kind, [key(item) for item in items]))


async def _one(call: Callable[[], Awaitable[T]], member: str) -> tuple[T, bytes | None]:
    with _capture() as bodies:
        item = await call()
    return item, single(bodies, member)


class _Pages:
    """A history's pages (newest first) with the service's JSON of every turn."""

    def __init__(self, pages: AsyncIterator[list[Turn]]) -> None:
        self._pages = pages

    def __aiter__(self) -> _Pages:
        return self

    async def __anext__(self) -> Sent[Turn]:
        with _capture() as bodies:
            page = await self._pages.__anext__()
        return Sent(page, raws_for(bodies, "turn", [turn.turn_id for turn in page]))

    async def aclose(self) -> None:
        close = getattr(self._pages, "aclose", None)
        if close is not None:
            await close()


class _AsyncSource:
    def __init__(self, client: Any) -> None:
        self._c = client

    async def me(self) -> tuple[User, bytes | None]:
        return await _one(self._c.account.me, "user")

    async def personas(self) -> Sent[Persona]:
        return await _sent(self._c.personas.list, "persona", lambda p: p.id)

    async def recent_chats(self) -> list[Chat]:
        return list(await self._c.chats.recent())

    async def recent_characters(self) -> list[CharacterShort]:
        return list(await self._c.characters.recent())

    async def my_characters(self) -> list[CharacterShort]:
        return list(await self._c.characters.mine())

    async def character(self, character_id: str) -> tuple[Character, bytes | None]:
        return await _one(lambda: self._c.characters.info(character_id), "character")

    async def chats_of(self, character_id: str) -> Sent[Chat]:
        return await _sent(lambda: self._c.chats.list(character_id), "chat", lambda c: c.chat_id)

    async def chat(self, chat_id: str) -> tuple[Chat, bytes | None]:
        return await _one(lambda: self._c.chats.get(chat_id), "chat")

    def pages(self, chat_id: str) -> AsyncIterator[Sent[Turn]]:
        return _Pages(self._c.chats.iter_history(chat_id, all_candidates=True))

    async def v1_histories(self, character_id: str) -> Sent[V1History]:
        call = lambda: self._c.v1.histories(character_id)  # noqa: E731
        return await _sent(call, "v1_history", lambda h: h.external_id)

    async def v1_messages(self, history: V1History) -> Sent[V1Message]:
        return await _sent(lambda: self._c.v1.messages(history), "v1_message", lambda m: m.uuid)

    async def avatar(self, character: Character) -> bytes | None:
        url = self._c.characters.avatar_url(character)
        if url is None:
            return None
        data: bytes = await self._c.images.download(url)
        return data

    async def rooms(self) -> Sent[Room]:
        return await _sent(self._c.rooms.list, "room", lambda r: r.id)

    def room_pages(self, room_id: str) -> AsyncIterator[Sent[Turn]]:
        return _Pages(self._c.rooms.iter_history(room_id, all_candidates=True))


class _ThreadPages:
    """An async iterator over the sync client's page iterator, each step in a thread."""

    def __init__(self, pages: Iterator[list[Turn]]) -> None:
        self._pages = pages

    def __aiter__(self) -> _ThreadPages:
        return self

    async def __anext__(self) -> list[Turn]:
        end: list[Turn] = []
        page = await asyncio.to_thread(next, self._pages, end)
        if page is end:
            raise StopAsyncIteration
        return page

    async def aclose(self) -> None:
        close = getattr(self._pages, "close", None)
        if close is not None:
            await asyncio.to_thread(close)


class _ThreadSource(_AsyncSource):
    """The blocking client seen through the same awaitable surface."""

    def __init__(self, client: Any) -> None:
        super().__init__(_Threaded(client))
        self._sync = client

    def pages(self, chat_id: str) -> AsyncIterator[Sent[Turn]]:
        return _Pages(_ThreadPages(self._sync.chats.iter_history(chat_id, all_candidates=True)))

    def room_pages(self, room_id: str) -> AsyncIterator[Sent[Turn]]:
        return _Pages(_ThreadPages(self._sync.rooms.iter_history(room_id, all_candidates=True)))


class _Threaded:
    """``client.<namespace>.<method>`` of the blocking client, awaitable (run in a thread)."""

    def __init__(self, target: Any, depth: int = 0) -> None:
        self._target = target
        self._depth = depth

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if self._depth == 0:
            return _Threaded(attr, 1)
        if name == "avatar_url":  # local, no I/O
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(attr, *args, **kwargs)

        return call


def source_for(client: Any) -> Source:
    """The engine's view of ``client``: an AsyncClient, or the blocking Client."""
    from ..client import AsyncClient
    from ..sync import Client

    if isinstance(client, AsyncClient):
        return _AsyncSource(client)
    if isinstance(client, Client):
        return _ThreadSource(client)
    raise ValidationError(f"expected an AsyncClient or a Client, got {type(client).__name__}")
