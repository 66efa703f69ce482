"""A private event loop on a daemon thread, for the synchronous client.

Every call from any thread is submitted to that one loop, so all threads share one
``AsyncClient`` (one socket, one reader, the same reconnect and recovery). The calling thread
may itself be running an event loop (Jupyter): it only blocks on a future, it never runs or
nests a loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from .errors import ClientClosed, UsageError

__all__ = ["Portal"]

T = TypeVar("T")

# How often a blocked caller wakes up, so Ctrl-C is noticed quickly on every platform.
_POLL = 0.1


class Portal:
    """Runs coroutines on a loop thread started on first use and stopped by :meth:`close`."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def _ensure(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None and not self._closed:
            return loop
        with self._lock:
            if self._closed:
                raise ClientClosed("the client is closed; create a new one")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=_run_loop, args=(loop, ready), name="caiclient-sync", daemon=True
                )
                thread.start()
                ready.wait()
                self._thread, self._loop = thread, loop
            return self._loop

    @property
    def started(self) -> bool:
        return self._loop is not None

    def _wait(self, future: concurrent.futures.Future[T]) -> T:
        try:
            # Not ``result(timeout=...)`` in a loop: its TimeoutError could not be told from
            # the call's own caiclient.Timeout (a TimeoutError too).
            while not future.done():
                concurrent.futures.wait((future,), timeout=_POLL)
            return future.result()
        except BaseException:
            # Ctrl-C (or any interruption) in the caller cancels the work on the loop, and
            # the client stays usable.
            future.cancel()
            raise

    def call(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the loop and return its result (or raise its error)."""
        loop = self._ensure()
        if threading.current_thread() is self._thread:
            raise UsageError("the sync client cannot be called from its own loop thread")
        return self._wait(asyncio.run_coroutine_threadsafe(_awaited(fn, args, kwargs), loop))

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        """Drive an async iterator from this thread; leaving early closes it on the loop."""
        try:
            while True:
                try:
                    item = self.call(iterator.__anext__)
                except StopAsyncIteration:
                    return
                yield item
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None and self._loop is not None and not self._closed:
                self.call(aclose)

    def close(self, final: Callable[[], Awaitable[None]] | None = None) -> None:
        """Run ``final`` (e.g. the async client's ``aclose``) on the loop, then stop it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if final is not None and thread is not threading.current_thread():
            asyncio.run_coroutine_threadsafe(_awaited(final, (), {}), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not threading.current_thread():
            thread.join(timeout=30)


async def _awaited(fn: Callable[..., Awaitable[T]], args: Any, kwargs: Any) -> T:
    return await fn(*args, **kwargs)


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    try:
        loop.run_forever()
    finally:
        _cancel_leftovers(loop)
        loop.close()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        gathered: Coroutine[Any, Any, Any] = _gather(tasks)
        loop.run_until_complete(gathered)
    loop.run_until_complete(loop.shutdown_asyncgens())


async def _gather(tasks: list[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)
