"""How a sync paces itself: its options, and the one pacer every request goes through.

:class:`Pacer` holds a concurrency cap, a minimum spacing (``rate`` per second) and a pause
shared by every request after ``RateLimited`` (its ``retry_after``, else a growing backoff)
or ``BlockedError`` (a growing backoff): the run waits instead of hammering the service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from ..errors import BlockedError, RateLimited, ValidationError
from ..protocol.retry import Backoff
from .events import Counters, Event, Paused

__all__ = ["Budget", "Pacer", "SyncOptions"]

T = TypeVar("T")
Progress = Callable[[Event], None]


_RATE_LIMIT_BACKOFF = Backoff(initial=5.0, max_delay=120.0, jitter=0.2, attempts=6)
_BLOCK_BACKOFF = Backoff(initial=30.0, max_delay=300.0, jitter=0.2, attempts=3)


@dataclass(frozen=True)
class SyncOptions:
    """How a sync runs. Defaults are polite to the live service.

    - ``characters`` / ``chats``: only these (ids); default every chat of the account.
    - ``since``: skip chats with no activity since then (their newest turn is older).
    - ``full``: re-read every page of every chat, not just the re-check window.
    - ``v1``: also archive legacy Chat V1 histories.
    - ``rate``: at most this many requests per second (None: no limit).
    - ``concurrency``: requests in flight at once.
    - ``recheck_pages``: newest pages re-read in every archived chat (swipes, edits, pins).
    - ``rate_limit_backoff`` / ``block_backoff``: waits after ``RateLimited`` without a
      ``retry_after``, and after ``BlockedError``; when they run out the error stands.
    """

    characters: Sequence[str] | None = None
    chats: Sequence[str] | None = None
    since: datetime | None = None
    full: bool = False
    v1: bool = True
    avatars: bool = True
    rate: float | None = 4.0
    concurrency: int = 4
    recheck_pages: int = 1
    rate_limit_backoff: Backoff = _RATE_LIMIT_BACKOFF
    block_backoff: Backoff = _BLOCK_BACKOFF

    def __post_init__(self) -> None:
        if self.rate is not None and not self.rate > 0:
            raise ValidationError("rate must be a positive number of requests per second, or None")
        if not 1 <= self.concurrency <= 64:
            raise ValidationError("concurrency must be between 1 and 64")
        if self.recheck_pages < 1:
            raise ValidationError("recheck_pages must be at least 1")
        if self.characters is not None and self.chats is not None:
            raise ValidationError("give characters or chats, not both")
        for value in (*(self.characters or ()), *(self.chats or ())):
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(f"not an id: {value!r}")
        if self.since is not None and not isinstance(self.since, datetime):
            raise ValidationError("since must be a datetime")

    @property
    def mode(self) -> str:
        return "full" if self.full else "incremental"


class Budget:
    """The retries one logical request may still spend on rate limits and blocks."""

    def __init__(self, options: SyncOptions) -> None:
        self._rate = options.rate_limit_backoff.delays()
        self._block = options.block_backoff.delays()

    def wait_for(self, exc: Exception) -> tuple[float, str] | None:
        if isinstance(exc, BlockedError):
            wait = next(self._block, None)
            return None if wait is None else (wait, "blocked")
        planned = next(self._rate, None)
        if planned is None:
            return None
        retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
        return (planned if retry_after is None else retry_after), "rate limited"


class Pacer:
    """Every request of a run: a concurrency cap, a minimum spacing, a shared pause."""

    def __init__(self, options: SyncOptions, counters: Counters, emit: Progress) -> None:
        self._options = options
        self._counters = counters
        self._emit = emit
        self._slots = asyncio.Semaphore(options.concurrency)
        self._interval = 1.0 / options.rate if options.rate else 0.0
        self._next = 0.0
        self._resume_at = 0.0

    async def _turn(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            wait = max(self._resume_at, self._next) - loop.time()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        self._next = loop.time() + self._interval

    async def once(self, call: Callable[[], Awaitable[T]]) -> T:
        """One request, when the cap, the spacing and any pause allow."""
        async with self._slots:
            await self._turn()
            self._counters.requests += 1
            return await call()

    async def call(self, call: Callable[[], Awaitable[T]], budget: Budget | None = None) -> T:
        """One request, retried after rate limits and blocks while the budget lasts."""
        budget = budget or Budget(self._options)
        while True:
            try:
                return await self.once(call)
            except (RateLimited, BlockedError) as exc:
                self.back_off(exc, budget)

    def back_off(self, exc: RateLimited | BlockedError, budget: Budget) -> None:
        """Pause every request for the budget's next wait, or re-raise ``exc`` if spent."""
        planned = budget.wait_for(exc)
        if planned is None:
            raise exc
        wait, reason = planned
        loop = asyncio.get_running_loop()
        self._resume_at = max(self._resume_at, loop.time() + wait)
        self._emit(Paused(self._counters, wait, reason))
