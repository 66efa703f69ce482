"""The asynchronous client."""

from __future__ import annotations

from types import TracebackType

from ._api.account import AccountAPI
from ._api.characters import CharactersAPI
from ._api.chats import ChatsAPI
from ._api.images import ImagesAPI
from ._api.personas import PersonasAPI
from ._api.users import UsersAPI
from ._api.v1 import V1API
from ._api.voices import VoicesAPI
from ._core import ClientCore, ClientStats, mask, normalise_token
from ._transport import HttpTransport
from ._validate import check_timeout
from .endpoints import Endpoints
from .errors import ValidationError
from .protocol.retry import Backoff, RetryPolicy

__all__ = ["AsyncClient"]

DEFAULT_TIMEOUT = 30.0


class AsyncClient:
    """An async Character.AI client: one HTTP session and one chat WebSocket, shared by all calls.

    ``token`` defaults to ``$CAI_TOKEN``; ``endpoints`` to :meth:`Endpoints.from_env` (the live
    service, or the origin in ``$CAI_BASE_URL``). ``timeout`` is the default deadline of every
    call in seconds. ``retry`` says how REST calls are retried, ``reconnect`` how the chat
    socket is reopened after a drop, and ``idle_timeout`` how long a socket may stay silent
    while requests wait before it is treated as dead. ``rate_limit_wait`` (seconds, default 0:
    off) lets a message refused by the service's rate limit wait out the ``retry_after`` it
    was given, if no longer than that, and go again instead of raising ``RateLimited``.
    ``first_chunk_timeout`` (seconds, default None: only ``timeout``) bounds the wait for a
    reply's first frame separately from the whole reply.
    ``impersonate`` is the browser whose TLS fingerprint curl_cffi presents (the live service
    sits behind Cloudflare); ``proxy`` routes everything through a proxy URL. Use it as
    ``async with AsyncClient(...) as client:`` or call :meth:`aclose`.

    Namespaces: ``account``, ``personas``, ``users``, ``characters``, ``chats``, ``voices``,
    ``images`` and ``v1`` (legacy Chat V1).
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        endpoints: Endpoints | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        impersonate: str | None = "chrome",
        proxy: str | None = None,
        transport: HttpTransport | None = None,
        retry: RetryPolicy | None = None,
        reconnect: Backoff | None = None,
        idle_timeout: float = 30.0,
        rate_limit_wait: float = 0.0,
        first_chunk_timeout: float | None = None,
    ) -> None:
        if endpoints is not None and not isinstance(endpoints, Endpoints):
            raise ValidationError(f"endpoints must be an Endpoints, got {type(endpoints).__name__}")
        check_timeout(timeout)
        check_timeout(idle_timeout)
        check_timeout(first_chunk_timeout)
        self._core = ClientCore(
            normalise_token(token),
            endpoints or Endpoints.from_env(),
            timeout=timeout,
            impersonate=impersonate,
            proxy=proxy,
            transport=transport,
            retry=retry,
            reconnect=reconnect,
            idle_timeout=idle_timeout,
            rate_limit_wait=rate_limit_wait,
            first_chunk_timeout=first_chunk_timeout,
        )
        self.account = AccountAPI(self._core)
        self.personas = PersonasAPI(self._core)
        self.users = UsersAPI(self._core)
        self.characters = CharactersAPI(self._core)
        self.chats = ChatsAPI(self._core)
        self.voices = VoicesAPI(self._core)
        self.images = ImagesAPI(self._core)
        self.v1 = V1API(self._core)

    @property
    def endpoints(self) -> Endpoints:
        return self._core.endpoints

    @property
    def stats(self) -> ClientStats:
        """Counters of what the client did to keep working (reconnects, recovered replies…)."""
        stats = self._core.stats
        stats.reconnects = max(0, self._core.socket.connects - 1)
        return stats

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
