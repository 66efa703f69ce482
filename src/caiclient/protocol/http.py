"""REST requests as plain descriptions, and responses parsed into models or errors. No I/O."""

from __future__ import annotations

import email.utils
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import msgspec

from ..errors import (
    AuthError,
    BlockedError,
    CaiError,
    ChatNotFound,
    NotFound,
    ProtocolError,
    RateLimited,
    ServerError,
)
from .neo import error_from_neo

__all__ = [
    "Request",
    "Response",
    "check_refusal",
    "decode",
    "encode_multipart",
    "error_for",
    "refusal",
    "retry_after_seconds",
]

T = TypeVar("T")


_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


_encode_json = msgspec.json.Encoder().encode
# What may stand unencoded in a path or query (RFC 3986 unreserved and sub-delims, ':' '@',
# and '%' so that escapes already made are kept).
_URL_SAFE = "/%:@!$&'()*+,;=-._~"


@dataclass(frozen=True, slots=True)
class Request:
    """What to send. The core encodes the body (:meth:`content`); transports only move it,
    so every transport sends the same bytes for the same request."""

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

    def target(self) -> str:
        """The URL to send, encoded here once so that every transport puts the same bytes on
        the wire: characters a URL may not hold are percent-encoded (``%`` escapes already
        there are kept), ``params`` are appended as a form-encoded query (space ``+``,
        ``/`` ``%2F``, as browsers encode a form)."""
        parts = urlsplit(self.url)
        path = quote(parts.path, safe=_URL_SAFE)
        query = quote(parts.query, safe=_URL_SAFE + "?")
        if self.params:
            query = "&".join(filter(None, (query, urlencode(self.params))))
        return urlunsplit((parts.scheme, parts.netloc, path, query, ""))

    def content(self, boundary: str | None = None) -> tuple[bytes | None, dict[str, str]]:
        """The encoded body and the headers that describe it (``Content-Type``).

        JSON is encoded compactly as UTF-8 (msgspec); multipart parts are encoded with
        ``boundary`` (random when None). No body: ``(None, {})``.
        """
        if self.multipart:
            boundary = boundary or os.urandom(16).hex()
            body = encode_multipart(self.multipart, boundary)
            return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        if self.json is not None:
            return _encode_json(self.json), {"Content-Type": "application/json"}
        return None, {}


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "")


def encode_multipart(
    parts: tuple[tuple[str, str | None, str | None, bytes], ...], boundary: str
) -> bytes:
    """A ``multipart/form-data`` body (RFC 7578) of ``(name, filename, content type, data)``."""
    chunks: list[bytes] = []
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{_quoted(name)}"'
        if filename is not None:
            disposition += f'; filename="{_quoted(filename)}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        chunks += [head.encode(), b"\r\n", data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class Response:
    """What came back. ``headers`` keys are lower-case; ``received_at`` is the wall-clock
    time (``time.time()``) the transport got it, for HTTP-date ``Retry-After`` headers."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    received_at: float = 0.0


# --- parsing helpers -------------------------------------------------------------------------


def decode(body: bytes, type_: type[T], what: str, *, in_band: bool = True) -> T:
    """``body`` as ``type_``, or the error it reports instead: a refusal inside a 2xx body
    (:func:`refusal`: every parser checks it, so none can read a refusal as empty data),
    else ProtocolError naming ``what`` when it is not that shape. ``in_band=False`` is for
    the few parsers that classify a refusal themselves (a refused login is an AuthError)."""
    if in_band:
        check_refusal(body, what)
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"unexpected {what} response: {exc}") from None
    except RecursionError:
        raise ProtocolError(f"unexpected {what} response: JSON nested too deeply") from None


# --- errors ----------------------------------------------------------------------------------


class _NeoErrorBody(msgspec.Struct, kw_only=True):
    command: str = ""
    comment: str = ""
    error_code: int | None = None
    sub_code: int | str | None = None
    retry_after_seconds: float | None = None
    detail: str | None = None
    # A string (Django) or an object with a "message" (Firebase, docs/protocol.md §2.4.7).
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


def _addressed(error: CaiError, not_found: type[NotFound]) -> CaiError:
    """A neo "not found" as the call's own kind (``not_found``, what the call addresses),
    unless it names another kind of thing: "Character not found" while changing a room is
    CharacterNotFound. "Chat not found" is the call's kind too (rooms are chats to neo)."""
    if type(error) in (NotFound, ChatNotFound) and not isinstance(error, not_found):
        return not_found(str(error))
    return error


