"""The asynchronous client."""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType

from ._api.account import AsyncAccountAPI
from ._api.characters import AsyncCharactersAPI
from ._api.chats import AsyncChatsAPI
from ._api.images import AsyncImagesAPI
from ._api.personas import AsyncPersonasAPI
from ._api.rooms import AsyncRoomsAPI
from ._api.users import AsyncUsersAPI
from ._api.v1 import AsyncV1API
from ._api.voices import AsyncVoicesAPI
from ._config import DEFAULT_IDLE_TIMEOUT, DEFAULT_IMPERSONATE, DEFAULT_TIMEOUT, ClientOptions
from ._core import ClientCore, ClientStats, RawBody, capture_raw, mask, normalise_token
from ._transport import HttpTransport
from .endpoints import Endpoints
from .errors import ValidationError
from .protocol.retry import Backoff, RetryPolicy

__all__ = ["AsyncClient"]


class AsyncClient:
    """An async Character.AI client: one HTTP session and one chat WebSocket, shared by all calls.

    ``token`` defaults to ``$CAI_TOKEN``; ``endpoints`` to :meth:`Endpoints.from_env` (the live
    service, or the origin in ``$CAI_BASE_URL``). ``timeout`` is the default deadline of every
    call in seconds (at most a day; per call, ``timeout=None`` means this default). ``retry``
    says how REST calls are retried, ``reconnect`` how the chat
    socket is reopened after a drop, and ``idle_timeout`` how long a socket may stay silent
    while requests wait before it is treated as dead. ``rate_limit_wait`` (seconds, default 0:
    off) lets a message refused by the service's rate limit wait out the ``retry_after`` it
    was given, if no longer than that, and go again instead of raising ``RateLimited``.
    ``first_chunk_timeout`` (seconds, default None: only ``timeout``) bounds the wait for a
    reply's first frame separately from the whole reply.
    ``impersonate`` is the browser whose TLS fingerprint curl_cffi presents (the live service
    sits behind Cloudflare); ``proxy`` routes everything through a proxy URL. Use it as
    ``async with AsyncClient(...) as client:`` or call :meth:`aclose`.

    Every option is checked here (ValidationError), before anything is opened.

    Namespaces: ``account``, ``personas``, ``users``, ``characters``, ``chats``, ``rooms``
    (group chats), ``voices``, ``images`` and ``v1`` (legacy Chat V1).
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        endpoints: Endpoints | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        impersonate: str | None = DEFAULT_IMPERSONATE,
        proxy: str | None = None,
        transport: HttpTransport | None = None,
        retry: RetryPolicy | None = None,
        reconnect: Backoff | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        rate_limit_wait: float = 0.0,
        first_chunk_timeout: float | None = None,
    ) -> None:
        if endpoints is not None and not isinstance(endpoints, Endpoints):
            raise ValidationError(f"endpoints must be an Endpoints, got {type(endpoints).__name__}")
        options = ClientOptions(
            timeout=timeout,
            idle_timeout=idle_timeout,
            first_chunk_timeout=first_chunk_timeout,
            rate_limit_wait=rate_limit_wait,
            impersonate=impersonate,
            proxy=proxy,
            retry=retry or RetryPolicy(),
            reconnect=reconnect or Backoff(),
        )
        self._core = ClientCore(
            normalise_token(token), endpoints or Endpoints.from_env(), options, transport
        )
        self.account = AsyncAccountAPI(self._core)
        self.personas = AsyncPersonasAPI(self._core)
        self.users = AsyncUsersAPI(self._core)
        self.characters = AsyncCharactersAPI(self._core)
        self.chats = AsyncChatsAPI(self._core)
        self.rooms = AsyncRoomsAPI(self._core)
        self.voices = AsyncVoicesAPI(self._core)
        self.images = AsyncImagesAPI(self._core)
        self.v1 = AsyncV1API(self._core)

    @property
    def endpoints(self) -> Endpoints:
        return self._core.endpoints

    @property
    def options(self) -> ClientOptions:
        """The options this client was made with (validated, frozen)."""
        return self._core.options

    @property
    def stats(self) -> ClientStats:
        """A snapshot of what the client did to keep working (reconnects, recovered
        replies, re-sent messages, HTTP retries, aborted generations)."""
        return self._core.stats

    @staticmethod
    def capture_raw() -> AbstractContextManager[list[RawBody]]:
        """``with client.capture_raw() as bodies:`` collects the exact body of every REST
        answer the calls inside the block (of this task) receive, for tools that must keep
        what the service sent beyond the fields the models know (the archive, schema checks).
        """
        return capture_raw()

    async def ping(self, *, timeout: float | None = None) -> float:
        """Open the chat socket if needed, send a keepalive probe and return the seconds
        until the server answered (a round trip). Raises AuthError, BlockedError (a refused
        upgrade), Timeout, Disconnected."""
        return await self._core.socket.ping(self._core.deadline(timeout))

    def __repr__(self) -> str:
        return f"<AsyncClient token={mask(self._core.token)} neo={self._core.endpoints.neo}>"

    async def aclose(self) -> None:
        """Close the socket and the HTTP session; waiting calls fail with Disconnected."""
        await self._core.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
