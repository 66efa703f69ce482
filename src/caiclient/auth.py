"""Getting a token: guest, e-mail link (Firebase) and e-mail + polling logins.

No token is needed for these calls. Each returns the 40-hex token that
:class:`~caiclient.AsyncClient` takes. :class:`AsyncAuth` has them as coroutine methods and
:class:`caiclient.Auth` (generated in :mod:`caiclient.sync`) as blocking ones, after the
naming rule of the whole library (``AsyncClient``/``Client``)::

    token = await caiclient.AsyncAuth().login_by_polling("me@example.com")
    token = caiclient.Auth().login_by_polling("me@example.com")   # no asyncio needed

The module-level coroutines are shortcuts with the same arguments::

    token = await caiclient.auth.guest()
    await caiclient.auth.send_login_email("me@example.com")
    token = await caiclient.auth.login_with_link("me@example.com", link_from_the_mail)
    token = await caiclient.auth.login_by_polling("me@example.com")  # open the mail's link

Options: ``endpoints`` (default :meth:`Endpoints.from_env`), ``timeout`` (seconds per call;
for :meth:`AsyncAuth.login_by_polling` its own ``timeout`` bounds the whole wait) and the
transport options of ``AsyncClient`` (``impersonate``, ``proxy``, ``transport``). Arguments
are checked before any I/O. Tokens never appear in exception messages or logs.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from ._config import DEFAULT_IMPERSONATE, DEFAULT_TIMEOUT, ClientOptions
from ._deadline import Deadline
from ._ids import new_id
from ._transport import HttpTransport
from ._validate import check_seconds
from .endpoints import Endpoints
from .errors import AuthError, CaiError, ProtocolError, Timeout, ValidationError
from .protocol import auth as proto
from .protocol.http import Request, Response, error_for

__all__ = [
    "FIREBASE_WEB_API_KEY",
    "AsyncAuth",
    "guest",
    "login_by_polling",
    "login_with_link",
    "send_login_email",
]

FIREBASE_WEB_API_KEY = proto.FIREBASE_WEB_API_KEY
_MAX_PAGE = 2 << 20
_TELLING = frozenset({403, 429, 500, 502, 503, 504})
_EMAIL = re.compile(
    r"^[^@\s\"(),:;<>\[\\\]]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$"
)


def _check_email(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"email must be a str, got {type(value).__name__}")
    email = value.strip()
    if len(email) > 254 or not _EMAIL.match(email) or ".." in email:
        raise ValidationError(f"{email!r} is not a valid e-mail address")
    return email


def _check_link(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"link must be a str, got {type(value).__name__}")
    link = value.strip()
    if not link.startswith(("https://", "http://")) or any(c.isspace() for c in link):
        raise ValidationError("link must be the http(s) URL from the login e-mail")
    return link


def _check_endpoints(endpoints: Endpoints | None) -> Endpoints:
    if endpoints is None:
        return Endpoints.from_env()
    if not isinstance(endpoints, Endpoints):
        raise ValidationError(f"endpoints must be an Endpoints, got {type(endpoints).__name__}")
    return endpoints


_ErrorMap = Callable[[Response], "CaiError | None"]
"""Turns a response into the error it stands for (None for a success)."""


class _Session:
    """One login's HTTP calls: no Authorization header, errors mapped per service."""

    def __init__(self, endpoints: Endpoints, transport: HttpTransport, timeout: float) -> None:
        self.endpoints = endpoints
        self.transport = transport
        self.timeout = timeout

    async def send(
        self, request: Request, errors: _ErrorMap = error_for, *, timeout: float | None = None
    ) -> bytes:
        response = await self.transport.request(
            request, headers={}, timeout=self.timeout if timeout is None else timeout
        )
        error = errors(response)
        if error is not None:
            raise error
        return response.body

    async def finish(self, email: str, code: proto.LoginCode) -> str:
        """signInWithEmailLink, then google_idp: the character.ai token."""
        key = code.api_key or FIREBASE_WEB_API_KEY
        request = proto.sign_in_with_email_link(self.endpoints, email, code.oob_code, key)
        id_token = proto.parse_sign_in(await self.send(request, proto.firebase_error))
        body = await self.send(proto.google_idp(self.endpoints, id_token), proto.login_error)
        return proto.parse_google_idp(body)


