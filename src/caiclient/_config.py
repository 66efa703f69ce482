"""Every default and limit of the client in one place, and the options object built from them.

:class:`ClientOptions` is made once by :class:`~caiclient.AsyncClient` (and the login
functions), validated there, and passed whole to the core and the socket, so there is one
copy of each default and one check of each value.
"""

from __future__ import annotations

import msgspec

from .errors import ValidationError
from .protocol.retry import Backoff, RetryPolicy

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_IMPERSONATE",
    "DEFAULT_TIMEOUT",
    "KEEPALIVE_MIN_INTERVAL",
    "MAX_RECV_FRAME",
    "MAX_RESPONSE_BODY",
    "MAX_SEND_FRAME",
    "MAX_TEXT_BYTES",
    "MAX_TIMEOUT",
    "ClientOptions",
]

DEFAULT_TIMEOUT = 30.0
"""Seconds a call may take when it is given no ``timeout``."""

DEFAULT_IDLE_TIMEOUT = 30.0
"""Seconds the chat socket may stay silent while requests wait before it counts as dead."""

DEFAULT_IMPERSONATE = "chrome"
"""The browser whose TLS fingerprint curl_cffi presents (docs/protocol.md §1.3)."""

MAX_TIMEOUT = 86400.0
"""The longest deadline any call accepts (one day); longer or infinite ones are refused."""

MAX_SEND_FRAME = 1 << 20
"""The largest WebSocket frame the client sends (1 MiB; the emulator closes with 1009
above it, docs/protocol.md §8.1)."""

MAX_TEXT_BYTES = MAX_SEND_FRAME - (16 << 10)
"""The largest message text, JSON-encoded: a frame's limit minus room for its envelope."""

MAX_RECV_FRAME = 16 << 20
"""The largest WebSocket frame the client accepts (16 MiB), on every transport."""

MAX_RESPONSE_BODY = 64 << 20
"""The largest REST response body the client reads (64 MiB); a larger one is a
ProtocolError, not an ever-growing buffer."""

KEEPALIVE_MIN_INTERVAL = 5.0
"""A bare ``{}`` is answered only if the client sent no ``{}`` of its own in the last this
many seconds: a ``{}`` that soon after ours is its echo, and answering echoes is how an
endless exchange starts (docs/protocol.md §8.1)."""


def _seconds(value: object, what: str, *, allow_zero: bool = False) -> float:
    # Imported here: _validate imports this module for its limits.
    from ._validate import check_seconds

    return check_seconds(value, what, allow_zero=allow_zero)


def _optional_str(value: object, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{what} must be a str or None, got {type(value).__name__}")
    return value


class ClientOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How a client behaves; see :class:`~caiclient.AsyncClient` for each option.

    Built once and validated on construction: a wrong value raises ValidationError before
    anything is opened.
    """

    timeout: float = DEFAULT_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    first_chunk_timeout: float | None = None
    rate_limit_wait: float = 0.0
    impersonate: str | None = DEFAULT_IMPERSONATE
    proxy: str | None = None
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    reconnect: Backoff = msgspec.field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if self.timeout is None:
            raise ValidationError(
                "timeout=None is not a client default: give a number of seconds (per call, "
                "timeout=None means 'the client's default')"
            )
        set_ = msgspec.structs.force_setattr
        set_(self, "timeout", _seconds(self.timeout, "timeout"))
        set_(self, "idle_timeout", _seconds(self.idle_timeout, "idle_timeout"))
        if self.first_chunk_timeout is not None:
            set_(
                self,
                "first_chunk_timeout",
                _seconds(self.first_chunk_timeout, "first_chunk_timeout"),
            )
        set_(
            self,
            "rate_limit_wait",
            _seconds(self.rate_limit_wait, "rate_limit_wait", allow_zero=True),
        )
        _optional_str(self.impersonate, "impersonate")
        _optional_str(self.proxy, "proxy")
        if not isinstance(self.retry, RetryPolicy):
            raise ValidationError(f"retry must be a RetryPolicy, got {type(self.retry).__name__}")
        if not isinstance(self.reconnect, Backoff):
            raise ValidationError(
                f"reconnect must be a Backoff, got {type(self.reconnect).__name__}"
            )
