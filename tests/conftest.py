from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from caiclient import AsyncClient, Client, Endpoints
from caiclient.emulator import Emulator

pytest_plugins = ["mock_fixtures"]  # The tier-2 tests' service, transport and api.


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(chunk_delay=0.0) as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    """aiohttp's own client, for testing the emulator without caiclient in the way."""
    async with aiohttp.ClientSession() as session:
        yield session


class _ThreadedIterator:
    """An async iterator over a sync iterator whose ``next`` runs in a worker thread."""

    def __init__(self, iterator: Iterator[Any]) -> None:
        self._iterator = iterator

    def __aiter__(self) -> _ThreadedIterator:
        return self

    async def __anext__(self) -> Any:
        done = object()
        item = await asyncio.to_thread(next, self._iterator, done)
        if item is done:
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        close = getattr(self._iterator, "close", None)
        if close is not None:
            await asyncio.to_thread(close)


class _ThreadedNamespace:
    def __init__(self, sync_namespace: Any, async_namespace: Any) -> None:
        self._sync = sync_namespace
        self._async = async_namespace

    def __getattr__(self, name: str) -> Callable[..., Any]:
        sync_method = getattr(self._sync, name)
        async_method = getattr(self._async, name)
        if inspect.iscoroutinefunction(async_method):

            async def call(*args: Any, **kwargs: Any) -> Any:
                return await asyncio.to_thread(sync_method, *args, **kwargs)

            return call
        returns = str(inspect.signature(async_method).return_annotation)
        if not (inspect.isasyncgenfunction(async_method) or "AsyncIterator" in returns):
            return sync_method  # a plain, local helper such as characters.avatar_url

        def iterate(*args: Any, **kwargs: Any) -> Any:
            # Called here, not in a thread: argument errors must surface at once, as they do
            # on AsyncClient.
            return _ThreadedIterator(sync_method(*args, **kwargs))

        return iterate


class SyncAsAsync:
    """The sync ``Client`` presented with AsyncClient's awaitable surface, each call in a
    worker thread, so one end-to-end suite exercises both clients against the emulator
    running on the test's loop."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            return getattr(self._client._async, name)  # internals, for white-box checks
        attr = getattr(self._client, name)
        async_attr = getattr(self._client._async, name)
        if hasattr(attr, "_portal"):
            return _ThreadedNamespace(attr, async_attr)
        return attr

    def __repr__(self) -> str:
        return repr(self._client)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._client.close)


@pytest.fixture(params=["async", "sync"])
async def client(request: pytest.FixtureRequest, emu: Emulator) -> AsyncIterator[Any]:
    """The end-to-end suite runs once with AsyncClient and once with the sync Client."""
    if request.param == "async":
        async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as c:
            yield c
        return
    sync = Client(emu.token, endpoints=Endpoints.local(emu.url))
    try:
        yield SyncAsAsync(sync)
    finally:
        await asyncio.to_thread(sync.close)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """One real PostgreSQL server for the whole session (tests/pg.py); fails if it cannot start."""
    from pg import PostgresServer

    with PostgresServer() as server:
        yield server
