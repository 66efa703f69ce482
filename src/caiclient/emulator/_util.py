"""Small helpers shared by the emulator's areas: ids, timestamps, JSON encoding."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone
from typing import Any

import msgspec

__all__ = ["b64url", "b64url_decode", "decode_json", "encode", "new_id", "now_iso"]

_ENCODER = msgspec.json.Encoder()

encode = _ENCODER.encode
"""Encode any builtin or msgspec Struct to compact JSON bytes."""


def decode_json(data: bytes | str) -> Any:
    """Decode JSON; too deeply nested input is a ``msgspec.DecodeError`` like any other
    malformed input, never a ``RecursionError`` that would escape a handler (issue 10 #16)."""
    try:
        return msgspec.json.decode(data)
    except RecursionError:
        raise msgspec.DecodeError("JSON is nested too deeply") from None


def now_iso() -> str:
    """The current UTC time as ``2024-05-01T12:34:56.117205Z`` (docs/protocol.md §2.2)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id() -> str:
    """A fresh UUIDv4 string, the form of every neo chat/turn/candidate id."""
    return str(uuid.uuid4())


def b64url(data: bytes) -> str:
    """Unpadded base64url text of ``data``."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url`; raises ``ValueError`` on malformed input."""
    if not text or len(text) > 64:
        raise ValueError("bad base64url length")
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError("bad base64url") from exc
