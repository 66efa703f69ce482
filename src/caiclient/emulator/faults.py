"""Fault injection: make the emulator misbehave on purpose, for a while, then heal.

Every fault is scoped: it applies to the next ``times`` occurrences (or for ``seconds``)
and then clears itself. Faults are armed from Python (``emu.faults.drop_after(3)``) or
over HTTP (``POST /__emulator__/faults`` with ``{"kind": "drop_after", "frames": 3}``, the
control token in ``X-Emulator-Control``); ``GET`` lists the active ones and ``DELETE`` clears
them all. Every spec is checked when it is armed: a wrong type or a value out of range is a
``ValueError`` in Python and a 400 with the reason over HTTP, never a fault that breaks the
server later.

Kinds:

- ``drop_after(frames, socket="chat")``: after ``frames`` more frames of the chat socket
  (``socket="rooms"``: of the group chats' socket), cut the connection
  abruptly (no close frame), as a dead network does.
- ``close_socket(code, after_frames=0, socket="chat")``: close that socket cleanly with
  ``code``
  (1000–4999, not the reserved 1004–1006 and 1015).
- ``drop_on_request()``: cut the connection when the next request frame arrives, before the
  server reads it (the message is lost on the way, as when a socket died silently).
- ``delay_frames(seconds, frames)``: hold each of the next ``frames`` socket frames back.
- ``malformed_frame()``: send a frame that is not JSON before the next real one.
- ``silence(seconds=None)``: the next chat-socket upgrade succeeds, but the emulator sends
  nothing on that socket (no replies, no keepalive answers, no errors) for ``seconds``
  after the upgrade, or until the faults are cleared when ``seconds`` is None. Requests
  are still carried out: only their answers are swallowed.
- ``http_status(status, retry_after=None, path_prefix="/")``: answer REST calls with the
  error ``status`` (400–599; ``Retry-After`` when given) instead of serving them.
- ``cloudflare(rest=True, websocket=True)``: answer like a Cloudflare block: HTTP 403 with an
  HTML challenge page and ``cf-ray``/``cf-mitigated`` headers, on REST calls and/or the
  socket upgrade.
- ``mutate_json(path_prefix, add=None, remove=None)``: simulated schema drift of the live
  site. REST answers whose path starts with ``path_prefix`` and whose body is a JSON object
  get keys added (``add={"user.user.new_flag": True}``: dotted paths into nested objects,
  made when missing) and removed (``remove=["user.user.is_staff"]``); ``times`` counts the
  answers changed (default: every one until the faults are cleared).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import msgspec
from aiohttp import web

__all__ = [
    "CLOUDFLARE_PAGE",
    "FAULTS",
    "SEND_NORMALLY",
    "Fault",
    "FaultAction",
    "Faults",
    "mutate",
    "register",
]

CLOUDFLARE_PAGE = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head>'
    "<body><noscript>Enable JavaScript and cookies to continue</noscript></body></html>"
)

_MAX_COUNT = 1 << 30
_MAX_SECONDS = 24 * 3600.0
_HEADER_TEXT = re.compile(r"[\x20-\x7e]{1,64}")
_KEY_PATH = re.compile(r"[^.\s]+(\.[^.\s]+)*")


@dataclass
class Fault:
    """One armed fault; ``times`` counts down, ``until`` is a monotonic deadline (or None)."""

    kind: str
    times: int = 1
    until: float | None = None
    frames: int = 0
    code: int = 1011
    seconds: float | None = 0.0
    status: int = 503
    retry_after: str | None = None
    path_prefix: str = "/"
    rest: bool = True
    websocket: bool = True
    add: dict[str, Any] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)
    socket: str = "chat"
    _seen: int = field(default=0, repr=False)

    def live(self, now: float) -> bool:
        return self.times > 0 and (self.until is None or now < self.until)


@dataclass(frozen=True)
class FaultAction:
    """What the chat socket must do with the frame it is about to send."""

    delay: float = 0.0
    malformed: bool = False
    drop: bool = False
    close_code: int | None = None


SEND_NORMALLY = FaultAction()


# ---- checks of a spec --------------------------------------------------------------------


def _count(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= _MAX_COUNT:
        raise ValueError(f"{name} must be an integer from {low} to {_MAX_COUNT}, got {value!r}")
    return value


def _seconds(name: str, value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
        if math.isfinite(seconds) and 0 <= seconds <= _MAX_SECONDS:
            return seconds
    raise ValueError(f"{name} must be a number of seconds from 0 to {_MAX_SECONDS:g}")


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def _status(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
        raise ValueError(f"status must be an HTTP error status from 400 to 599, got {value!r}")
    return value


def _close_code(value: object) -> int:
    reserved = (1004, 1005, 1006, 1015)  # never sent in a close frame (RFC 6455 §7.4.1)
    if isinstance(value, bool) or not isinstance(value, int) or value in reserved:
        raise ValueError(f"code must be a WebSocket close code a server may send, got {value!r}")
    if not 1000 <= value <= 4999:
        raise ValueError(f"code must be a WebSocket close code a server may send, got {value!r}")
    return value


def _prefix(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 512:
        raise ValueError(f"path_prefix must be a path starting with '/', got {value!r}")
    return value


def _retry_after_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not _HEADER_TEXT.fullmatch(value):
            raise ValueError("retry_after text must be 1-64 printable ASCII characters")
        return value
    seconds = _seconds("retry_after", value)
    return str(int(seconds)) if seconds.is_integer() else str(seconds)


def _key_paths(name: str, value: object) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(k, str) and _KEY_PATH.fullmatch(k) for k in value
    ):
        raise ValueError(f"{name} must be a list of dotted key paths such as 'user.user.name'")
    return list(value)


def _additions(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError("add must be an object of dotted key paths to JSON values")
    keys = _key_paths("add", list(value))
    try:
        msgspec.json.encode(dict(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"add must hold JSON values: {exc}") from None
    return {k: value[k] for k in keys}


# ---- the faults --------------------------------------------------------------------------


class Faults:
    """The set of armed faults of one emulator."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._faults: list[Fault] = []
        self._clock = clock
        self.epoch = 0
        """Bumped by :meth:`clear`; a socket silenced "until cleared" watches it."""

    # --- arming (Python API) ----------------------------------------------------------------

    def _arm(self, fault: Fault, seconds: float | None = None) -> Fault:
        fault.times = _count("times", fault.times, 1)
        if seconds is not None:
            fault.until = self._clock() + _seconds("seconds", seconds)
            fault.times = _MAX_COUNT  # bounded by time, not count
        self._faults.append(fault)
        return fault

    def drop_after(self, frames: int = 0, *, times: int = 1, socket: str = "chat") -> Fault:
        fault = Fault("drop_after", times=times, frames=_count("frames", frames, 0))
        fault.socket = _socket(socket)
        return self._arm(fault)

    def close_socket(
        self, code: int = 1011, *, after_frames: int = 0, times: int = 1, socket: str = "chat"
    ) -> Fault:
        frames = _count("after_frames", after_frames, 0)
        fault = Fault("close_socket", times=times, frames=frames, code=_close_code(code))
        fault.socket = _socket(socket)
        return self._arm(fault)

    def drop_on_request(self, *, times: int = 1) -> Fault:
        return self._arm(Fault("drop_on_request", times=times))

    def delay_frames(self, seconds: float, *, frames: int = 1) -> Fault:
        delay = _seconds("seconds", seconds)
        return self._arm(Fault("delay_frames", times=frames, seconds=delay))

    def malformed_frame(self, *, times: int = 1) -> Fault:
        return self._arm(Fault("malformed_frame", times=times))

    def silence(self, seconds: float | None = None, *, times: int = 1) -> Fault:
        quiet = None if seconds is None else _seconds("seconds", seconds)
        return self._arm(Fault("silence", times=times, seconds=quiet))

    def http_status(
        self,
        status: int,
        *,
        times: int = 1,
        seconds: float | None = None,
        retry_after: float | str | None = None,
        path_prefix: str = "/",
    ) -> Fault:
        fault = Fault(
            "http_status",
            times=times,
            status=_status(status),
            retry_after=_retry_after_text(retry_after),
            path_prefix=_prefix(path_prefix),
        )
        return self._arm(fault, seconds)

    def cloudflare(
        self,
        *,
        times: int = 1,
        seconds: float | None = None,
        rest: bool = True,
        websocket: bool = True,
    ) -> Fault:
        fault = Fault(
            "cloudflare",
            times=times,
            rest=_flag("rest", rest),
            websocket=_flag("websocket", websocket),
        )
        return self._arm(fault, seconds)

    def mutate_json(
        self,
        path_prefix: str,
        *,
        add: Mapping[str, Any] | None = None,
        remove: Sequence[str] | None = None,
        times: int | None = None,
        seconds: float | None = None,
    ) -> Fault:
        # Drift lasts: by default every matching answer changes until the faults are cleared.
        fault = Fault(
            "mutate_json",
            times=_MAX_COUNT if times is None else times,
            path_prefix=_prefix(path_prefix),
            add=_additions(add or {}),
            remove=_key_paths("remove", [] if remove is None else remove),
        )
        return self._arm(fault, seconds)

    def clear(self) -> None:
        self._faults.clear()
        self.epoch += 1

    @property
    def active(self) -> list[Fault]:
        now = self._clock()
        self._faults = [f for f in self._faults if f.live(now)]
        return list(self._faults)

    # --- consulting (server side) -----------------------------------------------------------

    def _take(self, match: Callable[[Fault], bool]) -> Fault | None:
        if not self._faults:
            return None
        for fault in self.active:
            if match(fault):
                fault.times -= 1
                return fault
        return None

    def on_socket_frame(self, socket: str = "chat") -> FaultAction:
        """Called before every frame of the chat socket (or, with ``socket="rooms"``, of the
        rooms socket); cheap when nothing is armed."""
        if not self._faults:
            return SEND_NORMALLY
        for fault in self.active:
            if fault.kind in ("drop_after", "close_socket") and fault.socket == socket:
                if fault._seen < fault.frames:
                    fault._seen += 1
                    continue
                fault.times -= 1
                fault._seen = 0
                if fault.kind == "drop_after":
                    return FaultAction(drop=True)
                return FaultAction(close_code=fault.code)
        if socket != "chat":
            return SEND_NORMALLY
        delayed = self._take(lambda f: f.kind == "delay_frames")
        malformed = self._take(lambda f: f.kind == "malformed_frame")
        if delayed is None and malformed is None:
            return SEND_NORMALLY
        return FaultAction(
            delay=(delayed.seconds or 0.0) if delayed else 0.0, malformed=malformed is not None
        )

    def on_request(self) -> bool:
        """Called for every frame a client sends; True means: drop the connection unread."""
        return self._take(lambda f: f.kind == "drop_on_request") is not None

    def on_upgrade(self) -> web.Response | None:
        """A refusal for the socket upgrade, or None to accept it."""
        if self._take(lambda f: f.kind == "cloudflare" and f.websocket) is not None:
            return _cloudflare_response()
        return None

    def on_chat_socket(self) -> Fault | None:
        """The silence fault the chat socket just accepted must keep, if one is armed."""
        return self._take(lambda f: f.kind == "silence")

    def on_rest(self, path: str) -> web.Response | None:
        """A canned answer for a REST call, or None to serve it normally."""
        if not self._faults or path.startswith("/__emulator__/"):
            return None
        if self._take(lambda f: f.kind == "cloudflare" and f.rest) is not None:
            return _cloudflare_response()
        fault = self._take(lambda f: f.kind == "http_status" and path.startswith(f.path_prefix))
        if fault is None:
            return None
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        body = msgspec.json.encode({"detail": f"Injected fault: HTTP {fault.status}."})
        return web.Response(
            status=fault.status, body=body, content_type="application/json", headers=headers
        )

    def mutation_for(self, path: str) -> Fault | None:
        """The armed ``mutate_json`` fault for answers of ``path``, without taking it."""
        if not self._faults or path.startswith("/__emulator__/"):
            return None
        return next(
            (f for f in self.active if f.kind == "mutate_json" and path.startswith(f.path_prefix)),
            None,
        )


