"""curl_cffi transport: HTTP and WebSocket with a browser's TLS fingerprint.

The live service sits behind Cloudflare, which tells Python's TLS stack from a browser's;
curl_cffi impersonates a browser (docs/protocol.md §1.3). Every curl_cffi exception is mapped
to :mod:`caiclient.errors` in one place, :func:`_mapped`, keeping it as the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from curl_cffi import CurlError, CurlWsFlag
from curl_cffi.const import CurlECode
from curl_cffi.requests import AsyncSession
from curl_cffi.requests.exceptions import SessionClosed
from curl_cffi.requests.exceptions import Timeout as CurlTimeout
from curl_cffi.requests.websockets import AsyncWebSocket, WebSocketClosed, WebSocketTimeout

from .._config import DEFAULT_IMPERSONATE, MAX_RECV_FRAME, MAX_RESPONSE_BODY
from .._deadline import Deadline
from ..errors import ClientClosed, Disconnected, ProtocolError, Timeout, TransportError
from ..protocol.http import Request, Response
from . import HandshakeRefused, StreamedResponse, task_cancelling

__all__ = ["CurlTransport", "CurlWebSocket"]

_UPGRADE_STATUS = re.compile(r"upgrade: (\d{3})", re.IGNORECASE)
# What a content callback returns to make curl abort the transfer (curl's CURL_WRITEFUNC_ERROR).
_ABORT_TRANSFER = 0xFFFFFFFF


@contextmanager
def _mapped(what: str, timeout: float | None = None) -> Iterator[None]:
    """Turn every curl_cffi exception raised inside into the caiclient error it means,
    with the original as ``__cause__`` (as httpx's ``map_httpcore_exceptions``)."""
    try:
        yield
    except (CurlTimeout, WebSocketTimeout) as exc:
        limit = f" after {timeout:g} s" if timeout is not None else ""
        raise Timeout(f"{what} timed out{limit}") from exc
    except SessionClosed as exc:
        raise ClientClosed(f"{what}: the client's HTTP session is closed") from exc
    except CurlError as exc:
        if getattr(exc, "code", None) == CurlECode.OPERATION_TIMEDOUT:
            raise Timeout(f"{what} timed out") from exc
        raise TransportError(f"{what} failed: {exc}") from exc


def _close_code(payload: bytes) -> int | None:
    """The status code of a close frame's payload (RFC 6455 §5.5.1), if it has one."""
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None


class CurlWebSocket:
    __slots__ = ("_ws",)

    def __init__(self, ws: AsyncWebSocket) -> None:
        self._ws = ws

    async def send(self, data: bytes) -> None:
        try:
            await self._ws.send(data, CurlWsFlag.TEXT)
        except CurlError as exc:
            raise Disconnected(f"WebSocket send failed: {exc}") from exc

    async def recv(self) -> bytes:
        try:
            data, flags = await self._ws.recv()
        except WebSocketClosed as exc:
            code = self._ws.close_code
            raise Disconnected(f"WebSocket closed (code {code})", code=code) from exc
        except CurlError as exc:
            raise Disconnected(f"WebSocket failed: {exc}") from exc
        if flags & CurlWsFlag.CLOSE:
            # The server's close frame, not a message (its payload is the close code).
            code = _close_code(data)
            raise Disconnected(f"WebSocket closed (code {code})", code=code)
        return data

    def abort(self) -> None:
        self._ws.terminate()

    async def close(self) -> None:
        try:
            await self._ws.close(timeout=1.0)
        except CurlError:
            self._ws.terminate()  # The socket is already broken; just release it.


class _Capped:
    """A curl content callback that keeps the body and aborts past ``MAX_RESPONSE_BODY``."""

    __slots__ = ("exceeded", "parts", "size")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.exceeded = False

    def __call__(self, chunk: bytes) -> int:
        self.size += len(chunk)
        if self.size > MAX_RESPONSE_BODY:
            self.exceeded = True
            return _ABORT_TRANSFER
        self.parts.append(chunk)
        return len(chunk)


def _headers(response: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items() if v is not None}


class CurlTransport:
    """HTTP session plus WebSockets over curl_cffi."""

    def __init__(self, *, impersonate: str | None = DEFAULT_IMPERSONATE, proxy: str | None = None):
        kwargs: dict[str, Any] = {"impersonate": impersonate} if impersonate else {}
        if proxy:
            kwargs["proxy"] = proxy
        self._session: AsyncSession[Any] = AsyncSession(max_clients=64, **kwargs)
        self._closed = False

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise ClientClosed(f"{what}: the client is closed")

    def _send(
        self, request: Request, headers: Mapping[str, str], timeout: float, **extra: Any
    ) -> Any:
        content, content_headers = request.content()
        return self._session.request(
            request.method,  # type: ignore[arg-type]
            request.target(),
            data=content,
            headers={**headers, **content_headers},
            timeout=timeout,
            allow_redirects=True,
            **extra,
        )

    async def request(
        self, request: Request, *, headers: Mapping[str, str], timeout: float
    ) -> Response:
        what = f"{request.method} {request.url}"
        self._check_open(what)
        body = _Capped()
        try:
            with _mapped(what, timeout):
                response = await self._send(request, headers, timeout, content_callback=body)
        except asyncio.CancelledError:
            # Closing the session cancels the transfers in flight: that is not a
            # cancellation of the caller's task, so it must not look like one.
            if self._closed and not task_cancelling():
                raise ClientClosed(f"{what}: the client was closed during the request") from None
            raise
        except TransportError:
            if body.exceeded:
                raise ProtocolError(
                    f"{what}: the response body is larger than {MAX_RESPONSE_BODY:,} bytes"
                ) from None
            raise
        if response.status_code == 0:  # curl gave up before any response (e.g. on close).
            raise TransportError(f"{what} failed: no response (the connection closed)")
        return Response(response.status_code, _headers(response), b"".join(body.parts), time.time())

    @asynccontextmanager
    async def stream(
        self, request: Request, *, headers: Mapping[str, str], timeout: float
    ) -> AsyncIterator[StreamedResponse]:
        what = f"{request.method} {request.url}"
        self._check_open(what)
        with _mapped(what, timeout):
            response = await self._send(request, headers, timeout, stream=True)

        # In stream mode curl's own timeout only limits idle time; the deadline bounds
        # the whole body.
        deadline = Deadline.after(timeout)

        async def chunks() -> AsyncGenerator[bytes, None]:
            pieces = response.aiter_content()
            while True:
                try:
                    with _mapped(what, timeout):
                        chunk = await asyncio.wait_for(pieces.__anext__(), deadline.remaining())
                except StopAsyncIteration:
                    return
                except asyncio.TimeoutError:
                    raise Timeout(f"{what} timed out after {timeout:g} s") from None
                yield chunk

        body = chunks()
        try:
            yield StreamedResponse(
                response.status_code, _headers(response), str(response.url), body, time.time()
            )
        finally:
            await body.aclose()
            await self._finish(response)

    @staticmethod
    async def _finish(response: Any) -> None:
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
        what = f"WebSocket connect to {url}"
        self._check_open(what)
        try:
            with _mapped(what, timeout):
                ws = await self._session.ws_connect(
                    url, headers=dict(headers), timeout=timeout, max_message_size=MAX_RECV_FRAME
                )
        except TransportError as exc:
            match = _UPGRADE_STATUS.search(str(exc.__cause__ or exc))
            if match and not isinstance(exc, Timeout):
                raise HandshakeRefused(int(match.group(1))) from exc
            raise
        return CurlWebSocket(ws)

    async def aclose(self) -> None:
        self._closed = True
        await self._session.close()
