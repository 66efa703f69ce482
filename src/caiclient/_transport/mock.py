"""An in-memory transport for tests: a handler function plays the server (as httpx's).

``MockTransport(handler)`` answers each REST request with ``handler(request)`` (a
:class:`~caiclient.protocol.http.Response`, or an awaitable of one; raising an exception
from :mod:`caiclient.errors` simulates a network failure). ``websocket=`` plays the chat
socket: a function called with each frame the client sends and the :class:`MockWebSocket`
it arrived on, which answers with :meth:`MockWebSocket.push`. No socket is opened.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ..errors import ClientClosed, Disconnected, TransportError
from ..protocol.http import Request, Response
from . import HandshakeRefused, StreamedResponse

__all__ = ["MockTransport", "MockWebSocket", "Sent"]

Handler = Callable[[Request], "Response | Awaitable[Response]"]
FrameHandler = Callable[[bytes, "MockWebSocket"], "Awaitable[None] | None"]


@dataclass(frozen=True, slots=True)
class Sent:
    """One REST request as the transport received it: what, with which headers and body."""

    request: Request
    headers: Mapping[str, str]
    body: bytes | None


async def _resolved(value: object) -> object:
    return await value if inspect.isawaitable(value) else value


class MockWebSocket:
    """The client's end of an in-memory socket; the test's frame handler is the server."""

    def __init__(self, on_frame: FrameHandler, url: str, headers: Mapping[str, str]) -> None:
        self.url = url
        self.headers = dict(headers)
        self.sent: list[bytes] = []
        self._on_frame = on_frame
        self._inbox: asyncio.Queue[bytes | str | Disconnected] = asyncio.Queue()
        self.closed = False

    # --- the server's side (the test) ----------------------------------------------------

    def push(self, frame: bytes | str) -> None:
        """Send ``frame`` to the client."""
        if not self.closed:
            self._inbox.put_nowait(frame)

    def drop(self, code: int | None = None) -> None:
        """Close the socket from the server's side (with a close ``code``, or as a cut)."""
        if not self.closed:
            self.closed = True
            self._inbox.put_nowait(Disconnected(f"WebSocket closed (code {code})", code=code))

    # --- the client's side (the WebSocket protocol) --------------------------------------

    async def send(self, data: bytes) -> None:
        if self.closed:
            raise Disconnected("WebSocket send failed: the socket is closed")
        self.sent.append(data)
        await _resolved(self._on_frame(data, self))

    async def recv(self) -> bytes | str:
        item = await self._inbox.get()
        if isinstance(item, Disconnected):
            raise item
        return item

    def abort(self) -> None:
        self.drop(None)

    async def close(self) -> None:
        self.drop(1000)


def _no_server(request: Request) -> Response:
    raise TransportError(f"{request.method} {request.url} failed: no handler for REST calls")


class MockTransport:
    """A transport that calls ``handler`` instead of the network.

    ``sent`` lists every REST request in order; ``sockets`` every socket opened.
    ``websocket`` (optional) is called with each frame the client sends on the chat socket;
    without it, opening the socket fails. ``refuse_upgrade=403`` answers every upgrade with
    that HTTP status instead.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        websocket: FrameHandler | None = None,
        refuse_upgrade: int | None = None,
    ) -> None:
        self._handler = handler or _no_server
        self._websocket = websocket
        self._refuse_upgrade = refuse_upgrade
        self.sent: list[Sent] = []
        self.sockets: list[MockWebSocket] = []
        self.closed = False

    async def request(
        self, request: Request, *, headers: Mapping[str, str], timeout: float
    ) -> Response:
        if self.closed:
            raise ClientClosed(f"{request.method} {request.url}: the client is closed")
        body, content_headers = request.content(boundary="mock-boundary")
        self.sent.append(Sent(request, {**headers, **content_headers}, body))
        response = await _resolved(self._handler(request))
        if not isinstance(response, Response):
            raise TypeError(f"the mock handler returned {type(response).__name__}, not Response")
        return response

    @asynccontextmanager
    async def stream(
        self, request: Request, *, headers: Mapping[str, str], timeout: float
    ) -> AsyncIterator[StreamedResponse]:
        response = await self.request(request, headers=headers, timeout=timeout)

        async def chunks() -> AsyncIterator[bytes]:
            if response.body:
                yield response.body

        yield StreamedResponse(
            response.status, response.headers, request.url, chunks(), response.received_at
        )

    async def ws_connect(
        self, url: str, *, headers: Mapping[str, str], timeout: float
    ) -> MockWebSocket:
        if self.closed:
            raise ClientClosed(f"WebSocket connect to {url}: the client is closed")
        if self._refuse_upgrade is not None:
            raise HandshakeRefused(self._refuse_upgrade)
        if self._websocket is None:
            raise TransportError(f"WebSocket connect to {url} failed: no websocket handler")
        ws = MockWebSocket(self._websocket, url, headers)
        self.sockets.append(ws)
        return ws

    async def aclose(self) -> None:
        self.closed = True
        for ws in self.sockets:
            ws.drop(1001)