def mutate(body: dict[str, Any], fault: Fault) -> None:
    """Apply a ``mutate_json`` fault's additions and removals to a decoded JSON object."""
    for path, value in fault.add.items():
        *parents, last = path.split(".")
        node = body
        for key in parents:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[last] = value
    for path in fault.remove:
        *parents, last = path.split(".")
        node = body
        for key in parents:
            child = node.get(key)
            if not isinstance(child, dict):
                break
            node = child
        else:
            node.pop(last, None)


def _socket(name: object) -> str:
    if name not in ("chat", "rooms"):
        raise ValueError(f"socket must be 'chat' or 'rooms', got {name!r}")
    return str(name)


def _cloudflare_response() -> web.Response:
    headers = {
        "cf-ray": "8f00dead0000beef-FRA",
        "cf-mitigated": "challenge",
        "server": "cloudflare",
    }
    return web.Response(status=403, text=CLOUDFLARE_PAGE, content_type="text/html", headers=headers)


# --- wiring into the app ------------------------------------------------------------------

FAULTS = web.AppKey("caiclient_emulator_faults", Faults)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_ARMERS: dict[str, Callable[..., Fault]] = {
    "drop_after": Faults.drop_after,
    "close_socket": Faults.close_socket,
    "delay_frames": Faults.delay_frames,
    "drop_on_request": Faults.drop_on_request,
    "malformed_frame": Faults.malformed_frame,
    "silence": Faults.silence,
    "http_status": Faults.http_status,
    "cloudflare": Faults.cloudflare,
    "mutate_json": Faults.mutate_json,
}


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serve an armed REST fault instead of the handler (the socket route checks its own),
    and change the JSON answer when a ``mutate_json`` fault asks for it."""
    faults = request.app[FAULTS]
    if request.path.rstrip("/") != "/neo/ws":
        canned = faults.on_rest(request.path)
        if canned is not None:
            return canned
    response = await handler(request)
    fault = faults.mutation_for(request.path)
    if fault is not None and isinstance(response, web.Response):
        _mutate_response(response, fault)
    return response


def _mutate_response(response: web.Response, fault: Fault) -> None:
    if response.content_type != "application/json" or not isinstance(response.body, bytes):
        return
    try:
        body = msgspec.json.decode(response.body)
    except (msgspec.DecodeError, RecursionError):
        return
    if isinstance(body, dict):
        fault.times -= 1
        mutate(body, fault)
        response.body = msgspec.json.encode(body)


def _describe(fault: Fault) -> dict[str, Any]:
    return {k: v for k, v in asdict(fault).items() if not k.startswith("_")}


async def _list(request: web.Request) -> web.Response:
    return web.json_response({"faults": [_describe(f) for f in request.app[FAULTS].active]})


async def _add(request: web.Request) -> web.Response:
    try:
        spec = msgspec.json.decode(await request.read())
    except (msgspec.DecodeError, RecursionError):
        return web.json_response({"detail": "a fault spec must be a JSON object"}, status=400)
    if not isinstance(spec, dict) or spec.get("kind") not in _ARMERS:
        kinds = ", ".join(sorted(_ARMERS))
        return web.json_response({"detail": f"kind must be one of: {kinds}"}, status=400)
    kind = spec.pop("kind")
    try:
        fault = _ARMERS[kind](request.app[FAULTS], **spec)
    except (TypeError, ValueError) as exc:
        return web.json_response({"detail": f"bad {kind} fault: {exc}"}, status=400)
    return web.json_response({"fault": _describe(fault)}, status=201)


async def _clear(request: web.Request) -> web.Response:
    request.app[FAULTS].clear()
    return web.json_response({"faults": []})


def register(app: web.Application, faults: Faults) -> None:
    app[FAULTS] = faults
    app.router.add_get("/__emulator__/faults", _list)
    app.router.add_post("/__emulator__/faults", _add)
    app.router.add_delete("/__emulator__/faults", _clear)
