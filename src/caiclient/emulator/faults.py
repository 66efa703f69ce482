"""Fault injection: make the emulator misbehave on purpose, for a while, then heal.

Every fault is scoped: it applies to the next ``times`` occurrences (or for ``seconds``)
and then clears itself. Faults are armed from Python (``emu.faults.drop_after(3)``) or
over HTTP (``POST /__emulator__/faults`` with ``{"kind": "drop_after", "frames": 3}``);
``GET`` lists the active ones and ``DELETE`` clears them all.

Kinds:

- ``drop_after(frames)``: after ``frames`` more chat-socket frames, cut the connection
  abruptly (no close frame), as a dead network does.
- ``close_socket(code, after_frames=0)``: close the chat socket cleanly with ``code``.
- ``drop_on_request()``: cut the connection when the next request frame arrives, before the
  server reads it (the message is lost on the way, as when a socket died silently).
- ``delay_frames(seconds, frames)``: hold each of the next ``frames`` socket frames back.
- ``malformed_frame()``: send a frame that is not JSON before the next real one.
- ``http_status(status, retry_after=None, path_prefix="/")``: answer REST calls with
  ``status`` (and ``Retry-After`` when given) instead of serving them.
- ``cloudflare(rest=True, websocket=True)``: answer like a Cloudflare block: HTTP 403 with an
  HTML challenge page and ``cf-ray``/``cf-mitigated`` headers, on REST calls and/or the
  socket upgrade.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
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
    "register",
]

CLOUDFLARE_PAGE = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head>'
    "<body><noscript>Enable JavaScript and cookies to continue</noscript></body></html>"
)


@dataclass
class Fault:
    """One armed fault; ``times`` counts down, ``until`` is a monotonic deadline (or None)."""

    kind: str
    times: int = 1
    until: float | None = None
    frames: int = 0
    code: int = 1011
    seconds: float = 0.0
    status: int = 503
    retry_after: str | None = None
    path_prefix: str = "/"
    rest: bool = True
    websocket: bool = True
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


class Faults:
    """The set of armed faults of one emulator."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._faults: list[Fault] = []
        self._clock = clock

    # --- arming (Python API) ----------------------------------------------------------------

    def _arm(self, fault: Fault, seconds: float | None) -> Fault:
        if fault.times < 1:
            raise ValueError("times must be >= 1")
        if seconds is not None:
            fault.until = self._clock() + seconds
        self._faults.append(fault)
        return fault

    def drop_after(self, frames: int = 0, *, times: int = 1) -> Fault:
        return self._arm(Fault("drop_after", times=times, frames=_nonneg(frames)), None)

    def close_socket(self, code: int = 1011, *, after_frames: int = 0, times: int = 1) -> Fault:
        fault = Fault("close_socket", times=times, frames=_nonneg(after_frames), code=code)
        return self._arm(fault, None)

    def drop_on_request(self, *, times: int = 1) -> Fault:
        return self._arm(Fault("drop_on_request", times=times), None)

    def delay_frames(self, seconds: float, *, frames: int = 1) -> Fault:
        return self._arm(Fault("delay_frames", times=frames, seconds=seconds), None)

    def malformed_frame(self, *, times: int = 1) -> Fault:
        return self._arm(Fault("malformed_frame", times=times), None)

    def http_status(
        self,
        status: int,
        *,
        times: int = 1,
        seconds: float | None = None,
        retry_after: float | str | None = None,
        path_prefix: str = "/",
    ) -> Fault:
        after = None if retry_after is None else _retry_after_text(retry_after)
        fault = Fault(
            "http_status", times=times, status=status, retry_after=after, path_prefix=path_prefix
        )
        if seconds is not None:
            fault.times = 1 << 30  # bounded by time, not count
        return self._arm(fault, seconds)

    def cloudflare(
        self,
        *,
        times: int = 1,
        seconds: float | None = None,
        rest: bool = True,
        websocket: bool = True,
    ) -> Fault:
        fault = Fault("cloudflare", times=times, rest=rest, websocket=websocket)
        if seconds is not None:
            fault.times = 1 << 30
        return self._arm(fault, seconds)

    def clear(self) -> None:
        self._faults.clear()

    @property
    def active(self) -> list[Fault]:
        now = self._clock()
        self._faults = [f for f in self._faults if f.live(now)]
        return list(self._faults)

    # --- consulting (server side) -----------------------------------------------------------

    def _take(self, match: Callable[[Fault], bool]) -> Fault | None:
        for fault in self.active:
            if match(fault):
                fault.times -= 1
                return fault
        return None

    def on_socket_frame(self) -> FaultAction:
        """Called before every chat-socket frame; cheap when nothing is armed."""
        if not self._faults:
            return SEND_NORMALLY
        for fault in self.active:
            if fault.kind in ("drop_after", "close_socket"):
                if fault._seen < fault.frames:
                    fault._seen += 1
                    continue
                fault.times -= 1
                fault._seen = 0
                if fault.kind == "drop_after":
                    return FaultAction(drop=True)
                return FaultAction(close_code=fault.code)
        delayed = self._take(lambda f: f.kind == "delay_frames")
        malformed = self._take(lambda f: f.kind == "malformed_frame")
        if delayed is None and malformed is None:
            return SEND_NORMALLY
        return FaultAction(
            delay=delayed.seconds if delayed else 0.0, malformed=malformed is not None
        )

    def on_request(self) -> bool:
        """Called for every frame a client sends; True means: drop the connection unread."""
        if not self._faults:
            return False
        return self._take(lambda f: f.kind == "drop_on_request") is not None

    def on_upgrade(self) -> web.Response | None:
        """A refusal for the socket upgrade, or None to accept it."""
        if self._take(lambda f: f.kind == "cloudflare" and f.websocket) is not None:
            return _cloudflare_response()
        return None

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


def _nonneg(value: int) -> int:
    if value < 0:
        raise ValueError("frame counts must be >= 0")
    return value


def _retry_after_text(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


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
    "http_status": Faults.http_status,
    "cloudflare": Faults.cloudflare,
}


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serve an armed REST fault instead of the handler (the socket route checks its own)."""
    if request.path.rstrip("/") != "/neo/ws":
        canned = request.app[FAULTS].on_rest(request.path)
        if canned is not None:
            return canned
    return await handler(request)


def _describe(fault: Fault) -> dict[str, Any]:
    return {k: v for k, v in asdict(fault).items() if not k.startswith("_")}


async def _list(request: web.Request) -> web.Response:
    return web.json_response({"faults": [_describe(f) for f in request.app[FAULTS].active]})


async def _add(request: web.Request) -> web.Response:
    spec = msgspec.json.decode(await request.read())
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
