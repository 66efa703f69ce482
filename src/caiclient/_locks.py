"""A first-come-first-served lock per key, with deadlines, for "one thing at a time per chat".

The service generates one turn at a time per chat, so calls that change a chat's turns wait
for each other; calls about other chats do not. Waiting for the lock counts against the
call's deadline like every other wait.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType

from ._deadline import Deadline
from .errors import Timeout

__all__ = ["KeyedLocks", "Lease"]


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(Timeout("waited too long for the chat's previous request to end"))


def _granted(waiter: asyncio.Future[None]) -> bool:
    return waiter.done() and not waiter.cancelled() and waiter.exception() is None


class Lease:
    """The lock of one key, held until :meth:`release` (idempotent)."""

    __slots__ = ("_key", "_locks")

    def __init__(self, locks: KeyedLocks, key: str) -> None:
        self._locks: KeyedLocks | None = locks
        self._key = key

    def release(self) -> None:
        locks, self._locks = self._locks, None
        if locks is not None:
            locks._release(self._key)

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class KeyedLocks:
    """One FIFO lock per key, forgotten when nobody holds or awaits it.

    Hand-rolled rather than an ``asyncio.Lock`` per key: taking an uncontended lock
    allocates one deque and the lease, and the deadline needs no extra task.
    """

    def __init__(self) -> None:
        # key -> [holder marker, waiters…]; the head of the deque holds the lock.
        self._queues: dict[str, deque[asyncio.Future[None] | None]] = {}

    def held(self, key: str) -> bool:
        return key in self._queues

    async def acquire(self, key: str, deadline: Deadline) -> Lease:
        """Wait for the lock of ``key`` until ``deadline`` (Timeout after it). Cancelling
        the wait is safe: a lock handed over at that moment is passed on at once."""
        queue = self._queues.get(key)
        if queue is None:
            self._queues[key] = deque((None,))
            return Lease(self, key)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        queue.append(waiter)
        timer = loop.call_at(deadline.at, _expire, waiter)
        try:
            await waiter
        except BaseException:
            if _granted(waiter):
                self._release(key)  # Handed the lock just as we gave up: pass it on.
            elif waiter in queue:
                queue.remove(waiter)
            raise
        finally:
            timer.cancel()
        return Lease(self, key)

    def _release(self, key: str) -> None:
        queue = self._queues[key]
        queue.popleft()
        while queue:
            waiter = queue[0]
            if waiter is not None and not waiter.done():
                waiter.set_result(None)  # It holds the lock now, at the head.
                return
            queue.popleft()  # Gave up (timed out or cancelled) before its turn.
        del self._queues[key]
