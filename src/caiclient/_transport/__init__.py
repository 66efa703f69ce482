"""I/O transports: they move bytes and map third-party exceptions, nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from ..errors import TransportError
from ..protocol.http import Request, Response

__all__ = [
    "HandshakeRefused",
    "HttpTransport",
    "StreamedResponse",
    "WebSocket",
    "task_cancelling",
]


def task_cancelling() -> bool:
    """Whether the running task itself is being cancelled, as opposed to a CancelledError
    coming out of work that was cancelled under it (always assumed before Python 3.11)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or bool(cancelling())


class HandshakeRefused(TransportError):
    """The server answered the WebSocket upgrade with an HTTP status instead of 101."""

    def __init__(self, status: int | None):
        self.status = status
        super().__init__(f"WebSocket upgrade refused with HTTP {status}")


class WebSocket(Protocol):
    """One open WebSocket. ``recv`` raises :class:`~caiclient.errors.Disconnected` on close."""

    async def send(self, data: bytes) -> None: ...

    async def recv(self) -> bytes | str: ...

    async def close(self) -> None: ...

    def abort(self) -> None:
        """Drop the connection at once, without a closing handshake (a dead peer)."""
        ...


@dataclass(frozen=True, slots=True)
class StreamedResponse:
    """A response whose body is still arriving: status, headers (lower-case keys) and the
    final URL (after redirects) are known; ``chunks`` yields the body as it comes.

    ``chunks`` raises :class:`~caiclient.errors.Timeout` or
    :class:`~caiclient.errors.TransportError` when the transfer fails midway.
    """

    status: int
    headers: Mapping[str, str]
    url: str
    chunks: AsyncIterator[bytes]
    received_at: float = 0.0  # wall-clock time the headers arrived (time.time())

    async def read(self, limit: int = 1 << 20) -> bytes:
        """The rest of the body, at most ``limit`` bytes (error pages are read this way)."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks:
            parts.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
        return b"".join(parts)[:limit]


class HttpTransport(Protocol):
    """An HTTP session that can also open WebSockets."""

    async def request(
        self, request: Request, *, headers: Mapping[str, str], timeout: float
    ) -> Response: ...

    def stream(
        self, request: Request, *, headers: Mapping[str, str], timeout: float
    ) -> AbstractAsyncContextManager[StreamedResponse]:
        """Send ``request`` (following redirects) and give the response once its headers
        are in; leaving the context ends the transfer. ``timeout`` bounds the whole body."""
        ...

    async def ws_connect(
        self, url: str, *, headers: Mapping[str, str], timeout: float
    ) -> WebSocket: ...

    async def aclose(self) -> None: ...
