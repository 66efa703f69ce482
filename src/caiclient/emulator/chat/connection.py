"""One authenticated ``/neo/ws/`` socket as the command handlers see it.

Every frame the server sends goes through :meth:`Connection.send`, which serialises the
writes, applies injected faults (including a silenced socket) and becomes a no-op once the
peer has gone. The limits of the socket live here too (docs/emulator.md "Limits").
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSMsgType, web

from .._http import MAX_CLIENT_FRAME
from .._util import encode
from ..faults import SEND_NORMALLY, Fault, FaultAction, Faults
from ..state import State
from ..store import Store, User
from .store import ChatStore

__all__ = [
    "KEEPALIVE_INTERVAL",
    "MAX_CLIENT_FRAME",
    "MAX_IN_FLIGHT",
    "MAX_SERVER_FRAME",
    "Connection",
    "RequestError",
]

MAX_SERVER_FRAME = 16 * 1024 * 1024
"""Largest frame the emulator sends (16 MiB). Its frames carry one turn of text a client
sent or a reply derived from it, so they stay far below this."""
MAX_IN_FLIGHT = 4096
"""Requests of one socket being carried out at once; beyond, a request is refused with a
429 ``neo_error`` (``retry_after_seconds`` 1), so a flood cannot grow memory unbounded."""
KEEPALIVE_INTERVAL = 1.0
"""A client's bare ``{}`` is answered with ``{}`` at most once per this many seconds."""

_KEEPALIVE = b"{}"


class RequestError(Exception):
    """A request that must be answered with a neo_error frame."""

    def __init__(
        self,
        comment: str,
        code: int,
        *,
        sub_code: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(comment)
        self.comment = comment
        self.code = code
        self.sub_code = sub_code
        self.retry_after = retry_after


class Connection:
    """One socket: serialised sends, its faults, and how much work it has in flight."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        state: State,
        chats: ChatStore,
        user: User,
        faults: Faults | None = None,
        transport: asyncio.Transport | None = None,
        rooms: Any = None,
    ) -> None:
        self.ws = ws
        # The group chats' store, for the one room command that travels on this socket
        # (remove_turns, §9); typed loosely so the chat area does not import the rooms one.
        self.rooms = rooms
        self.state = state
        self.chats = chats
        self.user = user
        self.faults = faults or Faults()
        self._transport = transport
        self.closed = False
        self.in_flight = 0
        self._lock = asyncio.Lock()
        self._last_keepalive = -KEEPALIVE_INTERVAL
        self._silence: Fault | None = None
        self._silent_since = 0.0
        self._silent_epoch = 0

    @property
    def store(self) -> Store:
        return self.state.store

    # ---- silence fault -------------------------------------------------------------

    def silence(self, fault: Fault) -> None:
        """Send nothing while ``fault`` lasts: ``fault.seconds`` from now, or (None) until
        the faults are cleared."""
        self._silence = fault
        self._silent_since = asyncio.get_running_loop().time()
        self._silent_epoch = self.faults.epoch

    def _silent(self) -> bool:
        fault = self._silence
        if fault is None:
            return False
        elapsed = asyncio.get_running_loop().time() - self._silent_since
        over = fault.seconds is not None and elapsed >= fault.seconds
        if over or self.faults.epoch != self._silent_epoch:
            self._silence = None
            return False
        return True

    # ---- sending -------------------------------------------------------------------

    async def send(self, frame: bytes) -> None:
        """Send one text frame; after the peer has gone, drop it silently."""
        if self.closed or self.ws.closed:
            self.closed = True
            return
        if self._silence is not None and self._silent():
            return
        action = self.faults.on_socket_frame()
        if action is not SEND_NORMALLY and not await self._misbehave(action):
            return
        async with self._lock:
            try:
                await self.ws.send_frame(frame, WSMsgType.TEXT)
            except (ConnectionError, RuntimeError):
                self.closed = True

    async def _misbehave(self, action: FaultAction) -> bool:
        """Carry out an injected fault; False when the frame must not be sent."""
        if action.delay:
            await asyncio.sleep(action.delay)
        if action.drop:
            # Like a dead network: no close frame, the TCP connection just ends.
            self.closed = True
            if self._transport is not None:
                self._transport.abort()
            return False
        if action.close_code is not None:
            self.closed = True
            await self.ws.close(code=action.close_code, message=b"injected fault")
            return False
        if action.malformed:
            async with self._lock:
                await self.ws.send_frame(b'{"command": "add_turn", "turn": ', WSMsgType.TEXT)
        return True

    async def keepalive(self) -> None:
        """Answer a client's bare ``{}``, at most once per :data:`KEEPALIVE_INTERVAL`.

        The emulator never sends ``{}`` of its own, and a client that echoes every ``{}``
        gets at most one answer a second, so no exchange of keepalives can loop
        (issue 10 #2; docs/protocol.md §8.1).
        """
        now = asyncio.get_running_loop().time()
        if now - self._last_keepalive < KEEPALIVE_INTERVAL:
            return
        self._last_keepalive = now
        await self.send(_KEEPALIVE)

    async def error(
        self,
        request_id: object,
        comment: str,
        code: int,
        *,
        sub_code: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Send a ``neo_error`` frame (§8.6); the socket stays open."""
        body: dict[str, Any] = {
            "command": "neo_error",
            "request_id": request_id,
            "comment": comment,
            "error_code": code,
            "sub_code": sub_code,
            "retry_after_seconds": retry_after,
        }
        await self.send(encode(body))

    def abort_transport(self) -> None:
        """Cut the TCP connection without a close frame (the ``drop_on_request`` fault)."""
        self.closed = True
        if self._transport is not None:
            self._transport.abort()
