"""The chat WebSocket: one reader task routing frames to callers by ``request_id``.

Callers never call ``recv()``. Each request registers an :class:`Inbox` under a fresh
``request_id`` *before* its frame is sent; the single reader task parses every frame and
drops it into the matching inbox. A bare ``{}`` is answered with ``{}``; frames nobody waits
for are logged and dropped. When the socket dies, every inbox bound to it is failed with
:class:`~caiclient.errors.Disconnected`, and the next request opens a new socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType

from ._transport import WebSocket
from .errors import CaiError, Disconnected, Timeout
from .protocol.neo import KEEPALIVE, Event, Keepalive, Malformed, UnknownFrame, parse_frame

__all__ = ["Inbox", "NeoSocket"]

log = logging.getLogger("caiclient.neo")


class Inbox:
    """The frames of one request, in arrival order, for exactly one consumer."""

    __slots__ = ("_error", "_items", "_loop", "_socket", "_waiter", "request_id", "ws")

    def __init__(self, socket: NeoSocket, request_id: str, ws: WebSocket) -> None:
        self._socket = socket
        self._loop = asyncio.get_running_loop()
        self._items: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: CaiError | None = None
        self.request_id = request_id
        self.ws = ws

    def put(self, event: Event) -> None:
        self._items.append(event)
        self._wake()

    def fail(self, error: CaiError) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def send(self, frame: bytes) -> None:
        """Send this request's frame on the socket the inbox is bound to."""
        if self._error is not None:
            raise self._error
        await self.ws.send(frame)

    async def next(self, deadline: float) -> Event:
        """The next frame for this request; raises Timeout at ``deadline`` (loop time)."""
        while not self._items:
            if self._error is not None:
                raise self._error
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                raise Timeout(f"no answer to request {self.request_id} in time")
            waiter = self._loop.create_future()
            self._waiter = waiter
            timer = self._loop.call_at(deadline, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        return self._items.popleft()

    async def __aenter__(self) -> Inbox:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._socket.unregister(self)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class NeoSocket:
    """One lazily opened WebSocket shared by every request of a client."""

    def __init__(self, connect: Callable[[], Awaitable[WebSocket]]) -> None:
        self._connect = connect
        self._ws: WebSocket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._inboxes: dict[str, Inbox] = {}
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Requests currently waiting for frames."""
        return len(self._inboxes)

    async def _ensure_open(self) -> WebSocket:
        ws = self._ws
        if ws is not None:
            return ws
        async with self._lock:
            if self._closed:
                raise Disconnected("the client is closed")
            if self._ws is None:
                ws = await self._connect()
                self._ws = ws
                self._reader = asyncio.create_task(self._read(ws), name="caiclient-neo-reader")
            return self._ws

    async def subscribe(self, request_id: str) -> Inbox:
        """Open the socket if needed and register an inbox for ``request_id``.

        Use as ``async with await socket.subscribe(rid) as inbox:`` so it is unregistered.
        """
        ws = await self._ensure_open()
        inbox = Inbox(self, request_id, ws)
        self._inboxes[request_id] = inbox
        return inbox

    def unregister(self, inbox: Inbox) -> None:
        if self._inboxes.get(inbox.request_id) is inbox:
            del self._inboxes[inbox.request_id]

    async def _read(self, ws: WebSocket) -> None:
        error: CaiError = Disconnected("the WebSocket closed")
        try:
            while True:
                event = parse_frame(await ws.recv())
                if isinstance(event, Keepalive):
                    await self._answer_keepalive(ws)
                else:
                    self._dispatch(event)
        except Disconnected as exc:
            error = exc
            log.info("chat socket closed: %s", exc)
        finally:
            self._drop(ws, error)

    def _dispatch(self, event: Event) -> None:
        request_id = event.request_id
        if request_id is not None:
            inbox = self._inboxes.get(request_id)
            if inbox is not None:
                inbox.put(event)
                return
        if isinstance(event, (UnknownFrame, Malformed)):
            log.warning("dropped a frame the client does not understand: %r", event)
        else:
            log.debug("dropped a %s frame for no waiting request", type(event).__name__)

    async def _answer_keepalive(self, ws: WebSocket) -> None:
        try:
            await ws.send(KEEPALIVE)
        except Disconnected:
            log.debug("keepalive answer lost: socket closed")

    def _drop(self, ws: WebSocket, error: CaiError) -> None:
        if self._ws is ws:
            self._ws = None
            self._reader = None
        for inbox in list(self._inboxes.values()):
            if inbox.ws is ws:
                inbox.fail(error)

    async def aclose(self) -> None:
        """Close the socket and fail every waiting request with Disconnected. Idempotent."""
        self._closed = True
        async with self._lock:
            ws, reader = self._ws, self._reader
            self._ws = self._reader = None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if ws is not None:
            self._drop(ws, Disconnected("the client was closed"))
            await ws.close()