@asynccontextmanager
async def _session(
    endpoints: Endpoints, options: ClientOptions, transport: HttpTransport | None
) -> AsyncIterator[_Session]:
    owned = transport is None
    if transport is None:
        # Imported here for the same reason as in ClientCore: curl_cffi is slow to import.
        from ._transport.curl import CurlTransport

        transport = CurlTransport(impersonate=options.impersonate, proxy=options.proxy)
    try:
        yield _Session(endpoints, transport, options.timeout)
    finally:
        if owned:
            await transport.aclose()


class AsyncAuth:
    """The login flows, as coroutine methods (the blocking twin is :class:`caiclient.Auth`).

    ``endpoints``, ``timeout`` (seconds per call), ``impersonate``, ``proxy`` and
    ``transport`` are those of :class:`~caiclient.AsyncClient`; they are checked here,
    before any I/O. No token is needed.
    """

    def __init__(
        self,
        *,
        endpoints: Endpoints | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        impersonate: str | None = DEFAULT_IMPERSONATE,
        proxy: str | None = None,
        transport: HttpTransport | None = None,
    ) -> None:
        self._endpoints = _check_endpoints(endpoints)
        self._options = ClientOptions(timeout=timeout, impersonate=impersonate, proxy=proxy)
        self._transport = transport

    def _session(self) -> AbstractAsyncContextManager[_Session]:
        return _session(self._endpoints, self._options, self._transport)

    async def guest(self) -> str:
        """A new guest ("lazy") account's token (docs/protocol.md §3.1).

        Guests are limited: Chat V1 answers them with LoginRequired after a few messages.
        The live service retired guest logins with the old beta site (2024), so this mainly
        works against the emulator. Raises AuthError if refused.
        """
        async with self._session() as session:
            request = proto.lazy_login(self._endpoints, new_id())
            return proto.parse_lazy_login(await session.send(request, proto.login_error))

    async def send_login_email(self, email: str) -> None:
        """Ask Firebase to mail a sign-in link to ``email`` (docs/protocol.md §3.2 step 1).

        Then pass that link to :meth:`login_with_link`. Raises ValidationError for a
        malformed address (before any I/O), AuthError or RateLimited when Firebase refuses.
        """
        email = _check_email(email)
        endpoints = self._endpoints
        async with self._session() as session:
            request = proto.send_oob_code(endpoints, email, continue_url=endpoints.web)
            proto.parse_send_oob_code(await session.send(request, proto.firebase_error), email)

    async def login_with_link(self, email: str, link: str) -> str:
        """Finish an e-mail login with the link from the mail; return the token.

        ``email`` must be the address the link was sent to. The link is opened (following
        redirects) unless it already holds the code; the code is read from the final URL or
        the page. Works with the links of :meth:`send_login_email` and of the character.ai
        login mail (``…/login/<id>``). Raises ValidationError (before any I/O), AuthError
        for a used, expired or foreign link.
        """
        email = _check_email(email)
        link = _check_link(link)
        async with self._session() as session:
            code = proto.login_code(link) or await _code_behind(session, link)
            return await session.finish(email, code)

    async def login_by_polling(
        self, email: str, *, timeout: float = 300.0, interval: float = 2.0
    ) -> str:
        """Log in with character.ai's own e-mail flow and return the token (§3.3).

        Asks character.ai to mail a login link, then polls every ``interval`` seconds until
        the link has been opened (in any browser), then signs in. ``timeout`` bounds the
        whole wait: Timeout if the link is not opened in time. Raises ValidationError
        (before any I/O), AuthError when the attempt is refused or expires. Cancelling is
        safe.
        """
        email = _check_email(email)
        wait = check_seconds(timeout, "timeout")
        pause = check_seconds(interval, "interval")
        deadline = Deadline.after(wait)
        endpoints = self._endpoints

        def remaining() -> float:
            if deadline.expired:
                raise Timeout(f"the login link was not opened within {wait:g} s")
            return min(deadline.remaining(), self._options.timeout)

        async with self._session() as session:
            request = proto.trpc_login(endpoints, email)
            body = await session.send(request, proto.trpc_error, timeout=remaining())
            attempt = proto.parse_trpc_login(body)
            try:
                value = await _poll(session, endpoints, attempt, pause, remaining)
            except Timeout:
                if deadline.expired:  # A poll cut short by the deadline: say which wait.
                    raise Timeout(f"the login link was not opened within {wait:g} s") from None
                raise
            code = proto.login_code(value)
            if code is None:
                raise ProtocolError("the finished login attempt held no login code")
            return await session.finish(email, code)


