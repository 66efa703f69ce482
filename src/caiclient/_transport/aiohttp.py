"""aiohttp transport: HTTP and WebSocket over Python's own TLS stack.

It does not look like a browser to Cloudflare (docs/protocol.md §1.3), so against the live
service curl_cffi is the default; against the emulator, a proxy that terminates TLS, or
anywhere curl_cffi cannot be installed, this transport does the same job. Pass it as
``AsyncClient(transport=caiclient.transports.AiohttpTransport())``. Every aiohttp exception
is mapped to :mod:`caiclient.errors` in one place, :func:`_mapped`, keeping it as the cause.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
import yarl
from aiohttp import WSMsgType

from .._config import MAX_RECV_FRAME, MAX_RESPONSE_BODY
from ..errors import ClientClosed, Disconnected, ProtocolError, Timeout, TransportError
from ..protocol.http import Request, Response
from . import HandshakeRefused, StreamedResponse

if TYPE_CHECKING:
    from . import HttpTransport

__all__ = ["AiohttpTransport", "AiohttpWebSocket"]

_CLOSING = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)
_CHUNK = 64 * 1024


@contextmanager
def _mapped(what: str, timeout: float | None = None) -> Iterator[None]:
    """Turn every aiohttp (and socket) exception raised inside into the caiclient error it
    means, with the original as ``__cause__``."""
    try:
        yield
    except asyncio.TimeoutError as exc:
        limit = f" after {timeout:g} s" if timeout is not None else ""
        raise Timeout(f"{what} timed out{limit}") from exc
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise TransportError(f"{what} failed: {exc}") from exc


async def _read_capped(response: aiohttp.ClientResponse, what: str) -> bytes:
    parts: list[bytes] = []
    size = 0
    while chunk := await response.content.read(_CHUNK):
        size += len(chunk)
        if size > MAX_RESPONSE_BODY:
            raise ProtocolError(
                f"{what}: the response body is larger than {MAX_RESPONSE_BODY:,} bytes"
            )
        parts.append(chunk)
    return b"".join(parts)


class AiohttpWebSocket:
    """One aiohttp client WebSocket behind the :class:`~caiclient._transport.WebSocket` API."""

    __slots__ = ("_ws",)

    def __init__(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        self._ws = ws

    async def send(self, data: bytes) -> None:
        if self._ws.closed:
            raise Disconnected("WebSocket send failed: the socket is closed")
        try:
            await self._ws.send_frame(data, WSMsgType.TEXT)
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise Disconnected(f"WebSocket send failed: {exc}") from exc

    async def recv(self) -> bytes | str:
        try:
            msg = await self._ws.receive()
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise Disconnected(f"WebSocket failed: {exc}") from exc
        kind = msg.type
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            data: bytes | str = msg.data
            return data
        if kind in _CLOSING:
            code = self._ws.close_code
            raise Disconnected(f"WebSocket closed (code {code})", code=code)
        # WSMsgType.ERROR: a protocol violation or a lost connection (aiohttp's exception,
        # kept as the cause).
        cause = self._ws.exception()
        raise Disconnected(f"WebSocket failed: {cause or msg.data}") from cause

    def abort(self) -> None:
        connection = self._ws._response.connection
        transport = connection.transport if connection is not None else None
        if transport is not None:
            transport.abort()
        else:  # Already detached from its connection: release what is left.
            self._ws._response.close()

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._ws.close(), 1.0)
        except (asyncio.TimeoutError, aiohttp.ClientError, ConnectionError):
            self.abort()  # The socket is already broken; just release it.


class AiohttpTransport:
    """HTTP session plus WebSockets over aiohttp.

    ``proxy`` routes every request through an HTTP proxy URL. ``limit`` caps the number of
    simultaneous HTTP connections (the WebSocket holds one of them while open).
    """

    def __init__(self, *, proxy: str | None = None, limit: int = 64) -> None:
        self._proxy = proxy
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _client(self, what: str) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession must be made inside the running loop. After
        # aclose() no new one is made: that would leak it.
        if self._closed:
            raise ClientClosed(f"{what}: the client is closed")
        session = self._session
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit), raise_for_status=False
            )
            self._session = session
        return session

    def _send(
        self, request: Request, headers: Mapping[str, str], timeout: float, what: str
    ) -> Any:  # aiohttp's _RequestContextManager
        content, content_headers = request.content()
        return self._client(what).request(
            request.method,
            yarl.URL(request.target(), encoded=True),  # As the core encoded it, not re-quoted.
            data=content,
            headers={**headers, **content_headers},
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=True,
            proxy=self._proxy,
        )

    async def request(
        self, request: Request, *, headers: Mapping[str, str], timeout: float
    ) -> Response:
        what = f"{request.method} {request.url}"
        with _mapped(what, timeout):
            async with self._send(request, headers, timeout, what) as response:
                content = await _read_capped(response, what)
                response_headers = {k.lower(): v for k, v in response.headers.items()}
                return Response(response.status, response_headers, content, time.time())

    @asynccontextmanager
    async def stream(
        self, request: Request, *, headers: Mapping[str, str], timeout: float
    ) -> AsyncIterator[StreamedResponse]:
        what = f"{request.method} {request.url}"
        with _mapped(what, timeout):
            # ClientTimeout(total=...) bounds the whole transfer, body included.
            response: aiohttp.ClientResponse = await self._send(request, headers, timeout, what)

        async def chunks() -> AsyncGenerator[bytes, None]:
            content = response.content
            while True:
                with _mapped(what, timeout):
                    chunk = await content.read(_CHUNK)
                if not chunk:
                    return
                yield chunk

        response_headers = {k.lower(): v for k, v in response.headers.items()}
        body = chunks()
        try:
            yield StreamedResponse(
                response.status, response_headers, str(response.url), body, time.time()
            )
        finally:
            await body.aclose()
            if response.content.at_eof():
                response.release()  # Read to the end: the connection can be reused.
            else:
                response.close()  # Drops the rest of the body with the connection, at once.

    async def ws_connect(
        self, url: str, *, headers: Mapping[str, str], timeout: float
    ) -> AiohttpWebSocket:
        what = f"WebSocket connect to {url}"
        session = self._client(what)
        try:
            with _mapped(what, timeout):
                ws = await asyncio.wait_for(
                    session.ws_connect(
                        url,
                        headers=dict(headers),
                        autoping=True,
                        max_msg_size=MAX_RECV_FRAME,
                        proxy=self._proxy,
                    ),
                    timeout,
                )
        except TransportError as exc:
            cause = exc.__cause__
            if isinstance(cause, aiohttp.WSServerHandshakeError) and cause.status != 101:
                # 101: upgraded, but the handshake itself was wrong (stays a TransportError).
                raise HandshakeRefused(cause.status) from cause
            raise
        return AiohttpWebSocket(ws)

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


if TYPE_CHECKING:
    _conforms: HttpTransport = AiohttpTransport()
