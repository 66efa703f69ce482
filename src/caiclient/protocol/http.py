"""REST requests as plain descriptions, and responses parsed into models or errors. No I/O."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from ..errors import (
    AuthError,
    BlockedError,
    CaiError,
    NotFound,
    ProtocolError,
    RateLimited,
    ServerError,
)
from .neo import error_from_neo

__all__ = [
    "Request",
    "Response",
    "decode",
    "error_for",
    "retry_after_seconds",
]

T = TypeVar("T")


_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Request:
    """What to send: the transport turns it into bytes on the wire."""

    method: str
    url: str
    params: Mapping[str, str] | None = None
    json: Any = None
    # Safe to send twice? None means "by method": GET, HEAD, PUT, DELETE and OPTIONS are.
    # Builders of POSTs that only read (searches, info lookups) say True explicitly.
    idempotent: bool | None = None
    # A multipart/form-data body instead of ``json``: parts as (field name, file name or
    # None, content type or None, content).
    multipart: tuple[tuple[str, str | None, str | None, bytes], ...] | None = None

    @property
    def is_idempotent(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method.upper() in _IDEMPOTENT_METHODS


@dataclass(frozen=True, slots=True)
class Response:
    """What came back. ``headers`` keys are lower-case."""

    status: int
    headers: Mapping[str, str]
    body: bytes


# --- parsing helpers -------------------------------------------------------------------------


def decode(body: bytes, type_: type[T], what: str) -> T:
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"unexpected {what} response: {exc}") from None


# --- errors ----------------------------------------------------------------------------------


class _NeoErrorBody(msgspec.Struct, kw_only=True):
    command: str = ""
    comment: str = ""
    error_code: int | None = None
    sub_code: int | str | None = None
    retry_after_seconds: float | None = None
    detail: str | None = None
    # A string (Django) or an object with a "message" (Firebase, PROTOCOL.md §2.4.7).
    error: str | dict[str, Any] | None = None
    message: str | None = None

    @property
    def text(self) -> str:
        error = self.error.get("message") if isinstance(self.error, dict) else self.error
        return self.comment or self.detail or str(error or "") or self.message or ""


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """Parse a ``Retry-After`` header: delta seconds or an HTTP date (relative to ``now``)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass  # Not a number: try the HTTP-date form below.
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _looks_blocked(response: Response) -> bool:
    headers = response.headers
    if "cf-mitigated" in headers:
        return True
    content_type = headers.get("content-type", "")
    head = response.body[:512].lstrip().lower()
    is_html = "text/html" in content_type or head.startswith((b"<!doctype", b"<html"))
    return is_html and response.status in (403, 429, 503)


def error_for(
    response: Response, *, not_found: type[NotFound] = NotFound, now: float | None = None
) -> CaiError | None:
    """The error a response stands for, or None when it is a success.

    Cloudflare pages (HTML, ``cf-mitigated``) are :class:`BlockedError`, never a token
    problem; a JSON 401 is :class:`AuthError`; neo error bodies are classified like the
    WebSocket's ``neo_error`` frames.
    """
    status = response.status
    if 200 <= status < 300:
        return None
    if _looks_blocked(response):
        return BlockedError(
            f"HTTP {status} from an anti-bot page",
            status=status,
            ray=response.headers.get("cf-ray"),
        )
    try:
        body = msgspec.json.decode(response.body, type=_NeoErrorBody)
    except msgspec.DecodeError:
        body = _NeoErrorBody(comment=response.body[:200].decode("utf-8", "replace").strip())
    text = body.text
    if status == 401:
        return AuthError(f"the token was refused (HTTP 401): {text or 'Unauthorized'}")
    if status == 403:
        return AuthError(f"access denied (HTTP 403): {text}")
    if status == 429:
        header = response.headers.get("retry-after")
        wait = retry_after_seconds(header, now=time.time() if now is None else now)
        return RateLimited("rate limited (HTTP 429)", retry_after=wait)
    if body.command == "neo_error":
        error = error_from_neo(
            body.comment,
            error_code=body.error_code or status,
            sub_code=body.sub_code,
            retry_after=body.retry_after_seconds,
        )
        if isinstance(error, NotFound) and not isinstance(error, not_found):
            return not_found(body.comment)
        return error
    if status == 404:
        return not_found(text or "not found")
    return ServerError(f"HTTP {status}: {text}".rstrip(": "), status=status, body=text)
