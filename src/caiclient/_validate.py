"""Argument checks that run before any I/O, each raising ValidationError that says what to fix."""

from __future__ import annotations

from .errors import ValidationError
from .models import Chat

__all__ = ["check_chat", "check_id", "check_text", "check_timeout"]

_ID_FORBIDDEN = frozenset("/?#%&\\ \t\r\n\"'")


def check_id(value: object, what: str) -> str:
    """A server id: a non-empty string that is safe to put in a URL path."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a str, got {type(value).__name__}")
    if not value or len(value) > 256 or any(c in _ID_FORBIDDEN for c in value):
        raise ValidationError(f"{what} {value!r} is not a valid id")
    return value


def check_text(value: object, what: str = "text") -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValidationError(f"{what} is empty or only whitespace; nothing to send")
    return value


def check_chat(value: object) -> Chat:
    if not isinstance(value, Chat):
        hint = " (use client.chats.get(chat_id) to load one)" if isinstance(value, str) else ""
        raise ValidationError(f"chat must be a Chat, got {type(value).__name__}{hint}")
    return value


def check_timeout(value: float | None) -> float | None:
    if value is not None and (isinstance(value, bool) or not value > 0):
        raise ValidationError(f"timeout must be a positive number of seconds, got {value!r}")
    return value
