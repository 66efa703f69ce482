"""REST plumbing shared by every area: JSON responses, token auth, the error middleware."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from ._util import decode_json, encode
from .faults import FAULTS
from .state import STATE
from .store import User

__all__ = [
    "DJANGO_PREFIXES",
    "ApiError",
    "authenticate",
    "error_middleware",
    "json_response",
    "limited_user",
    "neo_error",
    "neo_error_body",
    "query_count",
    "read_json",
    "socket_user",
    "token_from_header",
]

log = logging.getLogger("caiclient.emulator")

DJANGO_PREFIXES = ("/plus", "/beta")
"""``plus.character.ai`` and ``beta.character.ai`` serve the same Django app, so every area
registers its Django routes under both prefixes."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """Raised by handlers; the middleware turns it into a JSON response."""

    def __init__(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=encode(body), status=status, content_type="application/json", headers=headers
    )


def neo_error_body(comment: str, error_code: int) -> dict[str, Any]:
    """The neo error object (docs/protocol.md §2.4.1, §8.6) without a request id."""
    return {
        "command": "neo_error",
        "comment": comment,
        "error_code": error_code,
        "sub_code": None,
        "retry_after_seconds": None,
    }


def neo_error(status: int, comment: str) -> ApiError:
    """A neo REST refusal: HTTP ``status`` with the neo error object as its body."""
    return ApiError(status, neo_error_body(comment, status))


def token_from_header(value: str | None) -> str | None:
    """The token of an ``Authorization: Token <token>`` value, or None."""
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "token" else None


def _cookie_token(header: str) -> str | None:
    """The token in a ``HTTP_AUTHORIZATION="Token <t>"`` cookie (quotes optional)."""
    for part in header.split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "HTTP_AUTHORIZATION":
            return token_from_header(value.strip().strip('"'))
    return None


def socket_user(request: web.Request) -> User | None:
    """The user a socket upgrade authenticates, by cookie or ``Authorization`` header
    (docs/protocol.md §1.2; both sockets, §8.1 and §9)."""
    token = _cookie_token(request.headers.get("Cookie", ""))
    if token is None:
        token = token_from_header(request.headers.get("Authorization"))
    return request.app[STATE].store.users_by_token.get(token or "")


MAX_CLIENT_FRAME = 1024 * 1024
"""Largest frame a client may send on either socket (1 MiB); a larger one closes it with 1009."""


async def accept_socket(request: web.Request) -> tuple[web.WebSocketResponse, User] | web.Response:
    """The upgrade of both sockets (§1.2, §8.1, §9): an armed anti-bot block first, then a
    plain HTTP 403 unless authenticated, else the socket, registered with the state (the
    caller discards it when it ends). No permessage-deflate: frames are small and the
    benchmarks want raw throughput."""
    refusal = request.app[FAULTS].on_upgrade()  # (Cloudflare answers before any auth check.)
    if refusal is not None:
        return refusal
    user = socket_user(request)
    if user is None:
        return web.Response(status=403, text="Forbidden")
    ws = web.WebSocketResponse(compress=False, max_msg_size=MAX_CLIENT_FRAME)
    await ws.prepare(request)
    request.app[STATE].sockets.add(ws)
    return ws, user


def authenticate(request: web.Request) -> User:
    """The user owning the request's DRF token; raises ApiError(401) like DRF does."""
    header = request.headers.get("Authorization")
    challenge = {"WWW-Authenticate": "Token"}
    if header is None:
        detail = "Authentication credentials were not provided."
        raise ApiError(401, {"detail": detail}, challenge)
    token = token_from_header(header)
    user = request.app[STATE].store.users_by_token.get(token or "")
    if user is None:
        raise ApiError(401, {"detail": "Invalid token."}, challenge)
    return user


def limited_user(request: web.Request) -> User:
    """The caller of a neo REST route, counted against the optional REST rate limit
    (429 with ``Retry-After`` and ``retry_after_seconds``, as the chat and rooms routes answer)."""
    user = authenticate(request)
    wait = request.app[STATE].store.limits.request(user.token)
    if wait is not None:
        body = neo_error_body("Rate limit exceeded", 429)
        body["retry_after_seconds"] = wait
        raise ApiError(429, body, {"Retry-After": str(wait)})
    return user


async def read_json(request: web.Request) -> Any:
    """The decoded JSON body; a malformed body raises msgspec.DecodeError (→ 400)."""
    return decode_json(await request.read())


def query_count(value: str | None, low: int, high: int) -> int | None:
    """A query parameter holding a whole number from ``low`` to ``high``; None if absent.
    Anything else (signs, non-ASCII digits, thousands of digits) raises ValueError, so a
    handler answers 400 instead of failing with a 500 (issue 10 #16)."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(high)):
        raise ValueError(value)
    number = int(value)
    if not low <= number <= high:
        raise ValueError(value)
    return number


def _is_neo(request: web.Request) -> bool:
    return request.path == "/neo" or request.path.startswith("/neo/")


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    if exc.status == 404:
        body: object = (
            neo_error_body("Not found", 404) if _is_neo(request) else {"detail": "Not found."}
        )
    elif exc.status == 405:
        body = {"detail": f'Method "{request.method}" not allowed.'}
    else:
        body = {"detail": exc.reason}
    return json_response(body, exc.status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON error response; never let a traceback reach a client."""
    try:
        return await handler(request)
    except ApiError as exc:
        return json_response(exc.body, exc.status, exc.headers)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        detail = f"JSON parse error - {exc}"
        body = neo_error_body(detail, 400) if _is_neo(request) else {"detail": detail}
        return json_response(body, 400)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(request, exc)
    except Exception:
        log.exception("emulator handler failed: %s %s", request.method, request.path)
        return json_response({"detail": "Internal server error."}, 500)