def error_for(response: Response, *, not_found: type[NotFound] = NotFound) -> CaiError | None:
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
    except (msgspec.DecodeError, RecursionError):
        body = _NeoErrorBody(comment=response.body[:200].decode("utf-8", "replace").strip())
    text = body.text
    if status == 401:
        return AuthError(f"the token was refused (HTTP 401): {text or 'Unauthorized'}")
    if status == 403:
        if body.command == "neo_error":
            # The service refusing one operation to this account (e.g. deleting another
            # user's room), not the token: the token is fine (docs/protocol.md §2.4.5).
            return ServerError(f"refused (HTTP 403): {text}", status=403, body=text)
        return AuthError(f"access denied (HTTP 403): {text}")
    if status == 429:
        header = response.headers.get("retry-after")
        wait = retry_after_seconds(header, now=response.received_at)
        return RateLimited("rate limited (HTTP 429)", retry_after=wait)
    if body.command == "neo_error":
        error = error_from_neo(
            body.comment,
            error_code=body.error_code or status,
            sub_code=body.sub_code,
            retry_after=body.retry_after_seconds,
        )
        return _addressed(error, not_found)
    if status == 404:
        return not_found(text or "not found")
    return ServerError(f"HTTP {status}: {text}".rstrip(": "), status=status, body=text)


# --- errors reported inside 2xx bodies ----------------------------------------------------------


class _InBand(msgspec.Struct, kw_only=True):
    command: str | None = None
    comment: str = ""
    error_code: int | None = None
    sub_code: int | str | None = None
    retry_after_seconds: float | None = None
    status: str | None = None
    success: bool | None = None
    error: Any = None


# Words with which the Django app says "no such thing" in a refusal (§2.4.2, §6.2).
_MISSING_HINTS = ("not found", "no character", "does not exist", "permission to view")


def refusal(
    body: bytes,
    what: str,
    *,
    not_found: type[NotFound] | None = None,
    object_expected: bool = False,
) -> CaiError | None:
    """The error a 2xx body reports in-band, or None when it reports none (docs/protocol.md
    §2.4.1–§2.4.2). The one reader of every shape of a whole body (the lines of a Chat V1
    stream, §2.4.3, are read by ``protocol.v1.ReplyStream``: a line is a reply snapshot or
    an error, and only a status starting with "error" fails it):

    - a ``neo_error`` object: classified like the socket's error frames;
    - ``{"status": <anything but "OK">}``, ``{"success": false}``, ``{"error": text}`` or
      ``{"error": {"message": text}}`` (Django, Firebase-style): ``not_found`` when the text
      says the thing is missing (if given), RateLimited for "rate limit"/"too many", else
      ServerError.

    An empty body, or one that is not a JSON object, reports nothing (the caller's typed
    decode decides about it), unless ``object_expected``: answers that carry nothing but
    their status must be an object, and anything else is a ProtocolError.
    """
    try:
        found = msgspec.json.decode(body, type=_InBand)
    except (msgspec.DecodeError, RecursionError):
        if object_expected:
            return ProtocolError(f"unexpected {what} response: not a JSON object")
        return None
    if found.command == "neo_error":
        error = error_from_neo(
            found.comment,
            error_code=found.error_code,
            sub_code=found.sub_code,
            retry_after=found.retry_after_seconds,
        )
        return error if not_found is None else _addressed(error, not_found)
    text = _refusal_text(found)
    if text is None:
        return None
    lowered = text.lower()
    if not_found is not None and any(hint in lowered for hint in _MISSING_HINTS):
        return not_found(text)
    if "rate limit" in lowered or "too many" in lowered:
        return RateLimited(text)
    return ServerError(f"{what} was refused: {text}", status=200, body=text)


def _refusal_text(found: _InBand) -> str | None:
    error = found.error
    if isinstance(error, dict):
        error = error.get("message") or error.get("code") or str(error)
    if error not in (None, "", [], {}):
        return str(error)
    if found.success is False:
        return found.status or "refused"
    status = found.status
    if isinstance(status, str) and status.upper() not in ("OK", ""):
        return status
    return None


def check_refusal(
    body: bytes,
    what: str,
    *,
    not_found: type[NotFound] | None = None,
    object_expected: bool = False,
) -> None:
    """Raise the error :func:`refusal` finds in ``body``, if any."""
    error = refusal(body, what, not_found=not_found, object_expected=object_expected)
    if error is not None:
        raise error
