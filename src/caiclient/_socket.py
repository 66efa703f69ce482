"""What both of the service's WebSockets share: one reader, inboxes routed by request id,
opening when needed, reopening with backoff, and noticing a socket that went silent.

:class:`ReconnectingSocket` is the machinery; :class:`~caiclient._neo_socket.NeoSocket`
(the chat socket) and :class:`~caiclient._rooms_socket.RoomSocket` (the Centrifugo socket of
group chats) add their protocol: what a received frame means, what a probe is, what a
handshake needs. Callers never call ``recv()``: each request registers an :class:`Inbox`
*before* its frame is sent; the one reader task drops every frame for it into that inbox.

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
from typing import Any

from ._config import ClientOptions
from ._deadline import Deadline
from .errors import CaiError, ClientClosed, Disconnected, Timeout, TransportError
from .protocol.neo import Event
from .protocol.retry import reconnect_verdict

__all__ = ["Inbox", "ReconnectingSocket", "Sender"]

log = logging.getLogger("caiclient.neo")


class Sender:
    """What an inbox sends its request's frame with (a socket, or a wrapper around one)."""

    async def send(self, data: bytes) -> None:  # pragma: no cover - a protocol
        raise NotImplementedError


class Inbox:
    """The frames of one request, in arrival order, for exactly one consumer.

    ``generating`` is set by a caller whose request makes the server generate: if the
    client is closed before the generation ends, the socket tells the server to stop it.
    """

    __slots__ = (
        "_error",
        "_expired",
        "_items",
        "_loop",
        "_timer",
        "_timer_at",
        "_waiter",
        "generating",
        "request_id",
        "ws",
    )

    def __init__(self, request_id: str, ws: Any) -> None:
        self._loop = asyncio.get_running_loop()
        self._items: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: CaiError | None = None
        # One deadline timer per request, armed on the first wait (not one per frame).
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._expired = False
        self.generating = False
        self.request_id = request_id
        self.ws = ws

    @property
    def pending(self) -> bool:
        """Whether a frame has arrived that :meth:`next` has not returned yet."""
        return bool(self._items)

    def put(self, event: Event) -> None:
        self._items.append(event)
        waiter = self._waiter  # (_wake's lines, inline: this runs for every frame.)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

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


