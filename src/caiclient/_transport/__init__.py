"""I/O transports: they move bytes and map third-party exceptions, nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ..errors import TransportError
from ..protocol.http import Request, Response

__all__ = ["HandshakeRefused", "HttpTransport", "WebSocket"]


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


class HttpTransport(Protocol):
    """An HTTP session that can also open WebSockets."""

    async def request(
        self, request: Request, *, headers: Mapping[str, str], timeout: float
    ) -> Response: ...

    async def ws_connect(
        self, url: str, *, headers: Mapping[str, str], timeout: float
    ) -> WebSocket: ...

    async def aclose(self) -> None: ...
