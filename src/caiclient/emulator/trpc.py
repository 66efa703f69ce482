"""The character.ai front end's tRPC endpoint, ``/web/api/trpc/<proc>[,<proc>…]?batch=1``.

Areas add their procedures in their ``register(app)`` with :func:`add_procedure`; the
router, created by :func:`register` before any area, handles the batch envelope:
input ``{"0": {"json": …}, "1": …}`` (POST body, or the ``input`` query parameter of a GET,
raw or URL-encoded), answer ``[{"result": {"data": {"json": …}}}, …]`` or, per failed
call, ``{"error": {"json": {"message", "code", "data": {"code", "httpStatus", "path"}}}}``
(docs/protocol.md §2.4.6).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec
from aiohttp import web

from ._http import json_response, token_from_header
from ._util import decode_json
from .state import STATE
from .store import User

__all__ = ["TRPC", "Procedure", "TrpcCall", "TrpcError", "TrpcRouter", "add_procedure", "register"]


class TrpcError(Exception):
    """Raised by a procedure; becomes that call's error entry."""

    _CODES: ClassVar[dict[int, tuple[str, int]]] = {
        400: ("BAD_REQUEST", -32600),
        401: ("UNAUTHORIZED", -32001),
        404: ("NOT_FOUND", -32004),
    }

    def __init__(self, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status

    def entry(self, path: str) -> dict[str, Any]:
        name, code = self._CODES.get(self.http_status, ("INTERNAL_SERVER_ERROR", -32603))
        data = {"code": name, "httpStatus": self.http_status, "path": path}
        return {"error": {"json": {"message": self.message, "code": code, "data": data}}}


@dataclass(frozen=True, slots=True)
class TrpcCall:
    """What a procedure gets: the request, its input, and the user if one is signed in.

    The user comes from an ``Authorization: Token`` header; tRPC calls on the live site use
    the ``web-next-auth`` cookie instead, which the emulator accepts holding a token too.
    """

    request: web.Request
    input: Any
    user: User | None


Procedure = Callable[[TrpcCall], Awaitable[Any]]


class TrpcRouter:
    """The procedures of one app, by dotted name (``search.search``)."""

    def __init__(self) -> None:
        self.procedures: dict[str, Procedure] = {}


TRPC = web.AppKey("caiclient_emulator_trpc", TrpcRouter)


def add_procedure(app: web.Application, name: str, fn: Procedure) -> None:
    """Serve ``fn`` as the tRPC procedure ``name`` (``register(app)`` must have run)."""
    procedures = app[TRPC].procedures
    if name in procedures:
        raise ValueError(f"tRPC procedure {name!r} is registered twice")
    procedures[name] = fn


def _user(request: web.Request) -> User | None:
    users = request.app[STATE].store.users_by_token
    token = token_from_header(request.headers.get("Authorization"))
    if token is None:
        token = request.cookies.get("web-next-auth")
    return users.get(token or "")


async def _inputs(request: web.Request) -> dict[str, Any]:
    if request.method == "POST":
        raw: Any = decode_json(await request.read() or b"{}")
    else:
        # aiohttp has already percent-decoded the query value.
        raw = decode_json(request.query.get("input", "{}"))
    if not isinstance(raw, dict):
        raise msgspec.ValidationError("tRPC input must be an object keyed by call index")
    return raw


async def _handle(request: web.Request) -> web.Response:
    names = request.match_info["procs"].split(",")
    inputs = await _inputs(request)
    user = _user(request)
    results: list[Any] = []
    for index, name in enumerate(names):
        wrapped = inputs.get(str(index))
        value = wrapped.get("json") if isinstance(wrapped, dict) else None
        fn = request.app[TRPC].procedures.get(name)
        try:
            if fn is None:
                raise TrpcError(f'No "query"-procedure on path "{name}"', 404)
            data = await fn(TrpcCall(request, value, user))
            results.append({"result": {"data": {"json": data}}})
        except TrpcError as exc:
            results.append(exc.entry(name))
    status = 200
    if all("error" in r for r in results):
        status = results[0]["error"]["json"]["data"]["httpStatus"]
    return json_response(results, status)


def register(app: web.Application) -> None:
    """Create the app's tRPC router and serve it under ``/web/api/trpc/``."""
    app[TRPC] = TrpcRouter()
    app.router.add_get("/web/api/trpc/{procs}", _handle)
    app.router.add_post("/web/api/trpc/{procs}", _handle)
