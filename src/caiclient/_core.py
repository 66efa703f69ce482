"""What every API namespace of a client shares: the HTTP session, the chat socket, the user."""

from __future__ import annotations

import asyncio
import logging
import os

from ._neo_socket import NeoSocket
from ._transport import HandshakeRefused, HttpTransport, WebSocket
from .endpoints import Endpoints
from .errors import AuthError, BlockedError, NotFound, ValidationError
from .models import User
from .protocol import account, http

__all__ = ["TOKEN_ENV", "ClientCore", "mask", "normalise_token"]

log = logging.getLogger("caiclient")

TOKEN_ENV = "CAI_TOKEN"


def normalise_token(token: str | None) -> str:
    """The bare token: from the argument or ``$CAI_TOKEN``, without a leading ``Token ``."""
    if token is None:
        token = os.environ.get(TOKEN_ENV)
    if token is None:
        raise ValidationError(f"no token: pass token=... or set ${TOKEN_ENV}")
    if not isinstance(token, str):
        raise ValidationError(f"token must be a str, got {type(token).__name__}")
    token = token.strip()
    if token[:6].lower() == "token ":
        token = token[6:].strip()
    if not token or any(c.isspace() or c in '";,' for c in token):
        raise ValidationError("token is empty or contains spaces, quotes, commas or semicolons")
    return token


def mask(token: str) -> str:
    """A token shown safely: its first 4 characters only."""
    return f"{token[:4]}…" if len(token) > 8 else "…"


class ClientCore:
    """Shared state of one client; the namespaces (``client.chats`` …) hold a reference."""

    def __init__(
        self,
        token: str,
        endpoints: Endpoints,
        *,
        timeout: float,
        impersonate: str | None,
        proxy: str | None,
        transport: HttpTransport | None = None,
    ) -> None:
        self.token = token
        self.endpoints = endpoints
        self.timeout = timeout
        self._impersonate = impersonate
        self._proxy = proxy
        self._transport = transport
        self._headers = {"Authorization": f"Token {token}"}
        self._user: User | None = None
        self._user_lock: asyncio.Lock | None = None
        self.socket = NeoSocket(self._connect_ws)

    @property
    def transport(self) -> HttpTransport:
        if self._transport is None:
            # Imported here: curl_cffi costs ~70 ms of import time that `import caiclient`
            # should not pay.
            from ._transport.curl import CurlTransport

            self._transport = CurlTransport(impersonate=self._impersonate, proxy=self._proxy)
        return self._transport

    def deadline(self, timeout: float | None) -> float:
        """Loop time by which a call with this ``timeout`` (or the client default) must end."""
        return asyncio.get_running_loop().time() + (self.timeout if timeout is None else timeout)

    async def call(
        self,
        request: http.Request,
        *,
        timeout: float | None = None,
        not_found: type[NotFound] = NotFound,
    ) -> bytes:
        """Send a REST request; return the body of a 2xx answer or raise the typed error."""
        response = await self.transport.request(
            request,
            headers=self._headers,
            timeout=self.timeout if timeout is None else timeout,
        )
        error = http.error_for(response, not_found=not_found)
        if error is not None:
            raise error
        return response.body

    async def user(self, *, timeout: float | None = None, refresh: bool = False) -> User:
        """The token's account, fetched once and cached (its id is the WS ``creator_id``)."""
        if self._user is not None and not refresh:
            return self._user
        if self._user_lock is None:
            self._user_lock = asyncio.Lock()
        async with self._user_lock:
            if self._user is None or refresh:
                body = await self.call(account.me(self.endpoints), timeout=timeout)
                self._user = account.parse_user(body)
        return self._user

    async def _connect_ws(self) -> WebSocket:
        # Both forms of auth the service accepts on the upgrade (PROTOCOL.md §1.2).
        headers = {"Cookie": f'HTTP_AUTHORIZATION="Token {self.token}"; edge_rollout=60'}
        try:
            return await self.transport.ws_connect(
                self.endpoints.neo_ws, headers=headers, timeout=self.timeout
            )
        except HandshakeRefused as exc:
            raise await self._explain_refusal(exc) from None

    async def _explain_refusal(self, exc: HandshakeRefused) -> Exception:
        """A refused upgrade is a bad token or an anti-bot block; REST tells which."""
        if exc.status == 401:
            return AuthError("the token was refused by the chat socket (HTTP 401)")
        if exc.status != 403:
            return exc
        await self.user(
            refresh=True
        )  # Raises AuthError (bad token) or BlockedError (REST blocked too).
        return BlockedError(
            "the chat socket refused the upgrade (HTTP 403) although the token is valid",
            status=403,
        )

    async def aclose(self) -> None:
        await self.socket.aclose()
        if self._transport is not None:
            await self._transport.aclose()
