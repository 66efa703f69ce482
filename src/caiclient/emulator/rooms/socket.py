"""The Centrifugo socket ``/neo/connection/websocket`` of group chats (docs/protocol.md §9).

Centrifugo's JSON protocol: a client frame may hold several JSON objects (newline-separated,
or simply concatenated as N2/CN send them); each command object carries an ``id`` that its
reply echoes. The server answers one JSON object per frame (CN parses every frame whole).
Every outgoing frame goes through the session's queue, drained by one writer task, so a
publication reaches all subscribers of a room in offset order without waiting on any of them.
Room commands travel as ``rpc`` (``method`` ignored) wrapping the §8.2 envelope; the rpc is
acknowledged at once and its turns arrive as pushes on ``room:<id>``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from .._http import accept_socket
from .._util import encode, new_id
from ..faults import FAULTS, Faults
from ..state import STATE, State
from ..store import Store, User
from .commands import COMMANDS, RpcError
from .store import ROOMS, Channel, RoomStore

__all__ = ["Session", "split_objects", "websocket"]

log = logging.getLogger("caiclient.emulator")

VERSION = "5.4.9"
"""The server version announced in the connect reply (any string; clients ignore it)."""
NO_PONG = 3012  # Centrifugo's disconnect code "no pong"
SLOW = 3008  # Centrifugo's disconnect code "slow": the client does not read its frames
MAX_QUEUED = 1024
"""Frames waiting for one socket; a client that lets more pile up is closed as slow."""
READ_PAUSE = 256
"""While this many frames wait, the socket's reader stops reading the client's frames."""
MAX_IN_FLIGHT = 256
"""Room commands of one socket being carried out at once; beyond, rpc error 429."""

# Centrifugo's own error codes.
UNAUTHORIZED = (101, "unauthorized")
UNKNOWN_CHANNEL = (102, "unknown channel")
PERMISSION_DENIED = (103, "permission denied")
METHOD_NOT_FOUND = (104, "method not found")
ALREADY_SUBSCRIBED = (105, "already subscribed")
BAD_REQUEST = (107, "bad request")

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


def split_objects(text: str) -> tuple[list[Any], bool]:
    """The JSON values of one frame, and False if the frame ended in something malformed
    (the values before it are still returned)."""
    values: list[Any] = []
    at, end = 0, len(text)
    while True:
        while at < end and text[at] in _WHITESPACE:
            at += 1
        if at >= end:
            return values, True
        try:
            value, at = _DECODER.raw_decode(text, at)
        except (json.JSONDecodeError, RecursionError):  # Too deep is malformed too.
            return values, False
        values.append(value)


# ---- the session ------------------------------------------------------------------------


class Session:
    """One authenticated socket: its subscriptions and its queue of outgoing frames."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        user: User,
        rooms: RoomStore,
        state: State,
        faults: Faults | None = None,
        transport: asyncio.BaseTransport | None = None,
    ) -> None:
        self.ws = ws
        self.faults = faults or Faults()
        self._transport = transport
        self.user = user
        self.rooms = rooms
        self.state = state
        self.client_id = new_id()
        self.channels: set[str] = set()
        self.connected = False
        self.awaiting_pong = False
        self.in_flight = 0
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._readable = asyncio.Event()
        self._readable.set()
        self._slow = False

    @property
    def core(self) -> Store:
        return self.rooms.core

    def push(self, frame: bytes) -> None:
        """Queue a frame for the writer; never waits (publications go to many sockets).

        The queue is bounded: past :data:`READ_PAUSE` frames the reader pauses, past
        :data:`MAX_QUEUED` the socket is closed as slow (issue 10 #16)."""
        if self._slow:
            return
        if self._queue.qsize() >= MAX_QUEUED:
            self._slow = True
            self.state.spawn(self._close(SLOW, b"slow"))
            return
        self._queue.put_nowait(frame)
        if self._queue.qsize() >= READ_PAUSE:
            self._readable.clear()

    async def _close(self, code: int, message: bytes) -> None:
        await self.ws.close(code=code, message=message)

    async def readable(self) -> None:
        """Wait until few enough frames are queued to read the client's next frame."""
        await self._readable.wait()

    def finished(self) -> None:
        self.in_flight -= 1

    def forget(self, channel: str) -> None:
        self.channels.discard(channel)

    def reply(self, cid: int, key: str, body: object) -> None:
        self.push(encode({"id": cid, key: body}))

    def error(self, cid: int, code: int, message: str) -> None:
        self.reply(cid, "error", {"code": code, "message": message})

    def close(self) -> None:
        for name in self.channels:
            channel = self.rooms.channels.get(name)
            if channel is not None:
                channel.subscribers.discard(self)
        self.channels.clear()

    async def writer(self) -> None:
        while True:
            frame = await self._queue.get()
            if self._queue.qsize() < READ_PAUSE:
                self._readable.set()
            if not await self._fault_allows():
                return
            try:
                await self.ws.send_frame(frame, WSMsgType.TEXT)
            except (ConnectionError, RuntimeError):
                return

    async def _fault_allows(self) -> bool:
        """Carry out an injected drop or close of this socket (``socket="rooms"`` faults)."""
        action = self.faults.on_socket_frame("rooms")
        if action.drop:
            if isinstance(self._transport, asyncio.Transport):
                self._transport.abort()  # Like a dead network: no close frame.
            return False
        if action.close_code is not None:
            await self.ws.close(code=action.close_code, message=b"injected fault")
            return False
        return True

    async def pinger(self) -> None:
        """Ping with ``{}`` every interval; close with "no pong" if the last one went
        unanswered (Centrifugo's bidirectional ping, ``pong: true``)."""
        while True:
            await asyncio.sleep(self.rooms.ping_interval)
            if self.awaiting_pong:
                await self.ws.close(code=NO_PONG, message=b"no pong")
                return
            if self.connected:
                self.awaiting_pong = True
                self.push(b"{}")

    def receive(self, text: str) -> None:
        values, whole = split_objects(text)
        if not whole:
            log.debug("rooms socket: malformed frame dropped after %d objects", len(values))
        for value in values:
            if isinstance(value, dict):
                self.command(value)

    def command(self, obj: dict[str, Any]) -> None:
        if not obj:
            self.awaiting_pong = False  # The client's pong.
            return
        cid = obj.get("id")
        if isinstance(cid, bool) or not isinstance(cid, int) or cid <= 0:
            return  # Nothing to answer to.
        method = next((name for name in _METHODS if name in obj), None)
        params = obj.get(method) if method is not None else None
        if method is None:
            self.error(cid, *METHOD_NOT_FOUND)
        elif not isinstance(params, dict):
            self.error(cid, *BAD_REQUEST)
        elif method != "connect" and not self.connected:
            self.error(cid, *UNAUTHORIZED)
        else:
            _METHODS[method](self, cid, params)


