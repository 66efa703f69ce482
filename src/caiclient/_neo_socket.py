"""The chat WebSocket ``/ws/``: frames routed to requests by ``request_id`` (§8).

Keepalive (docs/protocol.md §8.1): any frame proves the socket alive. A bare ``{}`` from
the server is answered with ``{}``, unless it answers a :meth:`NeoSocket.ping` or we sent a
``{}`` less than ``KEEPALIVE_MIN_INTERVAL`` ago (then it is the echo of ours), so no peer that
echoes ``{}`` can start an endless exchange. The machinery (one reader, inboxes, reopening
with backoff, silence) is :class:`~caiclient._socket.ReconnectingSocket`'s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ._config import KEEPALIVE_MIN_INTERVAL, ClientOptions
from ._deadline import Deadline
from ._socket import Inbox, ReconnectingSocket, send_best_effort
from ._transport import WebSocket
from .errors import CaiError, Timeout
from .protocol.neo import (
    KEEPALIVE,
    Keepalive,
    Malformed,
    UnknownFrame,
    abort_generation,
    parse_frame,
)

__all__ = ["Inbox", "NeoSocket"]

log = logging.getLogger("caiclient.neo")


class NeoSocket(ReconnectingSocket):
    """The chat socket shared by every chat request of a client."""

    name = "chat socket"

    def __init__(self, connect: Callable[[], Awaitable[WebSocket]], options: ClientOptions):
        super().__init__(connect, options)
        self._last_keepalive_sent = float("-inf")
        self._pongs: list[asyncio.Future[None]] = []

    def _received(self, ws: WebSocket, data: bytes | str) -> None:
        event = parse_frame(data)
        inbox = self._inboxes.get(event.request_id)  # type: ignore[arg-type]  # None: no inbox
        if inbox is not None:  # The common case first.
            inbox.put(event)
            return
        if isinstance(event, Keepalive):
            self._keepalive(ws)
        elif isinstance(event, (UnknownFrame, Malformed)):
            log.warning("dropped a frame the client does not understand: %.200r", event)
        else:
            log.debug("dropped a %s frame for no waiting request", type(event).__name__)

    def _keepalive(self, ws: WebSocket) -> None:
        """A bare ``{}``: the answer to our ping, or the server's probe (answered, unless it
        came less than ``KEEPALIVE_MIN_INTERVAL`` after a ``{}`` of ours)."""
        pongs, self._pongs = self._pongs, []
        for pong in pongs:
            if not pong.done():
                pong.set_result(None)
        if pongs:
            return
        now = asyncio.get_running_loop().time()
        if now - self._last_keepalive_sent >= KEEPALIVE_MIN_INTERVAL:
            self._probe(ws, now)

    def _probe(self, ws: WebSocket, now: float) -> None:
        self._last_keepalive_sent = now
        self._send_soon(ws, KEEPALIVE)

    def _waiting(self) -> bool:
        return bool(self._inboxes or self._pongs)

    def _dropped(self, ws: WebSocket, error: CaiError) -> None:
        for pong in self._pongs:
            if not pong.done():
                pong.set_exception(error)
        self._pongs = []
        super()._dropped(ws, error)

    async def ping(self, deadline: Deadline) -> float:
        """Open the socket if needed, send a keepalive probe and return the seconds until
        the server's answer. Raises Timeout at ``deadline``, Disconnected, or what opening
        the socket raises."""
        loop = asyncio.get_running_loop()
        ws = await self._ensure_open(deadline)
        pong: asyncio.Future[None] = loop.create_future()
        self._pongs.append(pong)
        started = loop.time()
        self._probe(ws, started)
        try:
            await asyncio.wait_for(asyncio.shield(pong), deadline.remaining())
        except (asyncio.TimeoutError, TimeoutError):
            raise Timeout("the chat socket did not answer the keepalive probe in time") from None
        finally:
            if pong in self._pongs:
                self._pongs.remove(pong)
        return loop.time() - started

    async def _before_close(self, ws: WebSocket) -> None:
        """Stop the generations still streaming (``abort_generation``, §8.5)."""
        frames = [
            abort_generation(request_id=i.request_id)
            for i in self._inboxes.values()
            if i.generating and i.ws is ws
        ]
        await send_best_effort(ws, frames)
