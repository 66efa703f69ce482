"""Run an emulator on its own event-loop thread, for synchronous code and any test runner."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from types import TracebackType
from typing import Any

from .app import Emulator

__all__ = ["BackgroundEmulator"]


class BackgroundEmulator:
    """``with BackgroundEmulator(chunk_delay=0) as emu:`` — an :class:`Emulator` served from a
    private thread; ``emu`` is the running Emulator (``url``, ``token``, ``characters``,
    ``faults`` …). Keyword arguments go to :class:`Emulator`.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.emulator: Emulator | None = None

    def start(self) -> Emulator:
        if self._thread is not None:
            raise RuntimeError("already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name="caiclient-emulator", daemon=True
        )
        self._thread.start()
        started: Future[Emulator] = asyncio.run_coroutine_threadsafe(self._start(), loop)
        try:
            self.emulator = started.result(timeout=30)
        except BaseException:
            self.stop()
            raise
        return self.emulator

    async def _start(self) -> Emulator:
        emulator = Emulator(**self._kwargs)
        await emulator.start()
        return emulator

    def stop(self) -> None:
        loop, thread, emulator = self._loop, self._thread, self.emulator
        if loop is None or thread is None:
            return
        if emulator is not None:
            asyncio.run_coroutine_threadsafe(emulator.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
