"""What every API namespace of a client shares: the HTTP session, the chat socket, the user."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._neo_socket import NeoSocket
from ._transport import HandshakeRefused, HttpTransport, WebSocket
from .endpoints import Endpoints
from .errors import AuthError, BlockedError, CaiError, NotFound, TransportError, ValidationError
from .models import User
from .protocol import account, http
from .protocol.retry import Backoff, RetryPolicy, http_retry_delay

__all__ = ["TOKEN_ENV", "ClientCore", "ClientStats", "mask", "normalise_token"]

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


@dataclass
class ClientStats:
    """What the client did to keep working; read it as ``client.stats``."""

    reconnects: int = 0
    recovered_replies: int = 0
    resent_messages: int = 0
    http_retries: int = 0


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
        retry: RetryPolicy | None = None,
        reconnect: Backoff | None = None,
        idle_timeout: float = 30.0,
        rate_limit_wait: float = 0.0,
        first_chunk_timeout: float | None = None,
    ) -> None:
        self.token = token
        self.first_chunk_timeout = first_chunk_timeout
        self.rate_limit_wait = rate_limit_wait
        self.retry = retry or RetryPolicy()
        self.stats = ClientStats()
        self.endpoints = endpoints
        self.timeout = timeout
        self._impersonate = impersonate
        self._proxy = proxy
        self._transport = transport
        self._headers = {"Authorization": f"Token {token}"}
        self._user: User | None = None
        self._user_lock: asyncio.Lock | None = None
        self.socket = NeoSocket(
            self._connect_ws,
            backoff=reconnect,
            idle_timeout=idle_timeout,
            connect_timeout=timeout,
        )

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
        """Send a REST request; return the body of a 2xx answer or raise the typed error.

        Failures the retry policy calls transient (connection errors, 429, 502–504; for
        non-idempotent requests only 429) are retried with backoff within ``timeout``, which
        bounds the whole call.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        delays = self.retry.backoff.delays()
        while True:
            remaining = deadline - loop.time()
            try:
                response = await self.transport.request(
                    request, headers=self._headers, timeout=max(remaining, 0.001)
                )
            except TransportError as exc:
                error: CaiError = exc
            else:
                found = http.error_for(response, not_found=not_found)
                if found is None:
                    return response.body
                error = found
            planned = next(delays, None)
            wait = None
            if planned is not None:
                wait = http_retry_delay(
                    error,
                    idempotent=request.is_idempotent,
                    planned=planned,
                    max_retry_after=self.retry.max_retry_after,
                )
            if wait is None or loop.time() + wait >= deadline:
                raise error
            self.stats.http_retries += 1
            log.info(
                "%s %s failed (%s); retrying in %.2f s", request.method, request.url, error, wait
            )
            await asyncio.sleep(wait)

    async def stream(
        self,
        request: http.Request,
        *,
        timeout: float | None = None,
        not_found: type[NotFound] = NotFound,
    ) -> AsyncGenerator[bytes, None]:
        """Send a REST request and yield the body of a 2xx answer as it arrives.

        A non-2xx answer raises the same typed errors as :meth:`call` (before anything is
        yielded). ``timeout`` bounds the whole body. Never retried: the request may have
        had effects by the time it fails.
        """
        async with self.transport.stream(
            request, headers=self._headers, timeout=self.timeout if timeout is None else timeout
        ) as response:
            if not 200 <= response.status < 300:
                body = await response.read()
                error = http.error_for(
                    http.Response(response.status, response.headers, body), not_found=not_found
                )
                if error is not None:
                    raise error
            async for chunk in response.chunks:
                yield chunk

    async def fetch(self, url: str, *, timeout: float | None = None) -> bytes:
        """GET an absolute URL (a CDN image, TTS audio) with this session; return the body of
        a 2xx or raise the typed error.

        The token is sent only to the service's own API hosts (``beta``, ``plus``, ``neo``,
        ``web`` of :attr:`endpoints`), never to storage or CDN hosts. Not retried.
        """
        ends = self.endpoints
        own = {urlsplit(base)[:2] for base in (ends.beta, ends.plus, ends.neo, ends.web)}
        headers = self._headers if urlsplit(url)[:2] in own else {}
        response = await self.transport.request(
            http.Request("GET", url),
            headers=headers,
            timeout=self.timeout if timeout is None else timeout,
        )
        error = http.error_for(response)
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

    @property
    def closed(self) -> bool:
        return self.socket.closed

    async def aclose(self) -> None:
        await self.socket.aclose()
        if self._transport is not None:
            await self._transport.aclose()