# ---- Centrifugo commands ----------------------------------------------------------------


def _connect(session: Session, cid: int, params: dict[str, Any]) -> None:
    if session.connected:
        session.error(cid, *BAD_REQUEST)
        return
    session.connected = True
    interval = session.rooms.ping_interval
    ping = int(interval) if float(interval).is_integer() else interval
    body = {"client": session.client_id, "version": VERSION, "ping": ping, "pong": True}
    session.reply(cid, "connect", body)


def _refusal(session: Session, channel: str) -> tuple[int, str] | None:
    """Why ``channel`` may not be subscribed, or None. Missing and foreign rooms alike are
    "permission denied"."""
    if channel.startswith("user#"):
        return None if channel[5:] == session.user.id else PERMISSION_DENIED
    if channel.startswith("room:"):
        allowed = session.rooms.room_for(session.user, channel[5:]) is not None
        return None if allowed else PERMISSION_DENIED
    return UNKNOWN_CHANNEL


def _subscribe(session: Session, cid: int, params: dict[str, Any]) -> None:
    channel = params.get("channel")
    if not isinstance(channel, str):
        session.error(cid, *BAD_REQUEST)
        return
    refusal = _refusal(session, channel)
    if refusal is not None:
        session.error(cid, *refusal)
    elif channel in session.channels:
        session.error(cid, *ALREADY_SUBSCRIBED)
    else:
        state = session.rooms.channel(channel)
        state.subscribers.add(session)
        session.channels.add(channel)
        session.reply(cid, "subscribe", _subscribed(state, params))


