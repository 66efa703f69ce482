"""curl_cffi transport: HTTP and WebSocket with a browser's TLS fingerprint.

The live service sits behind Cloudflare, which tells Python's TLS stack from a browser's;
curl_cffi impersonates a browser (PROTOCOL.md §1.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from curl_cffi import CurlError, CurlMime, CurlWsFlag
from curl_cffi.requests import AsyncSession
from curl_cffi.requests.exceptions import Timeout as CurlTimeout
from curl_cffi.requests.websockets import AsyncWebSocket, WebSocketClosed, WebSocketTimeout

from ..errors import Disconnected, Timeout, TransportError
from ..protocol.http import Request, Response
from . import HandshakeRefused, StreamedResponse

__all__ = ["CurlTransport"]

DEFAULT_IMPERSONATE = "chrome"
_UPGRADE_STATUS = re.compile(r"upgrade: (\d{3})", re.IGNORECASE)


class CurlWebSocket:
    __slots__ = ("_ws",)

    def __init__(self, ws: AsyncWebSocket) -> None:
        self._ws = ws

    async def send(self, data: bytes) -> None:
        try:
            await self._ws.send(data, CurlWsFlag.TEXT)
        except CurlError as exc:
            raise Disconnected(f"WebSocket send failed: {exc}") from None

    async def recv(self) -> bytes:
        try:
            data, _flags = await self._ws.recv()
        except WebSocketClosed as exc:
            raise Disconnected(f"WebSocket closed (code {self._ws.close_code})") from exc
        except CurlError as exc:
            raise Disconnected(f"WebSocket failed: {exc}") from None
        return data

    def abort(self) -> None:
        self._ws.terminate()

    async def close(self) -> None:
        try:
            await self._ws.close(timeout=1.0)
        except CurlError:
            self._ws.terminate()  # The socket is already broken; just release it.


def _mime(parts: tuple[tuple[str, str | None, str | None, bytes], ...] | None) -> CurlMime | None:
    """A curl multipart body of ``Request.multipart`` parts, or None for no parts."""
    if not parts:
        return None
    mime = CurlMime()
    for name, filename, content_type, data in parts:
        mime.addpart(name, content_type=content_type, filename=filename, data=data)
    return mime


class CurlTransport:
    """HTTP session plus WebSockets over curl_cffi."""

    def __init__(self, *, impersonate: str | None = DEFAULT_IMPERSONATE, proxy: str | None = None):
        kwargs: dict[str, Any] = {"impersonate": impersonate} if impersonate else {}
        if proxy:
            kwargs["proxy"] = proxy
        self._session: AsyncSession[Any] = AsyncSession(max_clients=64, **kwargs)

    async def request(
        self, request: Request, *, headers: Mapping[str, str], timeout: float
    ) -> Response:
        mime = _mime(request.multipart)
        try:
            response = await self._session.request(
                request.method,  # type: ignore[arg-type]
                request.url,
                params=dict(request.params) if request.params else None,
                json=request.json,
                multipart=mime,
                headers=dict(headers),
                timeout=timeout,
                allow_redirects=True,
            )
        except CurlTimeout:
            raise Timeout(f"{request.method} {request.url} timed out after {timeout:g} s") from None
        except CurlError as exc:
            raise TransportError(f"{request.method} {request.url} failed: {exc}") from None
        finally:
            if mime is not None:
                mime.close()
        response_headers = {k.lower(): v for k, v in response.headers.items() if v is not None}
        return Response(response.status_code, response_headers, response.content)

    @asynccontextmanager
    async def stream(
        self, request: Request, *, headers: Mapping[str, str], timeout: float
    ) -> AsyncIterator[StreamedResponse]:
        what = f"{request.method} {request.url}"
        try:
            response = await self._session.request(
                request.method,  # type: ignore[arg-type]
                request.url,
                params=dict(request.params) if request.params else None,
                json=request.json,
                headers=dict(headers),
                timeout=timeout,
                allow_redirects=True,
                stream=True,
            )
        except CurlTimeout:
            raise Timeout(f"{what} timed out after {timeout:g} s") from None
        except CurlError as exc:
            raise TransportError(f"{what} failed: {exc}") from None

        # In stream mode curl's own timeout only limits idle time; the deadline bounds
        # the whole body.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        async def chunks() -> AsyncGenerator[bytes, None]:
            pieces = response.aiter_content()
            while True:
                try:
                    chunk = await asyncio.wait_for(pieces.__anext__(), deadline - loop.time())
                except StopAsyncIteration:
                    return
                except (asyncio.TimeoutError, CurlTimeout):
                    raise Timeout(f"{what} timed out after {timeout:g} s") from None
                except CurlError as exc:
                    raise TransportError(f"{what} failed: {exc}") from None
                yield chunk

        response_headers = {k.lower(): v for k, v in response.headers.items() if v is not None}
        body = chunks()
        try:
            yield StreamedResponse(response.status_code, response_headers, str(response.url), body)
        finally:
            await body.aclose()
            task = response.astream_task
            if task is not None and not task.done():
                # Cancelling curl_cffi's transfer task makes it remove the handle from its
                # multi and release it: the rest of the body is dropped at once.
                task.cancel()
                await asyncio.wait({task})
            else:
                with contextlib.suppress(CurlError):  # A transfer that had failed.
                    await response.aclose()

    async def ws_connect(
        self, url: str, *, headers: Mapping[str, str], timeout: float
    ) -> CurlWebSocket:
        try:
            ws = await self._session.ws_connect(url, headers=dict(headers), timeout=timeout)
        except (CurlTimeout, WebSocketTimeout):
            raise Timeout(f"WebSocket connect to {url} timed out after {timeout:g} s") from None
        except CurlError as exc:
            match = _UPGRADE_STATUS.search(str(exc))
            if match:
                raise HandshakeRefused(int(match.group(1))) from None
            raise TransportError(f"WebSocket connect to {url} failed: {exc}") from None
        return CurlWebSocket(ws)

    async def aclose(self) -> None:
        await self._session.close()
