"""Shared, mutable state of one running emulator, reachable from every request handler.

Besides the core store and the streaming knobs it holds what lives only while the server
runs: background tasks and open sockets (cleaned up on stop), the generations that
``abort_generation`` may stop, and the record of honoured aborts (``emu.aborts``).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .store import Store

__all__ = ["STATE", "Abort", "Generation", "State"]

log = logging.getLogger("caiclient.emulator")


@dataclass(frozen=True, slots=True)
class Abort:
    """One honoured ``abort_generation``: the generation's request id, its chat (or room),
    the turn that holds the stopped reply and the text stored; ``turn_id`` and ``text`` are
    ``""`` when it stopped before its first frame (docs/protocol.md §8.5, docs/emulator.md
    "Abort")."""

    request_id: str
    chat_id: str
    turn_id: str
    text: str


class Generation:
    """A running generation that ``abort_generation`` may stop."""

    __slots__ = ("_stop", "arrival", "request_id")

    def __init__(self, request_id: object) -> None:
        self.request_id = request_id
        self.arrival = 0
        """The abort's place among all aborts, set when stopped."""
        self._stop = asyncio.Event()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    async def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` between two frames, or less if stopped meanwhile; whether the
        generation was stopped."""
        if seconds > 0 and not self._stop.is_set():
            with suppress(asyncio.TimeoutError):  # The pause is over; nobody stopped us.
                await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()


class State:
    """Store, streaming knobs, and the runtime-only state of one emulator."""

    def __init__(self, store: Store, *, chunk_delay: float, chunks: int) -> None:
        self.store = store
        self.chunk_delay = chunk_delay
        self.chunks = chunks
        self.url: str | None = None
        """The emulator's own origin once it listens: every absolute URL it hands out
        (mail links, CDN and audio URLs) starts with it, never with a request's ``Host``."""
        self.tasks: set[asyncio.Task[None]] = set()
        self.sockets: set[web.WebSocketResponse] = set()
        self.generations: dict[tuple[str, str], Generation] = {}
        self.aborts: list[Abort] = []
        self._arrivals: list[int] = []
        self._abort_count = 0

    def origin(self) -> str:
        if self.url is None:  # Handlers only run once the server listens.
            raise RuntimeError("emulator has not been started")
        return self.url

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as a tracked background task; its failure is logged, never lost."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("emulator task failed", exc_info=task.exception())

    async def cancel_tasks(self) -> None:
        """Cancel every background task and wait for them to finish."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # ---- abort_generation ------------------------------------------------------------

    @contextmanager
    def generation(self, user_id: str, request_id: object) -> Iterator[Generation]:
        """Register a generation under its request id while it runs; only string request
        ids can be named by ``abort_generation`` (anything else is never registered)."""
        running = Generation(request_id)
        key = (user_id, request_id) if isinstance(request_id, str) else None
        if key is not None:
            self.generations[key] = running
        try:
            yield running
        finally:
            if key is not None and self.generations.get(key) is running:
                del self.generations[key]

    def abort(self, user_id: str, request_id: object) -> bool:
        """Stop the user's running generation with this request id; False (and nothing
        done) for an unknown or finished one."""
        if not isinstance(request_id, str):
            return False
        running = self.generations.get((user_id, request_id))
        if running is None or running.stopped:
            return False
        self._abort_count += 1
        running.arrival = self._abort_count
        running.stop()
        return True

    def record_abort(self, running: Generation, abort: Abort) -> None:
        """Add ``abort`` to :attr:`aborts` in the order the aborts arrived (a generation
        records its abort when it stops, which may be later for one waiting for its chat)."""
        at = bisect.bisect(self._arrivals, running.arrival)
        self._arrivals.insert(at, running.arrival)
        self.aborts.insert(at, abort)


STATE = web.AppKey("caiclient_emulator_state", State)
