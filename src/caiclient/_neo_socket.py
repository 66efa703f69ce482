"""The chat WebSocket: one reader task routing frames to callers by ``request_id``.

Callers never call ``recv()``. Each request registers an :class:`Inbox` under a fresh
``request_id`` *before* its frame is sent; the single reader task parses every frame and
drops it into the matching inbox. Frames nobody waits for are logged and dropped. When the
socket dies, every inbox bound to it is failed with :class:`~caiclient.errors.Disconnected`.

Keepalive (docs/protocol.md §8.1): any frame proves the socket alive. A bare ``{}`` from
the server is answered with ``{}``, unless it answers a :meth:`NeoSocket.ping` or we sent a
``{}`` less than ``KEEPALIVE_MIN_INTERVAL`` ago (then it is the echo of ours), so no peer that
echoes ``{}`` can start an endless exchange.

Reconnecting follows :func:`~caiclient.protocol.retry.reconnect_verdict` and the jittered
backoff: a connection that closes before it delivered a single frame counts as a failed
attempt (the backoff keeps growing), and a socket that drops while nobody waits on it is
reopened only when the next request needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType

from ._config import KEEPALIVE_MIN_INTERVAL, ClientOptions
from ._deadline import Deadline
from ._transport import WebSocket
from .errors import CaiError, ClientClosed, Disconnected, Timeout, TransportError
from .protocol.neo import KEEPALIVE, Event, Keepalive, Malformed, UnknownFrame, parse_frame
from .protocol.retry import reconnect_verdict

__all__ = ["Inbox", "NeoSocket"]

log = logging.getLogger("caiclient.neo")


class Inbox:
    """The frames of one request, in arrival order, for exactly one consumer.

    ``abort_frame`` is set by a caller whose request makes the server generate: if the
    client is closed before the generation ends, the socket sends it first.
    """

    __slots__ = (
        "_error",
        "_expired",
        "_items",
        "_loop",
        "_socket",
        "_timer",
        "_timer_at",
        "_waiter",
        "abort_frame",
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
        self.abort_frame: bytes | None = None
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

    async def next(self, deadline: Deadline) -> Event:
        """The next frame for this request; raises Timeout at ``deadline``."""
        items = self._items
        while not items:
            if self._error is not None:
                raise self._error
            at = deadline.at
            if at != self._timer_at:
                self.close()
                self._timer_at = at
                self._expired = False
                self._timer = self._loop.call_at(at, self._on_deadline)
            if self._expired or self._loop.time() >= at:
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


class Subscription:
    """``async with socket.subscribe(request_id, deadline) as inbox:`` — opens the socket
    if needed (within ``deadline``), registers the inbox before anything is sent, and
    unregisters it on the way out."""

    __slots__ = ("_deadline", "_inbox", "_request_id", "_socket")

    def __init__(self, socket: NeoSocket, request_id: str, deadline: Deadline) -> None:
        self._socket = socket
        self._request_id = request_id
        self._deadline = deadline
        self._inbox: Inbox | None = None

    async def __aenter__(self) -> Inbox:
        self._inbox = await self._socket.register(self._request_id, self._deadline)
        return self._inbox

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._inbox is not None:
            self._socket.unregister(self._inbox)


class NeoSocket:
    """One WebSocket shared by every request of a client, reopened when needed.

    ``connect`` opens a socket; it is the core's, which asks REST to explain a refused
    upgrade (bad token or block). The socket opens on the first request. When it drops,
    waiting requests fail with :class:`~caiclient.errors.Disconnected` (the chats API then
    recovers their replies) and, if any were waiting, a background task reconnects with
    jittered exponential backoff; requests made meanwhile wait for it, bounded by their own
    deadline.

    A socket that goes silent while requests wait (``idle_timeout`` seconds without a frame)
    is treated as dropped: half-way through, it is probed with ``{}``.
    """

    def __init__(self, connect: Callable[[], Awaitable[WebSocket]], options: ClientOptions):
        self._connect = connect
        self._backoff = options.reconnect
        self._idle_timeout = options.idle_timeout
        self._connect_timeout = options.timeout
        self._ws: WebSocket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connector: asyncio.Task[WebSocket] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._last_frame = 0.0
        self._probed = False
        self._last_keepalive_sent = float("-inf")
        self._pongs: list[asyncio.Future[None]] = []
        self._inboxes: dict[str, Inbox] = {}
        self._background: set[asyncio.Task[None]] = set()
        # The failure streak of reconnects: kept until a connection proves useful.
        self._delays: Iterator[float] | None = None
        self._useful = False
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

    def subscribe(self, request_id: str, deadline: Deadline) -> Subscription:
        """An inbox for ``request_id``, as an async context manager (see Subscription)."""
        return Subscription(self, request_id, deadline)

    async def register(self, request_id: str, deadline: Deadline) -> Inbox:
        """Open the socket if needed and register an inbox for ``request_id`` (the caller
        must :meth:`unregister` it). Raises Timeout if the socket cannot be opened in time."""
        ws = self._ws or await self._ensure_open(deadline)
        inbox = Inbox(self, request_id, ws)
        self._inboxes[request_id] = inbox
        return inbox

    def unregister(self, inbox: Inbox) -> None:
        inbox.close()
        if self._inboxes.get(inbox.request_id) is inbox:
            del self._inboxes[inbox.request_id]

    # --- opening ----------------------------------------------------------------------------

    async def _ensure_open(self, deadline: Deadline) -> WebSocket:
        ws = self._ws
        if ws is not None:
            return ws
        if self._closed:
            raise ClientClosed("the client is closed")
        connector = self._start_connector()
        try:
            return await asyncio.wait_for(asyncio.shield(connector), deadline.remaining())
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
        if self._delays is not None:
            # The last connection died before it delivered a frame: that was a failed
            # attempt, so wait as the backoff says before the next one.
            await self._pause()
        while True:
            try:
                ws = await self._connect()
            except CaiError as exc:
                final = reconnect_verdict(exc)
                if final is not None:
                    self._delays = None
                    raise final from None
                log.info("chat socket connect failed (%s)", exc)
                await self._pause(exc)
                continue
            if self._closed:
                await ws.close()
                raise ClientClosed("the client is closed")
            self._install(ws)
            return ws

    async def _pause(self, error: CaiError | None = None) -> None:
        """Wait the next delay of the failure streak; give up when the backoff is spent."""
        if self._delays is None:
            self._delays = self._backoff.delays()
        delay = next(self._delays, None)
        if delay is None:
            self._delays = None  # The next request starts a new streak.
            why = f": {error}" if error is not None else ""
            raise Disconnected(f"the chat socket could not be reopened{why}")
        log.info("reopening the chat socket in %.2f s", delay)
        await asyncio.sleep(delay)

    def _install(self, ws: WebSocket) -> None:
        self.connects += 1
        self._ws = ws
        self._useful = False
        self._probed = False
        self._last_frame = asyncio.get_running_loop().time()
        self._reader = asyncio.create_task(self._read(ws), name="caiclient-neo-reader")
        self._arm_watchdog()

    # --- reading ----------------------------------------------------------------------------

    async def _read(self, ws: WebSocket) -> None:
        error: CaiError = Disconnected("the WebSocket closed")
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await ws.recv()
                self._last_frame = loop.time()
                self._probed = False
                if not self._useful:
                    self._useful = True
                    self._delays = None  # It works: the failure streak is over.
                self._take(ws, parse_frame(data))
        except Disconnected as exc:
            error = exc
            log.info("chat socket closed: %s", exc)
        except Exception as exc:
            # A bug or an unforeseen frame must not kill the reader while the socket lives
            # on: close the socket it read from; the next request opens a new one.
            log.exception("the chat socket reader failed; closing that socket")
            error = Disconnected(f"the chat socket reader failed: {exc!r}")
            ws.abort()
        finally:
            self._drop(ws, error)

    def _take(self, ws: WebSocket, event: Event) -> None:
        if isinstance(event, Keepalive):
            self._keepalive(ws)
            return
        request_id = event.request_id
        if request_id is not None:
            inbox = self._inboxes.get(request_id)
            if inbox is not None:
                inbox.put(event)
                return
        if isinstance(event, (UnknownFrame, Malformed)):
            log.warning("dropped a frame the client does not understand: %.200r", event)
        else:
            log.debug("dropped a %s frame for no waiting request", type(event).__name__)

    def _keepalive(self, ws: WebSocket) -> None:
        """A bare ``{}``: the answer to our probe, or the server's probe (answered, at most
        once per ``KEEPALIVE_MIN_INTERVAL``)."""
        pongs, self._pongs = self._pongs, []
        for pong in pongs:
            if not pong.done():
                pong.set_result(None)
        if pongs:
            return
        now = asyncio.get_running_loop().time()
        if now - self._last_keepalive_sent >= KEEPALIVE_MIN_INTERVAL:
            self._send_keepalive(ws, now)

    def _send_keepalive(self, ws: WebSocket, now: float) -> None:
        self._last_keepalive_sent = now
        self._send_soon(ws, KEEPALIVE)

    def _send_soon(self, ws: WebSocket, frame: bytes) -> None:
        task = asyncio.ensure_future(self._send_quietly(ws, frame))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_quietly(self, ws: WebSocket, frame: bytes) -> None:
        try:
            await ws.send(frame)
        except Disconnected:
            log.debug("frame not sent: socket closed")

    def send_soon(self, frame: bytes) -> None:
        """Send ``frame`` without waiting for it (e.g. ``abort_generation``), if the socket
        is open; a closed socket drops it."""
        if self._ws is not None:
            self._send_soon(self._ws, frame)

    async def ping(self, deadline: Deadline) -> float:
        """Open the socket if needed, send a keepalive probe and return the seconds until
        the server's answer. Raises Timeout at ``deadline``, Disconnected, or what opening
        the socket raises."""
        loop = asyncio.get_running_loop()
        ws = await self._ensure_open(deadline)
        pong: asyncio.Future[None] = loop.create_future()
        self._pongs.append(pong)
        started = loop.time()
        self._send_keepalive(ws, started)
        try:
            await asyncio.wait_for(asyncio.shield(pong), deadline.remaining())
        except (asyncio.TimeoutError, TimeoutError):
            raise Timeout("the chat socket did not answer the keepalive probe in time") from None
        finally:
            if pong in self._pongs:
                self._pongs.remove(pong)
        return loop.time() - started

    # --- silent-socket detection ------------------------------------------------------------

    def _arm_watchdog(self) -> None:
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(self._idle_timeout / 4, self._check_idle)

    def _check_idle(self) -> None:
        ws = self._ws
        if ws is None:
            return
        self._arm_watchdog()
        if not self._inboxes and not self._pongs:
            return
        now = asyncio.get_running_loop().time()
        idle = now - self._last_frame
        if idle >= self._idle_timeout:
            log.warning("chat socket silent for %.1f s with requests waiting; reopening", idle)
            ws.abort()
        elif idle >= self._idle_timeout / 2 and not self._probed:
            self._probed = True
            self._send_keepalive(ws, now)

    # --- drops and shutdown -----------------------------------------------------------------

    def _drop(self, ws: WebSocket, error: CaiError) -> None:
        if self._ws is ws:
            self._ws = None
            self._reader = None
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
            if not self._useful and self._delays is None:
                self._delays = self._backoff.delays()  # Died unproven: a failed attempt.
            if not self._closed:
                self.drops += 1
                if any(inbox.ws is ws for inbox in self._inboxes.values()):
                    self._start_connector()  # Requests are waiting: reconnect at once.
        for pong in self._pongs:
            if not pong.done():
                pong.set_exception(error)
        self._pongs = []
        for inbox in list(self._inboxes.values()):
            if inbox.ws is ws:
                inbox.fail(error)

    async def aclose(self) -> None:
        """Stop generations in flight (``abort_generation``), close the socket and fail
        every waiting request with ClientClosed. Idempotent."""
        self._closed = True
        connector, self._connector = self._connector, None
        if connector is not None and not connector.done():
            connector.cancel()
            with contextlib.suppress(asyncio.CancelledError, CaiError):
                await connector
        ws, reader = self._ws, self._reader
        if ws is not None:
            await self._abort_generations(ws)
            # Waiters learn why before the reader's own ending could call it a mere drop.
            self._drop(ws, ClientClosed("the client was closed"))
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if ws is not None:
            await ws.close()
        for task in list(self._background):
            task.cancel()

    async def _abort_generations(self, ws: WebSocket) -> None:
        frames = [i.abort_frame for i in self._inboxes.values() if i.abort_frame and i.ws is ws]
        for frame in frames:
            # Best effort while closing: a socket too broken to take the frame is being
            # dropped anyway, and its generations then stop on the server's side too.
            with contextlib.suppress(TransportError, asyncio.TimeoutError):
                await asyncio.wait_for(ws.send(frame), 1.0)


def _log_failure(task: asyncio.Task[WebSocket]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.info("chat socket connect gave up: %s", exc)
