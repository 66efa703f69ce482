"""The calls a sync makes, over either client.

The engine is async. With an :class:`~caiclient.AsyncClient` it awaits the client directly;
with the blocking :class:`~caiclient.Client` each call runs in a worker thread (the client
is thread-safe: every thread shares its one loop and socket). Both go through the public
namespaces only (``client.chats.list`` …), never the client's internals.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

from ..errors import ValidationError
from ..models import Chat, Persona, Turn, User, V1History, V1Message
from ..models._character import Character, CharacterShort

__all__ = ["Source", "source_for"]


class Source(Protocol):
    async def me(self) -> User: ...
    async def personas(self) -> list[Persona]: ...
    async def recent_chats(self) -> list[Chat]: ...
    async def my_characters(self) -> list[CharacterShort]: ...
    async def character(self, character_id: str) -> Character: ...
    async def chats_of(self, character_id: str) -> list[Chat]: ...
    async def chat(self, chat_id: str) -> Chat: ...
    def pages(self, chat_id: str) -> AsyncIterator[list[Turn]]: ...
    async def v1_histories(self, character_id: str) -> list[V1History]: ...
    async def v1_messages(self, history: V1History) -> list[V1Message]: ...
    async def avatar(self, character: Character) -> bytes | None: ...


class _AsyncSource:
    def __init__(self, client: Any) -> None:
        self._c = client

    async def me(self) -> User:
        user: User = await self._c.account.me()
        return user

    async def personas(self) -> list[Persona]:
        return list(await self._c.personas.list())

    async def recent_chats(self) -> list[Chat]:
        return list(await self._c.chats.recent())

    async def my_characters(self) -> list[CharacterShort]:
        return list(await self._c.characters.mine())

    async def character(self, character_id: str) -> Character:
        character: Character = await self._c.characters.info(character_id)
        return character

    async def chats_of(self, character_id: str) -> list[Chat]:
        return list(await self._c.chats.list(character_id))

    async def chat(self, chat_id: str) -> Chat:
        chat: Chat = await self._c.chats.get(chat_id)
        return chat

    def pages(self, chat_id: str) -> AsyncIterator[list[Turn]]:
        pages: AsyncIterator[list[Turn]] = self._c.chats.iter_history(chat_id, all_candidates=True)
        return pages

    async def v1_histories(self, character_id: str) -> list[V1History]:
        return list(await self._c.v1.histories(character_id))

    async def v1_messages(self, history: V1History) -> list[V1Message]:
        return list(await self._c.v1.messages(history))

    async def avatar(self, character: Character) -> bytes | None:
        url = self._c.characters.avatar_url(character)
        if url is None:
            return None
        data: bytes = await self._c.images.download(url)
        return data


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

    def pages(self, chat_id: str) -> AsyncIterator[list[Turn]]:
        return _ThreadPages(self._sync.chats.iter_history(chat_id, all_candidates=True))


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
