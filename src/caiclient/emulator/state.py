"""Shared, mutable state of one running emulator, reachable from every request handler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from .store import Store

__all__ = ["STATE", "State"]

log = logging.getLogger("caiclient.emulator")


class State:
    """Store, streaming knobs, and the background tasks and sockets to clean up on stop."""

    def __init__(self, store: Store, *, chunk_delay: float, chunks: int) -> None:
        self.store = store
        self.chunk_delay = chunk_delay
        self.chunks = chunks
        self.tasks: set[asyncio.Task[None]] = set()
        self.sockets: set[web.WebSocketResponse] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a tracked background task; its failure is logged, never lost."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

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


STATE = web.AppKey("caiclient_emulator_state", State)
