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
from .errors import AuthError, BlockedError, CaiError, Disconnected, Timeout, TransportError
from .protocol.neo import KEEPALIVE, Event, Keepalive, Malformed, UnknownFrame, parse_frame
from .protocol.retry import Backoff

__all__ = ["Inbox", "NeoSocket"]

log = logging.getLogger("caiclient.neo")


class Inbox:
    """The frames of one request, in arrival order, for exactly one consumer."""

    __slots__ = (
        "_error",
        "_expired",
        "_items",
        "_loop",
        "_socket",
        "_timer",
        "_timer_at",
        "_waiter",
        "request_id",
        "ws",
    )

    def __init__(self, socket: NeoSocket, request_id: str, ws: WebSocket) -> None:
        self._socket = socket
        self._loop = asyncio.get_running_loop()
        self._items: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: CaiError | None = None
        # One deadline timer per request, armed on the first wait (not one per frame).
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._expired = False
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

    def _on_deadline(self) -> None:
        self._expired = True
        self._wake()

    async def next(self, deadline: float) -> Event:
        """The next frame for this request; raises Timeout at ``deadline`` (loop time)."""
        items = self._items
        while not items:
            if self._error is not None:
                raise self._error
            if deadline != self._timer_at:
                self.close()
                self._timer_at = deadline
                self._expired = False
                self._timer = self._loop.call_at(deadline, self._on_deadline)
            if self._expired or self._loop.time() >= deadline:
                raise Timeout(f"no answer to request {self.request_id} in time")
            waiter = self._loop.create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        return items.popleft()

    def close(self) -> None:
        """Stop the deadline timer (the socket unregisters the inbox itself)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def __aenter__(self) -> Inbox:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._socket.unregister(self)


class NeoSocket:
    """One WebSocket shared by every request of a client, reopened when it dies.

    The socket opens on the first request. When it drops, waiting requests fail with
    :class:`~caiclient.errors.Disconnected` (the chats API then recovers their replies) and a
    background task reconnects with jittered exponential backoff; requests made meanwhile
    wait for it, bounded by their own deadline. An :class:`AuthError` or
    :class:`BlockedError` while connecting is final: retrying cannot fix it.

    A socket that goes silent while requests wait (``idle_timeout`` seconds without a frame)
    is treated as dropped: half-way through, it is probed with ``{}``, which the service
    answers, so any frame at all proves it alive.
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[WebSocket]],
        *,
        backoff: Backoff | None = None,
        idle_timeout: float = 30.0,
        connect_timeout: float = 30.0,
    ) -> None:
        self._connect = connect
        self._backoff = backoff or Backoff()
        self._idle_timeout = idle_timeout
        self._connect_timeout = connect_timeout
        self._ws: WebSocket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connector: asyncio.Task[WebSocket] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._last_frame = 0.0
        self._probed = False
        self._inboxes: dict[str, Inbox] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._closed = False
        self.connects = 0
        self.drops = 0

    @property
    def in_flight(self) -> int:
        """Requests currently waiting for frames."""
        return len(self._inboxes)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def _ensure_open(self, deadline: float | None) -> WebSocket:
        ws = self._ws
        if ws is not None:
            return ws
        if self._closed:
            raise Disconnected("the client is closed")
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + self._connect_timeout
        connector = self._start_connector()
        try:
            return await asyncio.wait_for(asyncio.shield(connector), deadline - loop.time())
        except (asyncio.TimeoutError, TimeoutError):
            raise Timeout("the chat socket could not be (re)opened in time") from None

    def _start_connector(self) -> asyncio.Task[WebSocket]:
        connector = self._connector
        if connector is None or connector.done():
            connector = asyncio.create_task(self._connect_loop(), name="caiclient-neo-connect")
            connector.add_done_callback(_log_failure)
            self._connector = connector
        return connector

    async def _connect_loop(self) -> WebSocket:
        delays = self._backoff.delays()
        while True:
            try:
                ws = await self._connect()
            except (AuthError, BlockedError):
                raise  # Retrying cannot fix a bad token or a block.
            except TransportError as exc:
                delay = next(delays, None)
                if delay is None:
                    raise Disconnected(f"the chat socket could not be reopened: {exc}") from None
                log.info("chat socket connect failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            if self._closed:
                await ws.close()
                raise Disconnected("the client is closed")
            self._install(ws)
            return ws

    def _install(self, ws: WebSocket) -> None:
        self.connects += 1
        self._ws = ws
        self._last_frame = asyncio.get_running_loop().time()
        self._reader = asyncio.create_task(self._read(ws), name="caiclient-neo-reader")
        self._arm_watchdog()

    async def subscribe(self, request_id: str, deadline: float | None = None) -> Inbox:
        """Open the socket if needed and register an inbox for ``request_id``.

        Use as ``async with await socket.subscribe(rid, deadline) as inbox:`` so that it is
        unregistered. Raises Timeout if the socket cannot be opened by ``deadline``.
        """
        ws = await self._ensure_open(deadline)
        inbox = Inbox(self, request_id, ws)
        self._inboxes[request_id] = inbox
        return inbox

    def unregister(self, inbox: Inbox) -> None:
        inbox.close()
        if self._inboxes.get(inbox.request_id) is inbox:
            del self._inboxes[inbox.request_id]

    async def _read(self, ws: WebSocket) -> None:
        error: CaiError = Disconnected("the WebSocket closed")
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await ws.recv()
                self._last_frame = loop.time()
                self._probed = False
                event = parse_frame(data)
                if isinstance(event, Keepalive):
                    await self._send_quietly(ws, KEEPALIVE)
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

    async def _send_quietly(self, ws: WebSocket, frame: bytes) -> None:
        try:
            await ws.send(frame)
        except Disconnected:
            log.debug("keepalive lost: socket closed")

    # --- silent-socket detection ------------------------------------------------------------

    def _arm_watchdog(self) -> None:
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(self._idle_timeout / 4, self._check_idle)

    def _check_idle(self) -> None:
        ws = self._ws
        if ws is None:
            return
        self._arm_watchdog()
        if not self._inboxes:
            return
        idle = asyncio.get_running_loop().time() - self._last_frame
        if idle >= self._idle_timeout:
            log.warning("chat socket silent for %.1f s with requests waiting; reopening", idle)
            ws.abort()
        elif idle >= self._idle_timeout / 2 and not self._probed:
            self._probed = True
            task = asyncio.ensure_future(self._send_quietly(ws, KEEPALIVE))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    # --- drops and shutdown -----------------------------------------------------------------

    def _drop(self, ws: WebSocket, error: CaiError) -> None:
        if self._ws is ws:
            self._ws = None
            self._reader = None
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
            if not self._closed:
                self.drops += 1
                self._start_connector()  # Reconnect in the background at once.
        for inbox in list(self._inboxes.values()):
            if inbox.ws is ws:
                inbox.fail(error)

    async def aclose(self) -> None:
        """Close the socket and fail every waiting request with Disconnected. Idempotent."""
        self._closed = True
        connector, self._connector = self._connector, None
        if connector is not None and not connector.done():
            connector.cancel()
            with contextlib.suppress(asyncio.CancelledError, CaiError):
                await connector
        ws, reader = self._ws, self._reader
        self._ws = self._reader = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if ws is not None:
            self._drop(ws, Disconnected("the client was closed"))
            await ws.close()


def _log_failure(task: asyncio.Task[WebSocket]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.info("chat socket connect gave up: %s", exc)
