"""What every API namespace of a client shares: the HTTP session, the chat socket, the user."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
from collections.abc import AsyncGenerator, Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import msgspec

from ._config import ClientOptions
from ._deadline import Deadline
from ._neo_socket import NeoSocket
from ._transport import HandshakeRefused, HttpTransport, WebSocket, task_cancelling
from ._validate import check_timeout
from .endpoints import Endpoints
from .errors import (
    AuthError,
    BlockedError,
    CaiError,
    ClientClosed,
    NotFound,
    Timeout,
    TransportError,
    UsageError,
    ValidationError,
)
from .models import User
from .protocol import account, http
from .protocol.retry import http_retry_delay

if TYPE_CHECKING:
    from ._rooms_socket import RoomSocket

__all__ = [
    "TOKEN_ENV",
    "ClientCore",
    "ClientStats",
    "RawBody",
    "capture_raw",
    "mask",
    "normalise_token",
]

log = logging.getLogger("caiclient")

TOKEN_ENV = "CAI_TOKEN"

# The REST bodies received by the current task, while someone captures them (capture_raw).
_CAPTURED: contextvars.ContextVar[list[RawBody] | None] = contextvars.ContextVar(
    "caiclient_captured", default=None
)


class RawBody(msgspec.Struct, frozen=True):
    """One REST answer exactly as the service sent it: the request's method and URL, and
    the body's bytes (the models keep only the fields they know)."""

    method: str
    url: str
    body: bytes


@contextlib.contextmanager
def capture_raw() -> Iterator[list[RawBody]]:
    """Collect the body of every successful REST answer the calls made inside the block
    receive, in order. Per task: concurrent tasks capturing at once each see their own."""
    captured: list[RawBody] = []
    token = _CAPTURED.set(captured)
    try:
        yield captured
    finally:
        _CAPTURED.reset(token)


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
    # The token goes into a header and a cookie: printable ASCII only, no separators. The
    # message never repeats the token.
    if not token or not token.isascii() or any(not c.isprintable() or c in ' ";,' for c in token):
        raise ValidationError(
            "the token is empty or contains spaces, quotes, commas, semicolons, control or "
            "non-ASCII characters; it should be the 40 hex characters of the Authorization "
            "header"
        )
    return token


def mask(token: str) -> str:
    """A token shown safely: its first 4 characters only."""
    return f"{token[:4]}…" if len(token) > 8 else "…"


class ClientStats(msgspec.Struct, frozen=True):
    """What the client did to keep working; read it as ``client.stats`` (a snapshot)."""

    reconnects: int = 0
    recovered_replies: int = 0
    resent_messages: int = 0
    http_retries: int = 0
    aborted_generations: int = 0


