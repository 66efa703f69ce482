"""Ids the client chooses itself (chats, turns, candidates, request ids, identifiers)."""

from __future__ import annotations

import os

__all__ = ["new_id"]


def new_id() -> str:
    """A random UUIDv4 string, formatted directly (3x faster than ``str(uuid.uuid4())``,
    and ids are minted several times per message)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
