"""Who may talk to the emulator: the Host allowlist and the control plane's token.

- **Host allowlist** (DNS rebinding): while the emulator listens on a loopback address,
  only requests whose ``Host`` names ``127.0.0.1``, ``localhost`` or ``[::1]`` (any port)
  are served; any other ``Host`` gets 421 with a JSON error, so a web page whose domain
  resolves to 127.0.0.1 cannot reach it from a browser. On a non-loopback address the
  check is off (the host was exposed on purpose) and starting logs a warning.
- **Control plane**: every ``/__emulator__/…`` route (faults, mailbox, guest limit, …)
  needs the control token in ``X-Emulator-Control`` (``emu.control_token``; ``cai
  emulator`` prints it), and a request with a body must be ``Content-Type:
  application/json``. A cross-site form or ``text/plain`` POST can therefore never arm a
  fault or read a mail. The mail click tracker (``/__emulator__/click/<id>``) is part of
  a mail, not of the control plane: its id is random and only the mailbox shows it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from ._http import json_response

__all__ = [
    "CONTROL",
    "CONTROL_HEADER",
    "LOOPBACK_HOSTS",
    "ControlPlane",
    "guard_middleware",
    "is_loopback",
]

log = logging.getLogger("caiclient.emulator")

CONTROL_HEADER = "X-Emulator-Control"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
"""Host names served while the emulator listens on loopback."""
_CONTROL_PREFIX = "/__emulator__/"
_OPEN_CONTROL = ("/__emulator__/click/",)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the emulator on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The host of a ``Host`` header value, without port or IPv6 brackets."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


@dataclass(frozen=True, slots=True)
class ControlPlane:
    """The emulator's control token, and whether it listens on loopback only."""

    token: str
    loopback: bool

    def misdirected(self, request: web.Request) -> web.Response | None:
        """421 for a ``Host`` the emulator does not serve (only checked on loopback)."""
        if not self.loopback:
            return None
        host = request.headers.get("Host", "")
        if _host_name(host) in LOOPBACK_HOSTS:
            return None
        detail = (
            f"this emulator serves only Host 127.0.0.1, localhost or [::1], not {host!r} "
            "(DNS rebinding protection)"
        )
        return json_response({"detail": detail}, 421)

    def refusal(self, request: web.Request) -> web.Response | None:
        """Why a control-plane request is refused, or None when it may go on."""
        given = request.headers.get(CONTROL_HEADER)
        if given is None:
            detail = f"the emulator's control routes need its control token in {CONTROL_HEADER}"
            return json_response({"detail": detail}, 401)
        if not hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode()):
            return json_response({"detail": f"wrong {CONTROL_HEADER} token"}, 403)
        if request.body_exists and request.content_type != "application/json":
            detail = "control requests with a body must be Content-Type: application/json"
            return json_response({"detail": detail}, 415)
        return None


CONTROL = web.AppKey("caiclient_emulator_control", ControlPlane)


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The outermost check of every request: the Host allowlist, then the control token."""
    plane = request.app[CONTROL]
    refused = plane.misdirected(request)
    path = request.path
    if refused is None and path.startswith(_CONTROL_PREFIX) and not path.startswith(_OPEN_CONTROL):
        refused = plane.refusal(request)
    if refused is not None:
        return refused
    return await handler(request)