async def _poll(
    session: _Session,
    endpoints: Endpoints,
    attempt: str,
    pause: float,
    remaining: Callable[[], float],
) -> str:
    """Poll the login attempt until the link has been opened; the value it then holds."""
    while True:
        request = proto.login_polling(endpoints, attempt)
        body = await session.send(request, proto.polling_error, timeout=remaining())
        value = proto.parse_login_polling(body)
        if value is not None:
            return value
        await asyncio.sleep(min(pause, remaining()))


async def _code_behind(session: _Session, link: str) -> proto.LoginCode:
    """Open ``link`` and find the code in the URL it ends at, or in the page."""
    request = Request("GET", link)
    async with session.transport.stream(request, headers={}, timeout=session.timeout) as page:
        code = proto.login_code(page.url)
        if code is not None:
            return code
        body = await page.read(_MAX_PAGE)
        code = proto.login_code(body.decode("utf-8", "replace"))
        if code is not None:
            return code
        status = page.status
        # Blocks and server failures say more than "no code"; a 404 page does not.
        error = error_for(Response(status, page.headers, body)) if status in _TELLING else None
    if error is not None:
        raise error
    raise AuthError(
        f"the link led to no login code (HTTP {status}); pass the link from the login e-mail"
    )


# --- module-level shortcuts (the same calls as AsyncAuth's) -------------------------------------


def _auth(
    endpoints: Endpoints | None,
    timeout: float,
    impersonate: str | None,
    proxy: str | None,
    transport: HttpTransport | None,
) -> AsyncAuth:
    """The :class:`AsyncAuth` of a module-level shortcut's options."""
    return AsyncAuth(
        endpoints=endpoints,
        timeout=timeout,
        impersonate=impersonate,
        proxy=proxy,
        transport=transport,
    )


async def guest(
    *,
    endpoints: Endpoints | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    impersonate: str | None = DEFAULT_IMPERSONATE,
    proxy: str | None = None,
    transport: HttpTransport | None = None,
) -> str:
    """:meth:`AsyncAuth.guest` with these options."""
    return await _auth(endpoints, timeout, impersonate, proxy, transport).guest()


async def send_login_email(
    email: str,
    *,
    endpoints: Endpoints | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    impersonate: str | None = DEFAULT_IMPERSONATE,
    proxy: str | None = None,
    transport: HttpTransport | None = None,
) -> None:
    """:meth:`AsyncAuth.send_login_email` with these options."""
    _check_email(email)
    await _auth(endpoints, timeout, impersonate, proxy, transport).send_login_email(email)


async def login_with_link(
    email: str,
    link: str,
    *,
    endpoints: Endpoints | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    impersonate: str | None = DEFAULT_IMPERSONATE,
    proxy: str | None = None,
    transport: HttpTransport | None = None,
) -> str:
    """:meth:`AsyncAuth.login_with_link` with these options."""
    _check_email(email)
    _check_link(link)
    auth = _auth(endpoints, timeout, impersonate, proxy, transport)
    return await auth.login_with_link(email, link)


async def login_by_polling(
    email: str,
    *,
    timeout: float = 300.0,
    interval: float = 2.0,
    endpoints: Endpoints | None = None,
    impersonate: str | None = DEFAULT_IMPERSONATE,
    proxy: str | None = None,
    transport: HttpTransport | None = None,
) -> str:
    """:meth:`AsyncAuth.login_by_polling` with these options (``timeout`` bounds the whole
    wait; each request is bounded by 30 s)."""
    _check_email(email)
    auth = _auth(endpoints, DEFAULT_TIMEOUT, impersonate, proxy, transport)
    return await auth.login_by_polling(email, timeout=timeout, interval=interval)