def _subscribed(state: Channel, params: dict[str, Any]) -> dict[str, Any]:
    """The subscribe reply; with ``recover`` (and the last ``offset`` and ``epoch`` the client
    saw) it carries the publications missed since, or ``recovered: false`` when they are
    no longer all kept (Centrifugo's recovery)."""
    body: dict[str, Any] = {
        "recoverable": True,
        "epoch": state.epoch,
        "positioned": True,
        "offset": state.offset,
    }
    offset, epoch = params.get("offset"), params.get("epoch")
    if params.get("recover") is True and isinstance(offset, int) and isinstance(epoch, str):
        missed = state.since(offset, epoch)
        body["recovered"] = missed is not None
        body["publications"] = missed or []
    return body


def _unsubscribe(session: Session, cid: int, params: dict[str, Any]) -> None:
    channel = params.get("channel")
    if not isinstance(channel, str):
        session.error(cid, *BAD_REQUEST)
        return
    if channel in session.channels:
        session.forget(channel)
        state = session.rooms.channels.get(channel)
        if state is not None:
            state.subscribers.discard(session)
    session.reply(cid, "unsubscribe", {})


def _rpc(session: Session, cid: int, params: dict[str, Any]) -> None:
    """``{"rpc": {"method", "data": <§8.2 envelope>}}`` → the ack ``{"rpc": {"data":
    {"request_id"}}}`` (or an error), then the command's pushes."""
    data = params.get("data")
    if not isinstance(data, dict):
        session.error(cid, *BAD_REQUEST)
        return
    name, request_id = data.get("command"), data.get("request_id")
    handler = COMMANDS.get(name) if isinstance(name, str) else None
    try:
        if handler is None:
            raise RpcError(400, f"Unknown command: {name}")
        work = handler(session, request_id, data.get("payload", {}))
    except RpcError as exc:
        session.error(cid, exc.code, exc.message)
        return
    except msgspec.ValidationError as exc:
        session.error(cid, 400, f"Invalid payload: {exc}")
        return
    if session.in_flight >= MAX_IN_FLIGHT:
        session.error(cid, 429, "Too many requests in flight")
        return
    session.reply(cid, "rpc", {"data": {"request_id": request_id}})
    pending = work()
    if pending is not None:
        session.in_flight += 1
        session.state.spawn(pending).add_done_callback(lambda _: session.finished())


_METHODS: dict[str, Callable[[Session, int, dict[str, Any]], None]] = {
    "connect": _connect,
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "rpc": _rpc,
}


# ---- the socket -------------------------------------------------------------------------


async def websocket(request: web.Request) -> web.StreamResponse:
    """``GET /neo/connection/websocket``: plain HTTP 403 unless authenticated (§9, §1.2);
    an armed Cloudflare fault refuses it as it refuses the chat socket."""
    accepted = await accept_socket(request)
    if isinstance(accepted, web.Response):
        return accepted
    ws, user = accepted
    state = request.app[STATE]
    session = Session(ws, user, request.app[ROOMS], state, request.app[FAULTS], request.transport)
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(session.writer()), loop.create_task(session.pinger())]
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                session.receive(msg.data)
            elif msg.type is WSMsgType.BINARY:
                session.receive(msg.data.decode("utf-8", "replace"))
            await session.readable()
    finally:
        session.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        state.sockets.discard(ws)
        if not ws.closed:
            await ws.close(code=WSCloseCode.GOING_AWAY)
    return ws