class ReconnectingSocket:
    """One WebSocket shared by every request of a client, reopened when needed.

    ``connect`` opens a socket (the core's, which asks REST to explain a refused upgrade).
    When the socket drops, waiting requests fail with
    :class:`~caiclient.errors.Disconnected` (the callers' policies then recover) and, if any
    were waiting, a background task reconnects; requests made meanwhile wait for it,
    bounded by their own deadline. A socket that stays silent while requests wait
    (``idle_timeout``) is probed half-way and treated as dropped at the end.
    """

    name = "socket"

    def __init__(self, connect: Callable[[], Awaitable[Any]], options: ClientOptions):
        self._connect = connect
        self._backoff = options.reconnect
        self._idle_timeout = options.idle_timeout
        self._ws: Any = None  # the socket the reader reads
        self._ready: Any = None  # the same, once its handshake is done: requests may use it
        self._reader: asyncio.Task[None] | None = None
        self._connector: asyncio.Task[Any] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._last_frame = 0.0
        self._probed = False
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

    async def register(self, request_id: str, deadline: Deadline) -> Inbox:
        """Open the socket if needed and register an inbox for ``request_id`` (the caller
        must :meth:`unregister` it). Raises Timeout if the socket cannot be opened in time."""
        ws = self._ready or await self._ensure_open(deadline)
        inbox = Inbox(request_id, self._sender(ws))
        self._inboxes[request_id] = inbox
        return inbox

    def unregister(self, inbox: Inbox) -> None:
        inbox.close()
        if self._inboxes.get(inbox.request_id) is inbox:
            del self._inboxes[inbox.request_id]

    # --- hooks of the protocols ---------------------------------------------------------------

    def _sender(self, ws: Any) -> Any:
        """What an inbox bound to ``ws`` sends with (the socket itself by default)."""
        return ws

    def _bound(self, inbox: Inbox, ws: Any) -> bool:
        return inbox.ws is ws

    async def _handshake(self, ws: Any) -> None:
        """Run once a socket is open and its reader runs, before requests may use it."""

    def _received(self, ws: Any, data: bytes | str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _probe(self, ws: Any, now: float) -> None:
        """Ask a silent socket for any frame (the protocol's keepalive)."""

    def _waiting(self) -> bool:
        """Whether anything waits on the socket (then silence is suspicious)."""
        return bool(self._inboxes)

    def _dropped(self, ws: Any, error: CaiError) -> None:
        """Fail what waited on ``ws``; by default every inbox bound to it."""
        for inbox in list(self._inboxes.values()):
            if self._bound(inbox, ws):
                inbox.fail(error)

    # --- opening ------------------------------------------------------------------------------

    async def _ensure_open(self, deadline: Deadline) -> Any:
        ws = self._ready
        if ws is not None:
            return ws
        if self._closed:
            raise ClientClosed("the client is closed")
        connector = self._start_connector()
        try:
            return await asyncio.wait_for(asyncio.shield(connector), deadline.remaining())
        except (asyncio.TimeoutError, TimeoutError):
            raise Timeout(f"the {self.name} could not be (re)opened in time") from None

    def _start_connector(self) -> asyncio.Task[Any]:
        connector = self._connector
        if connector is None or connector.done():
            connector = asyncio.create_task(self._connect_loop(), name="caiclient-connect")
            connector.add_done_callback(self._log_failure)
            self._connector = connector
        return connector

    async def _connect_loop(self) -> Any:
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
                log.info("%s: connect failed (%s)", self.name, exc)
                await self._pause(exc)
                continue
            if self._closed:
                await ws.close()
                raise ClientClosed("the client is closed")
            self._install(ws)
            try:
                await self._handshake(ws)
            except BaseException:
                ws.abort()
                raise
            if self._ws is not ws:
                # It died during the handshake: that was a failed attempt.
                await self._pause(Disconnected(f"the {self.name} closed during its handshake"))
                continue
            self._ready = ws
            return ws

    async def _pause(self, error: CaiError | None = None) -> None:
        """Wait the next delay of the failure streak; give up when the backoff is spent."""
        if self._delays is None:
            self._delays = self._backoff.delays()
        delay = next(self._delays, None)
        if delay is None:
            self._delays = None  # The next request starts a new streak.
            why = f": {error}" if error is not None else ""
            raise Disconnected(f"the {self.name} could not be reopened{why}")
        log.info("%s: reopening in %.2f s", self.name, delay)
        await asyncio.sleep(delay)

    def _install(self, ws: Any) -> None:
        self.connects += 1
        self._ws = ws
        self._useful = False
        self._probed = False
        self._last_frame = asyncio.get_running_loop().time()
        self._reader = asyncio.create_task(self._read(ws), name="caiclient-reader")
        self._arm_watchdog()

    # --- reading ------------------------------------------------------------------------------

    async def _read(self, ws: Any) -> None:
        error: CaiError = Disconnected(f"the {self.name} closed")
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await ws.recv()
                self._last_frame = loop.time()
                self._probed = False
                if not self._useful:
                    self._useful = True
                    self._delays = None  # It works: the failure streak is over.
                self._received(ws, data)
        except Disconnected as exc:
            error = exc
            log.info("%s closed: %s", self.name, exc)
        except Exception as exc:
            # A bug or an unforeseen frame must not kill the reader while the socket lives
            # on: close the socket it read from; the next request opens a new one.
            log.exception("the %s reader failed; closing that socket", self.name)
            error = Disconnected(f"the {self.name} reader failed: {exc!r}")
            ws.abort()
        finally:
            self._drop(ws, error)

    def send_soon(self, frame: bytes) -> None:
        """Send ``frame`` without waiting for it (e.g. ``abort_generation``), if the socket
        is open; a closed socket drops it."""
        if self._ready is not None:
            self._send_soon(self._sender(self._ready), frame)

    def _send_soon(self, ws: Any, frame: bytes) -> None:
        task = asyncio.ensure_future(self._send_quietly(ws, frame))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_quietly(self, ws: Any, frame: bytes) -> None:
        try:
            await ws.send(frame)
        except Disconnected:
            log.debug("frame not sent: socket closed")

    # --- silent-socket detection --------------------------------------------------------------

    def _arm_watchdog(self) -> None:
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(self._idle_timeout / 4, self._check_idle)

    def _check_idle(self) -> None:
        ws = self._ws
        if ws is None:
            return
        self._arm_watchdog()
        if not self._waiting():
            return
        now = asyncio.get_running_loop().time()
        idle = now - self._last_frame
        if idle >= self._idle_timeout:
            log.warning("%s silent for %.1f s with requests waiting; reopening", self.name, idle)
            ws.abort()
        elif idle >= self._idle_timeout / 2 and not self._probed:
            self._probed = True
            self._probe(ws, now)

    # --- drops and shutdown -------------------------------------------------------------------

    def _drop(self, ws: Any, error: CaiError) -> None:
        if self._ws is ws:
            self._ws = self._ready = None
            self._reader = None
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
            if not self._useful and self._delays is None:
                self._delays = self._backoff.delays()  # Died unproven: a failed attempt.
            if not self._closed:
                self.drops += 1
        self._dropped(ws, error)
        if not self._closed and self._ws is None and self._waiting():
            self._start_connector()  # Requests are waiting: reconnect at once.

    async def _stop_connector(self) -> None:
        connector, self._connector = self._connector, None
        if connector is not None and not connector.done():
            connector.cancel()
            with contextlib.suppress(asyncio.CancelledError, CaiError):
                await connector

    async def _before_close(self, ws: Any) -> None:
        """Last words on an open socket when the client closes (e.g. stop generations)."""

    async def aclose(self) -> None:
        """Close the socket and fail every waiting request with ClientClosed. Idempotent."""
        self._closed = True
        await self._stop_connector()
        ws, reader = self._ws, self._reader
        if ws is not None:
            await self._before_close(ws)
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

    def _log_failure(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.info("%s: connect gave up: %s", self.name, exc)
            self._connect_failed(exc)

    def _connect_failed(self, error: BaseException) -> None:
        """The connector gave up with ``error`` (requests waiting on it see it too)."""


async def send_best_effort(ws: Any, frames: list[bytes]) -> None:
    """Send ``frames`` on a socket that is about to close, giving up on each after 1 s."""
    for frame in frames:
        # Best effort while closing: a socket too broken to take the frame is being dropped
        # anyway, and what it carried stops on the server's side too.
        with contextlib.suppress(TransportError, asyncio.TimeoutError):
            await asyncio.wait_for(ws.send(frame), 1.0)
