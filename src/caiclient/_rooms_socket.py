"""The Centrifugo socket of group chats (docs/protocol.md §9), on the shared socket machinery.

Room requests are rpcs: :class:`RoomSocket` wraps each request's §8.2 envelope in an ``rpc``
command, and routes the room's publications to the request by the ``request_id`` they carry
(the same inboxes and the same exchanges as the chat socket), and to every listener of the
room (``client.rooms.events``). Rooms are subscribed once per socket; after a reconnect every
room is subscribed again asking for what was missed since the last offset seen (Centrifugo's
recovery), so a request whose rpc was acknowledged goes on receiving its reply, and listeners
neither miss nor repeat a publication. When the server cannot recover (a new epoch), the
listeners are told to read the history instead and the acknowledged requests fail as drops
(their policies then look for the reply in the history).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ._config import KEEPALIVE_MIN_INTERVAL, ClientOptions
from ._deadline import Deadline
from ._socket import Inbox, ReconnectingSocket
from ._transport import WebSocket
from .errors import CaiError, Disconnected, Timeout, TransportError
from .protocol import rooms as proto
from .protocol.neo import KEEPALIVE, abort_generation

__all__ = ["GAP", "RoomSocket"]

log = logging.getLogger("caiclient.rooms")

GAP = object()
"""Put in a listener's queue when publications may have been missed (read the history)."""


class _Key(msgspec.Struct):
    chat_id: str | None = None


class _TurnOf(msgspec.Struct):
    turn_key: _Key | None = None


class _Payload(msgspec.Struct):
    chat_id: str | None = None
    turn_key: _Key | None = None
    turn: _TurnOf | None = None

    @property
    def room_id(self) -> str | None:
        key = self.turn_key or (self.turn.turn_key if self.turn is not None else None)
        return self.chat_id or (key.chat_id if key is not None else None)


class _Envelope(msgspec.Struct):
    request_id: str | None = None
    payload: _Payload | None = None


_read_envelope = msgspec.json.Decoder(_Envelope).decode


class _Channel:
    """A room the socket keeps subscribed, and where its publications have got to."""

    __slots__ = ("epoch", "listeners", "name", "offset", "subscribed")

    def __init__(self, name: str) -> None:
        self.name = name
        self.offset: int | None = None
        self.epoch: str | None = None
        self.listeners: set[asyncio.Queue[Any]] = set()
        self.subscribed: Any = None  # the socket it is subscribed on


class _RpcSender:
    """How an inbox of the rooms socket sends: its envelope, wrapped in an rpc command."""

    __slots__ = ("_socket", "ws")

    def __init__(self, socket: RoomSocket, ws: WebSocket) -> None:
        self._socket = socket
        self.ws = ws

    async def send(self, envelope: bytes) -> None:
        command_id = self._socket.command_id()
        read = _read_envelope(envelope)
        if read.request_id is not None:
            room = read.payload.room_id if read.payload is not None else None
            self._socket.rpcs[command_id] = (read.request_id, f"room:{room}")
        await self.ws.send(proto.rpc(command_id, envelope))


