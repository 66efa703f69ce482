"""A first-come-first-served lock per key, with deadlines, for "one thing at a time per chat".

The service generates one turn at a time per chat, so calls that change a chat's turns wait
for each other; calls about other chats do not. Waiting for the lock counts against the
call's deadline like every other wait.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from types import TracebackType

from ._deadline import Deadline
from .errors import Timeout

__all__ = ["KeyedLocks", "Lease"]


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
    allocates one deque and the lease. Waiters' deadlines share one timer (a heap swept at
    the earliest deadline), not one loop timer each: a thousand chats with ten messages
    queued each would otherwise load the loop's own timer heap with nine thousand handles.
    """

    def __init__(self) -> None:
        # key -> [holder marker, waiters…]; the head of the deque holds the lock.
        self._queues: dict[str, deque[asyncio.Future[None] | None]] = {}
        self._deadlines: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_at = float("inf")
        self._waiting = 0

    def held(self, key: str) -> bool:
        return key in self._queues

    async def acquire(self, key: str, deadline: Deadline) -> Lease:
        """Wait for the lock of ``key`` until ``deadline`` (Timeout after it). Cancelling
        the wait is safe: a lock handed over at that moment is passed on at once."""
        queue = self._queues.get(key)
        if queue is None:
            self._queues[key] = deque((None,))
            return Lease(self, key)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        self._expire_at(deadline.at, waiter)
        self._waiting += 1
        try:
            await waiter
        except BaseException:
            if _granted(waiter):
                self._release(key)  # Handed the lock just as we gave up: pass it on.
            elif waiter in queue:
                queue.remove(waiter)
            raise
        finally:
            self._waiting -= 1
            self._compact()
        return Lease(self, key)

    def _compact(self) -> None:
        """Drop the deadlines of waiters that are done, once they are most of the heap, so
        it stays as small as the waits in progress."""
        heap = self._deadlines
        if len(heap) > 4 * self._waiting + 1024:
            self._deadlines = [entry for entry in heap if not entry[2].done()]
            heapq.heapify(self._deadlines)

    def _expire_at(self, at: float, waiter: asyncio.Future[None]) -> None:
        heapq.heappush(self._deadlines, (at, next(self._order), waiter))
        if at < self._sweep_at:
            if self._sweeper is not None:
                self._sweeper.cancel()
            self._sweep_at = at
            self._sweeper = asyncio.get_running_loop().call_at(at, self._sweep)

    def _sweep(self) -> None:
        """Fail every waiter whose deadline has passed; sleep until the next one."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            waiter = heapq.heappop(heap)[2]
            if not waiter.done():
                waiter.set_exception(
                    Timeout("waited too long for the chat's previous request to end")
                )
        while heap and heap[0][2].done():
            heapq.heappop(heap)  # Granted or gone already: nothing to expire.
        self._sweeper = None
        self._sweep_at = float("inf")
        if heap:
            self._sweep_at = heap[0][0]
            self._sweeper = loop.call_at(self._sweep_at, self._sweep)

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