class ClientCore:
    """Shared state of one client; the namespaces (``client.chats`` …) hold a reference."""

    def __init__(
        self,
        token: str,
        endpoints: Endpoints,
        options: ClientOptions,
        transport: HttpTransport | None = None,
    ) -> None:
        self.token = token
        self.endpoints = endpoints
        self.options = options
        self.counts: dict[str, int] = dict.fromkeys(ClientStats.__struct_fields__, 0)
        self._transport = transport
        self._headers = {"Authorization": f"Token {token}"}
        self._user: User | None = None
        self._user_task: asyncio.Task[User] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.socket = NeoSocket(self._connect_ws, options)
        self._rooms_socket: RoomSocket | None = None

    @property
    def rooms_socket(self) -> RoomSocket:
        """The group chats' socket, made on first use (most clients never open it)."""
        if self._rooms_socket is None:
            # Imported here: only clients of group chats pay for the Centrifugo code.
            from ._rooms_socket import RoomSocket

            self._rooms_socket = RoomSocket(self._connect_rooms_ws, self.options)
        return self._rooms_socket

    @property
    def stats(self) -> ClientStats:
        counts = dict(self.counts, reconnects=max(0, self.socket.connects - 1))
        return ClientStats(**counts)

    @property
    def transport(self) -> HttpTransport:
        if self._transport is None:
            # Imported here: curl_cffi costs ~70 ms of import time that `import caiclient`
            # should not pay.
            from ._transport.curl import CurlTransport

            options = self.options
            self._transport = CurlTransport(impersonate=options.impersonate, proxy=options.proxy)
        return self._transport

    def deadline(self, timeout: object = None) -> Deadline:
        """The deadline of a call given ``timeout`` (None: the client default), checked once
        here, before any I/O; also where a closed client or a foreign loop is refused."""
        seconds = check_timeout(timeout)
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                raise UsageError(
                    "this client was first used on another event loop; make one client per "
                    "event loop (the sync Client runs its own)"
                )
            self._loop = loop
        if self.socket.closed:
            raise ClientClosed("the client is closed; create a new one")
        return Deadline(loop.time() + (self.options.timeout if seconds is None else seconds), loop)

    async def call(
        self,
        request: http.Request,
        *,
        timeout: object = None,
        deadline: Deadline | None = None,
        not_found: type[NotFound] = NotFound,
    ) -> bytes:
        """Send a REST request; return the body of a 2xx answer or raise the typed error.

        Failures the retry policy calls transient (connection errors, 429, 502–504; for
        non-idempotent requests only 429) are retried with backoff until ``deadline``
        (default: ``timeout`` from now), which bounds the whole call.
        """
        if deadline is None:
            deadline = self.deadline(timeout)
        delays = self.options.retry.backoff.delays()
        while True:
            try:
                response = await self.transport.request(
                    request, headers=self._headers, timeout=deadline.left(request.url)
                )
            except TransportError as exc:
                error: CaiError = exc
            else:
                found = http.error_for(response, not_found=not_found)
                if found is None:
                    captured = _CAPTURED.get()
                    if captured is not None:
                        captured.append(RawBody(request.method, request.url, response.body))
                    return response.body
                error = found
            wait = self._retry_delay(request, error, next(delays, None))
            if wait is None or wait >= deadline.remaining():
                raise error
            self.counts["http_retries"] += 1
            log.info(
                "%s %s failed (%s); retrying in %.2f s", request.method, request.url, error, wait
            )
            await asyncio.sleep(wait)

    def _retry_delay(
        self, request: http.Request, error: CaiError, planned: float | None
    ) -> float | None:
        if planned is None:
            return None
        return http_retry_delay(
            error,
            idempotent=request.is_idempotent,
            planned=planned,
            max_retry_after=self.options.retry.max_retry_after,
        )

    async def stream(
        self,
        request: http.Request,
        *,
        deadline: Deadline,
        not_found: type[NotFound] = NotFound,
    ) -> AsyncGenerator[bytes, None]:
        """Send a REST request and yield the body of a 2xx answer as it arrives.

        A non-2xx answer raises the same typed errors as :meth:`call` (before anything is
        yielded). ``deadline`` bounds the whole body. Never retried: the request may have
        had effects by the time it fails.
        """
        async with self.transport.stream(
            request, headers=self._headers, timeout=deadline.left(request.url)
        ) as response:
            if not 200 <= response.status < 300:
                body = await response.read()
                answer = http.Response(
                    response.status, response.headers, body, response.received_at
                )
                error = http.error_for(answer, not_found=not_found)
                if error is not None:
                    raise error
            async for chunk in response.chunks:
                yield chunk

    async def fetch(self, url: str, *, timeout: object = None) -> bytes:
        """GET an absolute URL (a CDN image, TTS audio) with this session; return the body of
        a 2xx or raise the typed error.

        The token is sent only to the service's own API hosts (``beta``, ``plus``, ``neo``,
        ``web`` of :attr:`endpoints`), never to storage or CDN hosts. Not retried.
        """
        deadline = self.deadline(timeout)
        ends = self.endpoints
        own = {urlsplit(base)[:2] for base in (ends.beta, ends.plus, ends.neo, ends.web)}
        headers = self._headers if urlsplit(url)[:2] in own else {}
        response = await self.transport.request(
            http.Request("GET", url), headers=headers, timeout=deadline.left(url)
        )
        error = http.error_for(response)
        if error is not None:
            raise error
        return response.body

    @property
    def cached_user(self) -> User | None:
        """The token's account if it was already looked up (no I/O)."""
        return self._user

    async def user(self, deadline: Deadline, *, refresh: bool = False) -> User:
        """The token's account, fetched once and cached (its id is the WS ``creator_id``).

        Concurrent callers share one lookup; each waits for it only until its own deadline.
        """
        if self._user is not None and not refresh:
            return self._user
        task = self._user_task
        if task is None or task.done():
            task = asyncio.create_task(self._fetch_user(deadline), name="caiclient-user")
            task.add_done_callback(_retrieve)
            self._user_task = task
        try:
            return await asyncio.wait_for(asyncio.shield(task), deadline.left("the account lookup"))
        except (asyncio.TimeoutError, TimeoutError):
            raise Timeout("the account lookup did not finish in time") from None
        except asyncio.CancelledError:
            if task.cancelled() and not task_cancelling():  # aclose() stopped the lookup
                raise ClientClosed("the client was closed during the account lookup") from None
            raise

    async def _fetch_user(self, deadline: Deadline) -> User:
        body = await self.call(account.me(self.endpoints), deadline=deadline)
        self._user = account.parse_user(body)
        return self._user

    async def _connect_ws(self, url: str | None = None) -> WebSocket:
        # Both forms of auth the service accepts on the upgrade (docs/protocol.md §1.2).
        headers = {"Cookie": f'HTTP_AUTHORIZATION="Token {self.token}"; edge_rollout=60'}
        try:
            return await self.transport.ws_connect(
                url or self.endpoints.neo_ws, headers=headers, timeout=self.options.timeout
            )
        except HandshakeRefused as exc:
            raise await self._explain_refusal(exc) from None

    async def _connect_rooms_ws(self) -> WebSocket:
        return await self._connect_ws(self.endpoints.rooms_ws)

    async def _explain_refusal(self, exc: HandshakeRefused) -> CaiError:
        """A refused upgrade is a bad token or an anti-bot block; REST tells which."""
        if exc.status == 401:
            return AuthError("the token was refused by the chat socket (HTTP 401)")
        if exc.status != 403:
            return exc
        # Raises AuthError (bad token) or BlockedError (REST blocked too).
        await self.user(Deadline.after(self.options.timeout), refresh=True)
        return BlockedError(
            "the chat socket refused the upgrade (HTTP 403) although the token is valid",
            status=403,
        )

    @property
    def closed(self) -> bool:
        return self.socket.closed

    async def aclose(self) -> None:
        task = self._user_task
        if task is not None and not task.done():
            task.cancel()
        await self.socket.aclose()
        if self._rooms_socket is not None:
            await self._rooms_socket.aclose()
        if self._transport is not None:
            await self._transport.aclose()


def _retrieve(task: asyncio.Task[User]) -> None:
    # Every waiter may have timed out before the lookup failed: read its error so that
    # asyncio does not log it as never retrieved (the next call looks the user up again).
    if not task.cancelled():
        task.exception()