class RoomSocket(ReconnectingSocket):
    """The group-chat socket of one client: rooms, their rpcs and their listeners."""

    name = "rooms socket"

    def __init__(self, connect: Callable[[], Awaitable[WebSocket]], options: ClientOptions):
        super().__init__(connect, options)
        self._timeout = options.timeout
        self._next_id = 0
        self._replies: dict[int, asyncio.Future[proto.Reply]] = {}
        self.rpcs: dict[int, tuple[str, str]] = {}  # rpc command id -> request id, room channel
        self._acked: dict[str, str] = {}  # request id -> room channel, once the rpc is taken
        self._channels: dict[str, _Channel] = {}
        self._last_pong = float("-inf")

    def command_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _sender(self, ws: WebSocket) -> _RpcSender:
        return _RpcSender(self, ws)

    def _bound(self, inbox: Inbox, ws: Any) -> bool:
        return isinstance(inbox.ws, _RpcSender) and inbox.ws.ws is ws

    def _waiting(self) -> bool:
        return bool(self._inboxes) or any(c.listeners for c in self._channels.values())

    # --- rooms and listeners ------------------------------------------------------------------

    async def watch(self, room_id: str, deadline: Deadline) -> None:
        """Keep ``room:<room_id>`` subscribed on this socket (opening it if needed), so its
        publications reach requests and listeners. Raises NotFound for a room the user is
        not in, Timeout at ``deadline``."""
        name = f"room:{room_id}"
        channel = self._channels.setdefault(name, _Channel(name))
        while True:
            ws = await self._ensure_open(deadline)
            if channel.subscribed is ws:
                return
            try:
                await self._subscribe(ws, channel, deadline)
            except CaiError:
                if not channel.listeners:
                    self._channels.pop(name, None)
                raise
            if channel.subscribed is ws:
                return

    def listen(self, room_id: str, queue: asyncio.Queue[Any]) -> None:
        """Put every publication of the room (:class:`Publication`) into ``queue``, then
        ``(GAP, room_id)`` when some may have been missed, or a CaiError when the socket
        gave up for good."""
        name = f"room:{room_id}"
        self._channels.setdefault(name, _Channel(name)).listeners.add(queue)

    def unlisten(self, room_id: str, queue: asyncio.Queue[Any]) -> None:
        channel = self._channels.get(f"room:{room_id}")
        if channel is not None:
            channel.listeners.discard(queue)

    # --- commands and replies -----------------------------------------------------------------

    async def _command(
        self, ws: WebSocket, frame: Callable[[int], bytes], deadline: Deadline
    ) -> proto.Reply:
        command_id = self.command_id()
        reply: asyncio.Future[proto.Reply] = asyncio.get_running_loop().create_future()
        self._replies[command_id] = reply
        try:
            await ws.send(frame(command_id))
            return await asyncio.wait_for(asyncio.shield(reply), deadline.remaining())
        except (asyncio.TimeoutError, TimeoutError):
            raise Timeout(f"the {self.name} did not answer a command in time") from None
        finally:
            self._replies.pop(command_id, None)

    async def _handshake(self, ws: WebSocket) -> None:
        deadline = Deadline.after(self._timeout)
        reply = await self._command(ws, proto.connect, deadline)
        if reply.error is not None:
            raise proto.centrifugo_error(*reply.error)
        for channel in list(self._channels.values()):
            await self._subscribe(ws, channel, deadline)

    async def _subscribe(self, ws: WebSocket, channel: _Channel, deadline: Deadline) -> None:
        since = None
        if channel.offset is not None and channel.epoch is not None:
            since = (channel.offset, channel.epoch)
        reply = await self._command(
            ws, lambda cid: proto.subscribe(cid, channel.name, since=since), deadline
        )
        if reply.error is not None:
            raise proto.centrifugo_error(*reply.error)
        result = reply.result
        recovered = since is not None and result.get("recovered") is True
        if since is not None and not recovered:
            self._lost(channel, ws)
        epoch = result.get("epoch")
        channel.epoch = epoch if isinstance(epoch, str) else channel.epoch
        channel.subscribed = ws
        for publication in result.get("publications") or () if recovered else ():
            if isinstance(publication, dict) and isinstance(publication.get("data"), dict):
                offset = publication.get("offset")
                found = proto.Publication(channel.name, publication["data"], offset)
                self._publish(found)
        offset = result.get("offset")
        if isinstance(offset, int) and (channel.offset is None or not recovered):
            channel.offset = offset

    def _lost(self, channel: _Channel, ws: WebSocket) -> None:
        """The server could not replay what was missed: listeners read the history, and
        requests waiting on the room fail as dropped (their policies recover)."""
        log.info("%s: %s could not be recovered; reading its history", self.name, channel.name)
        for queue in channel.listeners:
            queue.put_nowait((GAP, channel.name.removeprefix("room:")))
        for request_id, name in list(self._acked.items()):
            inbox = self._inboxes.get(request_id)
            if name == channel.name and inbox is not None:
                inbox.fail(Disconnected(f"the {self.name} dropped and {name} was not recovered"))

    # --- reading ------------------------------------------------------------------------------

    def _received(self, ws: WebSocket, data: bytes | str) -> None:
        for message in proto.parse_frame(data):
            if isinstance(message, proto.Publication):
                self._publish(message)
            elif isinstance(message, proto.Reply):
                self._reply(message)
            elif isinstance(message, proto.Ping):
                self._pong(ws)
            elif isinstance(message, proto.ServerUnsubscribe):
                self._ended(message.channel)
            else:
                log.warning("%s: dropped %r", self.name, message)

    def _publish(self, publication: proto.Publication) -> None:
        channel = self._channels.get(publication.channel)
        if channel is not None and publication.offset is not None:
            channel.offset = publication.offset
        event = proto.room_event(publication.data)
        request_id = event.request_id
        inbox = self._inboxes.get(request_id) if request_id is not None else None
        if inbox is not None:
            inbox.put(event)
        for queue in channel.listeners if channel is not None else ():
            queue.put_nowait(publication)

    def _reply(self, reply: proto.Reply) -> None:
        waiter = self._replies.get(reply.id)
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(reply)
            return
        request_id, channel = self.rpcs.pop(reply.id, (None, ""))
        inbox = self._inboxes.get(request_id) if request_id is not None else None
        if inbox is None or request_id is None:
            return
        if reply.error is not None:
            inbox.put(proto.rpc_error(*reply.error, request_id=request_id))
        else:
            self._acked[request_id] = channel  # The server took it: its pushes will come.

    def _pong(self, ws: WebSocket) -> None:
        """Answer the server's ping (Centrifugo's pong), but never twice in a row within
        ``KEEPALIVE_MIN_INTERVAL``: a peer echoing our ``{}`` cannot start a loop."""
        now = asyncio.get_running_loop().time()
        if now - self._last_pong >= KEEPALIVE_MIN_INTERVAL:
            self._last_pong = now
            self._send_soon(ws, KEEPALIVE)

    def _ended(self, name: str) -> None:
        channel = self._channels.pop(name, None)
        if channel is not None:
            for queue in channel.listeners:
                queue.put_nowait(Disconnected(f"the server ended {name} (the room is gone?)"))

    # --- drops ---------------------------------------------------------------------------------

    def _dropped(self, ws: Any, error: CaiError) -> None:
        for waiter in self._replies.values():
            if not waiter.done():
                waiter.set_exception(error)
        for channel in self._channels.values():
            if channel.subscribed is ws:
                channel.subscribed = None
        for inbox in list(self._inboxes.values()):
            # An acknowledged request goes on after the reconnect: the room's missed
            # publications are replayed to it. Others may be lost: they fail now.
            if self._closed or (self._bound(inbox, ws) and inbox.request_id not in self._acked):
                inbox.fail(error)
        if self._closed:
            self._give_up(error)

    def _connect_failed(self, error: BaseException) -> None:
        if isinstance(error, CaiError):
            self._give_up(error)

    def _give_up(self, error: CaiError) -> None:
        """The socket will not come back: everything still waiting on it learns why."""
        for request_id in list(self._acked):
            inbox = self._inboxes.get(request_id)
            if inbox is not None:
                inbox.fail(error)
        for queue in (q for c in self._channels.values() for q in c.listeners):
            queue.put_nowait(error)

    def unregister(self, inbox: Inbox) -> None:
        self._acked.pop(inbox.request_id, None)
        super().unregister(inbox)

    async def _before_close(self, ws: WebSocket) -> None:
        """Stop the room generations still streaming (``abort_generation`` as an rpc)."""
        sender = self._sender(ws)
        for inbox in list(self._inboxes.values()):
            if inbox.generating and self._bound(inbox, ws):
                with contextlib.suppress(TransportError, asyncio.TimeoutError):
                    await asyncio.wait_for(
                        sender.send(abort_generation(request_id=inbox.request_id)), 1.0
                    )
