"""Where each part of the service lives: the live hosts, or one local origin (the emulator)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import ValidationError

__all__ = ["BASE_URL_ENV", "Endpoints"]

BASE_URL_ENV = "CAI_BASE_URL"
"""Environment variable that, when set, points every client at one local origin."""


@dataclass(frozen=True)
class Endpoints:
    """Base URLs of every host the client talks to, without trailing slashes.

    ``beta``/``plus`` serve the legacy Django API, ``neo`` the chat V2 REST API and
    ``neo_ws`` its WebSocket, ``web`` the character.ai front end (tRPC, login polling),
    ``identitytoolkit`` Firebase auth, ``cdn`` the image CDN (``characterai.io``).
    """

    beta: str
    plus: str
    neo: str
    neo_ws: str
    web: str
    identitytoolkit: str
    cdn: str

    @classmethod
    def live(cls) -> Endpoints:
        """The real Character.AI hosts."""
        return cls(
            beta="https://beta.character.ai",
            plus="https://plus.character.ai",
            neo="https://neo.character.ai",
            neo_ws="wss://neo.character.ai/ws/",
            web="https://character.ai",
            identitytoolkit="https://identitytoolkit.googleapis.com",
            cdn="https://characterai.io",
        )

    @classmethod
    def local(cls, origin: str) -> Endpoints:
        """Every host under a path prefix of one origin, as the emulator serves them.

        ``Endpoints.local("http://127.0.0.1:8765")`` maps ``https://neo.character.ai/x`` to
        ``http://127.0.0.1:8765/neo/x`` and the socket to ``ws://127.0.0.1:8765/neo/ws/``.
        """
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError(f"origin must look like http://host:port, got {origin!r}")
        base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        ws_scheme = "wss" if parts.scheme == "https" else "ws"
        return cls(
            beta=f"{base}/beta",
            plus=f"{base}/plus",
            neo=f"{base}/neo",
            neo_ws=f"{ws_scheme}://{parts.netloc}{parts.path.rstrip('/')}/neo/ws/",
            web=f"{base}/web",
            identitytoolkit=f"{base}/identitytoolkit",
            cdn=f"{base}/cdn",
        )

    @classmethod
    def from_env(cls) -> Endpoints:
        """``local($CAI_BASE_URL)`` when that variable is set, else :meth:`live`."""
        origin = os.environ.get(BASE_URL_ENV, "").strip()
        return cls.local(origin) if origin else cls.live()

    @property
    def rooms_ws(self) -> str:
        """The group chats' Centrifugo socket, beside the chat socket on the neo host (§9)."""
        return self.neo_ws.removesuffix("/ws/").removesuffix("/ws") + "/connection/websocket"

    @property
    def is_live(self) -> bool:
        return self.neo == "https://neo.character.ai"
