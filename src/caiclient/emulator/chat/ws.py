"""The chat V2 WebSocket ``/neo/ws/`` (docs/protocol.md §8): upgrade, reader and dispatch.

One reader per socket parses frames; each request then runs in its own task (at most
:data:`~.connection.MAX_IN_FLIGHT` at once), so generations of different chats interleave.
The commands themselves are in :mod:`.commands`.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from .._http import accept_socket
from .._util import decode_json
from ..faults import FAULTS
from ..rooms.store import ROOMS
from ..state import STATE
from .commands import COMMANDS, UNLIMITED, Command
from .connection import MAX_IN_FLIGHT, Connection, RequestError
from .store import CHAT

__all__ = ["add_routes", "dispatch"]

log = logging.getLogger("caiclient.emulator")


async def _run(conn: Connection, command: Command, request_id: object, payload: Any) -> None:
    try:
        await command(conn, request_id, payload)
    except RequestError as exc:
        await conn.error(
            request_id, exc.comment, exc.code, sub_code=exc.sub_code, retry_after=exc.retry_after
        )
    except msgspec.ValidationError as exc:
        await conn.error(request_id, f"Invalid payload: {exc}", 400)
    except Exception:
        log.exception("emulator command failed")
        await conn.error(request_id, "Internal server error", 500)


def _finished(conn: Connection) -> None:
    conn.in_flight -= 1


async def dispatch(conn: Connection, data: str | bytes) -> None:
    """Handle one incoming frame: answer inline, or start the request's task."""
    try:
        frame = decode_json(data)
    except msgspec.DecodeError:
        frame = None
    if not isinstance(frame, dict):
        await conn.error(None, "Invalid message", 400)
        return
    if not frame:
        await conn.keepalive()
        return
    request_id = frame.get("request_id")
    name = frame.get("command")
    command = COMMANDS.get(name) if isinstance(name, str) else None
    if command is None:
        await conn.error(request_id, f"Unknown command: {name}", 400)
        return
    # Even an abort runs as a task: tasks start in order, so a generation dispatched just
    # before its abort has registered itself by the time the abort looks for it.
    work = _run(conn, command, request_id, frame.get("payload", {}))
    if name in UNLIMITED:
        conn.state.spawn(work)
    elif conn.in_flight >= MAX_IN_FLIGHT:
        work.close()
        await conn.error(request_id, "Too many requests in flight", 429, retry_after=1)
    else:
        conn.in_flight += 1
        conn.state.spawn(work).add_done_callback(lambda _: _finished(conn))


async def websocket(request: web.Request) -> web.StreamResponse:
    """``GET /neo/ws/``: refuse with plain HTTP 403 unless authenticated (§1.2)."""
    accepted = await accept_socket(request)
    if isinstance(accepted, web.Response):
        return accepted
    ws, user = accepted
    state, faults = request.app[STATE], request.app[FAULTS]
    rooms = request.app.get(ROOMS)
    conn = Connection(ws, state, request.app[CHAT], user, faults, request.transport, rooms)
    silence = faults.on_chat_socket()
    if silence is not None:
        conn.silence(silence)
    try:
        async for msg in ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                if faults.on_request():
                    conn.abort_transport()
                    break
                await dispatch(conn, msg.data)
    finally:
        conn.closed = True
        state.sockets.discard(ws)
    return ws


def add_routes(app: web.Application) -> None:
    """Add the chat socket's routes to ``app``."""
    app.router.add_get("/neo/ws/", websocket)
    app.router.add_get("/neo/ws", websocket)
