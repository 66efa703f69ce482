"""The I/O seam: what a transport must do, the two real ones, and an in-memory one for tests.

A transport moves bytes and maps its library's exceptions to :mod:`caiclient.errors`;
it knows nothing of the protocol. Pass one as ``AsyncClient(transport=...)``:

- :class:`CurlTransport` (the default): curl_cffi with a browser's TLS fingerprint;
- :class:`AiohttpTransport`: aiohttp, faster, without impersonation (emulator, proxies);
- :class:`MockTransport`: a handler function plays the server, no network at all.

The two real transports are imported on first use, so ``import caiclient.transports`` stays
cheap (curl_cffi and aiohttp take tens of milliseconds each to import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._transport import HandshakeRefused, HttpTransport, StreamedResponse, WebSocket
from ._transport.mock import MockTransport, MockWebSocket, Sent

if TYPE_CHECKING:
    from ._transport.aiohttp import AiohttpTransport
    from ._transport.curl import CurlTransport

__all__ = [
    "AiohttpTransport",
    "CurlTransport",
    "HandshakeRefused",
    "HttpTransport",
    "MockTransport",
    "MockWebSocket",
    "Sent",
    "StreamedResponse",
    "WebSocket",
]


def __getattr__(name: str) -> Any:
    # PEP 562: load a real transport (and its library) only when it is asked for.
    if name == "CurlTransport":
        from ._transport.curl import CurlTransport

        return CurlTransport
    if name == "AiohttpTransport":
        from ._transport.aiohttp import AiohttpTransport

        return AiohttpTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
