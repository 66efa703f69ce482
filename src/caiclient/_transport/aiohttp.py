"""aiohttp transport: HTTP and WebSocket over Python's own TLS stack.

It does not look like a browser to Cloudflare (PROTOCOL.md §1.3), so against the live service
curl_cffi is the default; against the emulator, a proxy that terminates TLS, or anywhere
curl_cffi cannot be installed, this transport does the same job. Pass it as
``AsyncClient(transport=AiohttpTransport())``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
import msgspec
from aiohttp import WSMsgType

from ..errors import Disconnected, Timeout, TransportError
from ..protocol.http import Request, Response
from . import HandshakeRefused, StreamedResponse

if TYPE_CHECKING:
    from . import HttpTransport

__all__ = ["AiohttpTransport", "AiohttpWebSocket"]

_MAX_FRAME = 16 * 1024 * 1024
_CLOSING = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)
_JSON_HEADERS = {"Content-Type": "application/json"}
_CHUNK = 64 * 1024
_encode = msgspec.json.Encoder().encode


def _body(request: Request, headers: dict[str, str]) -> Any:
    """The request body for aiohttp (JSON or multipart), updating ``headers`` to match."""
    if request.multipart:
        form = aiohttp.MultipartWriter("form-data")
        for name, filename, content_type, data in request.multipart:
            part = form.append(data, {"Content-Type": content_type} if content_type else None)
            if filename is None:
                part.set_content_disposition("form-data", name=name)
            else:
                part.set_content_disposition("form-data", name=name, filename=filename)
        return form
    if request.json is not None:
        headers.update(_JSON_HEADERS)
        return _encode(request.json)
    return None


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
            raise Disconnected(f"WebSocket send failed: {exc}") from None

    async def recv(self) -> bytes | str:
        try:
            msg = await self._ws.receive()
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise Disconnected(f"WebSocket failed: {exc}") from None
        kind = msg.type
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            data: bytes | str = msg.data
            return data
        if kind in _CLOSING:
            raise Disconnected(f"WebSocket closed (code {self._ws.close_code})")
        # WSMsgType.ERROR: a protocol violation or a lost connection.
        raise Disconnected(f"WebSocket failed: {self._ws.exception() or msg.data}")

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

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession must be made inside the running loop.
        session = self._session
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit), raise_for_status=False
            )
            self._session = session
        return session

    def _send(
        self, request: Request, headers: Mapping[str, str], timeout: float
    ) -> Any:  # aiohttp's _RequestContextManager
        all_headers = dict(headers)
        body = _body(request, all_headers)
        return self._client().request(
            request.method,
            request.url,
            params=dict(request.params) if request.params else None,
            data=body,
            headers=all_headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=True,
            proxy=self._proxy,
        )

    async def request(
        self, request: Request, *, headers: Mapping[str, str], timeout: float
    ) -> Response:
        what = f"{request.method} {request.url}"
        try:
            async with self._send(request, headers, timeout) as response:
                content = await response.read()
                response_headers = {k.lower(): v for k, v in response.headers.items()}
                return Response(response.status, response_headers, content)
        except asyncio.TimeoutError:
            raise Timeout(f"{what} timed out after {timeout:g} s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise TransportError(f"{what} failed: {exc}") from None

    @asynccontextmanager
    async def stream(
        self, request: Request, *, headers: Mapping[str, str], timeout: float
    ) -> AsyncIterator[StreamedResponse]:
        what = f"{request.method} {request.url}"
        try:
            # ClientTimeout(total=...) bounds the whole transfer, body included.
            response: aiohttp.ClientResponse = await self._send(request, headers, timeout)
        except asyncio.TimeoutError:
            raise Timeout(f"{what} timed out after {timeout:g} s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise TransportError(f"{what} failed: {exc}") from None

        async def chunks() -> AsyncGenerator[bytes, None]:
            content = response.content
            while True:
                try:
                    chunk = await content.read(_CHUNK)
                except asyncio.TimeoutError:
                    raise Timeout(f"{what} timed out after {timeout:g} s") from None
                except (aiohttp.ClientError, OSError, ValueError) as exc:
                    raise TransportError(f"{what} failed: {exc}") from None
                if not chunk:
                    return
                yield chunk

        response_headers = {k.lower(): v for k, v in response.headers.items()}
        body = chunks()
        try:
            yield StreamedResponse(response.status, response_headers, str(response.url), body)
        finally:
            await body.aclose()
            if response.content.at_eof():
                response.release()  # Read to the end: the connection can be reused.
            else:
                response.close()  # Drops the rest of the body with the connection, at once.

    async def ws_connect(
        self, url: str, *, headers: Mapping[str, str], timeout: float
    ) -> AiohttpWebSocket:
        session = self._client()
        try:
            ws = await asyncio.wait_for(
                session.ws_connect(
                    url,
                    headers=dict(headers),
                    autoping=True,
                    max_msg_size=_MAX_FRAME,
                    proxy=self._proxy,
                ),
                timeout,
            )
        except asyncio.TimeoutError:
            raise Timeout(f"WebSocket connect to {url} timed out after {timeout:g} s") from None
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 101:  # Upgraded, but the handshake itself was wrong.
                raise TransportError(f"WebSocket connect to {url} failed: {exc}") from None
            raise HandshakeRefused(exc.status) from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise TransportError(f"WebSocket connect to {url} failed: {exc}") from None
        return AiohttpWebSocket(ws)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


if TYPE_CHECKING:
    _conforms: HttpTransport = AiohttpTransport()
