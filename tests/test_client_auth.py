"""``caiclient.auth`` against the emulator, and its protocol core with literal bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from caiclient import AsyncClient, Endpoints, auth
from caiclient.emulator import Emulator
from caiclient.errors import (
    AuthError,
    BlockedError,
    ProtocolError,
    RateLimited,
    ServerError,
    Timeout,
    ValidationError,
)
from caiclient.protocol import auth as proto
from caiclient.protocol.http import Request, Response
from caiclient.transports import CurlTransport, MockTransport
from mock_service import forwarding


@pytest.fixture
async def real() -> AsyncIterator[CurlTransport]:
    transport = CurlTransport(impersonate=None)
    yield transport
    await transport.aclose()


@pytest.fixture
def recording(real: CurlTransport) -> MockTransport:
    """Forwards every request to the emulator through a real transport (no token: logins
    have none) and records it in ``sent``."""
    return MockTransport(forwarding(real))


@pytest.fixture
def endpoints(emu: Emulator) -> Endpoints:
    return Endpoints.local(emu.url)


async def me(emu: Emulator, token: str) -> Any:
    async with AsyncClient(token, endpoints=Endpoints.local(emu.url)) as client:
        return await client.account.me()


# ---- guest ------------------------------------------------------------------------------


async def test_guest_token_is_a_guest_account(emu: Emulator, endpoints: Endpoints) -> None:
    token = await auth.guest(endpoints=endpoints)
    assert len(token) == 40
    user = await me(emu, token)
    assert user.is_guest
    assert await auth.guest(endpoints=endpoints) != token


async def test_guest_validates_before_io(recording: MockTransport, endpoints: Endpoints) -> None:
    with pytest.raises(ValidationError):
        await auth.guest(endpoints="http://x", transport=recording)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await auth.guest(endpoints=endpoints, timeout=0, transport=recording)
    assert recording.sent == []


# ---- e-mail link ------------------------------------------------------------------------


async def test_send_login_email_and_login_with_link(emu: Emulator, endpoints: Endpoints) -> None:
    await auth.send_login_email("Link@Example.com", endpoints=endpoints)
    [mail] = emu.mailbox("link@example.com")
    token = await auth.login_with_link("link@example.com", mail.link, endpoints=endpoints)
    assert (await me(emu, token)).email == "link@example.com"
    # The same e-mail later logs into the same account.
    await auth.send_login_email("link@example.com", endpoints=endpoints)
    again = emu.mailbox("link@example.com")[-1].link
    assert await auth.login_with_link("link@example.com", again, endpoints=endpoints) == token
    with pytest.raises(AuthError, match="INVALID_OOB_CODE") as info:
        await auth.login_with_link("link@example.com", mail.link, endpoints=endpoints)
    assert token not in str(info.value)


async def test_the_seed_users_email_logs_into_the_seed_user(
    emu: Emulator, endpoints: Endpoints
) -> None:
    email = f"{emu.username}@example.com"
    await auth.send_login_email(email, endpoints=endpoints)
    link = emu.mailbox(email)[-1].link
    assert await auth.login_with_link(email, link, endpoints=endpoints) == emu.token


async def test_link_for_another_email_is_refused(emu: Emulator, endpoints: Endpoints) -> None:
    await auth.send_login_email("a@example.com", endpoints=endpoints)
    link = emu.mailbox("a@example.com")[-1].link
    with pytest.raises(AuthError, match="INVALID_EMAIL"):
        await auth.login_with_link("b@example.com", link, endpoints=endpoints)


async def test_a_link_holding_the_code_is_not_opened(
    emu: Emulator, endpoints: Endpoints, recording: MockTransport
) -> None:
    await auth.send_login_email("direct@example.com", endpoints=endpoints)
    async with aiohttp.ClientSession() as http:
        final = str((await http.get(emu.mailbox("direct@example.com")[-1].link)).url)
    token = await auth.login_with_link(
        "direct@example.com", final, endpoints=endpoints, transport=recording
    )
    assert token
    assert [s.request.method for s in recording.sent] == ["POST", "POST"]  # signIn, google_idp


async def test_character_ai_login_page_link_works(emu: Emulator, endpoints: Endpoints) -> None:
    async with aiohttp.ClientSession() as http:
        await http.post(
            f"{emu.url}/web/api/trpc/auth.login?batch=1",
            json={"0": {"json": {"email": "page@example.com"}}},
        )
    link = emu.mailbox("page@example.com")[-1].link  # …/web/login/<uuid>: an HTML page
    token = await auth.login_with_link("page@example.com", link, endpoints=endpoints)
    assert (await me(emu, token)).email == "page@example.com"


async def test_a_link_without_code_is_auth_error(emu: Emulator, endpoints: Endpoints) -> None:
    with pytest.raises(AuthError, match="no login code"):
        await auth.login_with_link("a@example.com", f"{emu.url}/web/", endpoints=endpoints)
    with pytest.raises(AuthError, match="HTTP 404"):
        await auth.login_with_link(
            "a@example.com", f"{emu.url}/__emulator__/click/nope", endpoints=endpoints
        )


@pytest.mark.parametrize("email", ["plain", "a@b", "a b@c.de", "a@@b.de", "", 5, "x@y..de"])
async def test_emails_are_validated_before_io(
    recording: MockTransport, endpoints: Endpoints, email: Any
) -> None:
    with pytest.raises(ValidationError):
        await auth.send_login_email(email, endpoints=endpoints, transport=recording)
    with pytest.raises(ValidationError):
        await auth.login_with_link(
            email, "https://x.example/l", endpoints=endpoints, transport=recording
        )
    with pytest.raises(ValidationError):
        await auth.login_by_polling(email, endpoints=endpoints, transport=recording)
    assert recording.sent == []


@pytest.mark.parametrize("link", ["ftp://x/y", "character.ai/login/1", "https://a b", None])
async def test_links_are_validated_before_io(
    recording: MockTransport, endpoints: Endpoints, link: Any
) -> None:
    with pytest.raises(ValidationError):
        await auth.login_with_link("a@example.com", link, endpoints=endpoints, transport=recording)
    assert recording.sent == []


# ---- polling ----------------------------------------------------------------------------


async def test_login_by_polling_waits_for_the_click(
    emu: Emulator, endpoints: Endpoints, real: CurlTransport
) -> None:
    polls: list[str] = []
    forward = forwarding(real)

    async def click_after_first_poll(request: Request) -> Response:
        # Each request reaches the emulator; after the first poll the user "clicks".
        response: Response = await forward(request)
        if "/login/polling/" in request.url:
            polls.append(response.body.decode())
            if len(polls) == 1:
                async with aiohttp.ClientSession() as http:
                    await (await http.get(emu.mailbox("poll@example.com")[-1].link)).read()
        return response

    transport = MockTransport(click_after_first_poll)
    token = await auth.login_by_polling(
        "poll@example.com", endpoints=endpoints, interval=0.01, transport=transport
    )
    assert '"pending"' in polls[0]
    assert '"done"' in polls[1]
    assert len(polls) == 2
    assert (await me(emu, token)).email == "poll@example.com"


async def test_login_by_polling_times_out(emu: Emulator, endpoints: Endpoints) -> None:
    with pytest.raises(Timeout):
        await auth.login_by_polling(
            "never@example.com", endpoints=endpoints, timeout=0.2, interval=0.05
        )
    assert len(emu.mailbox("never@example.com")) == 1


@pytest.mark.parametrize(("timeout", "interval"), [(0, 1.0), (10.0, 0), (10.0, -1), (1.0, True)])
async def test_polling_arguments_are_validated(
    recording: MockTransport, endpoints: Endpoints, timeout: float, interval: float
) -> None:
    with pytest.raises(ValidationError):
        await auth.login_by_polling(
            "a@example.com",
            endpoints=endpoints,
            timeout=timeout,
            interval=interval,
            transport=recording,
        )
    assert recording.sent == []


# ---- protocol core ----------------------------------------------------------------------


def response(status: int, body: bytes, **headers: str) -> Response:
    return Response(status, headers, body)


@pytest.mark.parametrize(
    ("text", "code", "key"),
    [
        (
            "https://x.firebaseapp.com/__/auth/action?mode=signIn&oobCode=AbC-1_2&apiKey=K",
            "AbC-1_2",
            "K",
        ),
        ("https://character.ai/?apiKey=K&oobCode=c0de&mode=signIn&lang=en", "c0de", "K"),
        (
            "https://l.example/?link=https%3A%2F%2Fa%2F%3FoobCode%3Dnested%26apiKey%3DQ",
            "nested",
            "Q",
        ),
        (
            'push([1,"5:\\"https://auth.x/a?mode=signIn\\u0026oobCode=pg\\u0026apiKey=PK"])',
            "pg",
            "PK",
        ),
        ("<a href='https://a/?mode=signIn&amp;oobCode=html'>", "html", None),
    ],
)
def test_login_code_finds_the_code(text: str, code: str, key: str | None) -> None:
    assert proto.login_code(text) == proto.LoginCode(code, key)


def test_login_code_none() -> None:
    assert proto.login_code("https://character.ai/") is None
    assert proto.login_code("<html>nothing</html>") is None


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (
            400,
            b'{"error": {"code": 400, "message": "INVALID_OOB_CODE", "errors": []}}',
            AuthError,
            "INVALID_OOB_CODE",
        ),
        (400, b'{"error": {"code": 400, "message": "EXPIRED_OOB_CODE"}}', AuthError, "expired"),
        (
            400,
            b'{"error": {"code": 400, "message": "TOO_MANY_ATTEMPTS_TRY_LATER : x"}}',
            RateLimited,
            "TOO_MANY",
        ),
        (
            400,
            b'{"error": {"code": 400, "message": "API key not valid. Please pass a valid key."}}',
            AuthError,
            "API key",
        ),
        (500, b'{"error": {"code": 500, "message": "INTERNAL"}}', ServerError, "INTERNAL"),
        (503, b"<!DOCTYPE html><html>wait</html>", BlockedError, "anti-bot"),
    ],
)
def test_firebase_errors(status: int, body: bytes, error: type[Exception], text: str) -> None:
    found = proto.firebase_error(response(status, body))
    assert isinstance(found, error)
    assert text in str(found)
    assert proto.firebase_error(response(200, b"{}")) is None


def test_trpc_errors() -> None:
    def entry(code: str, status: int) -> bytes:
        data = {"code": code, "httpStatus": status, "path": "auth.login"}
        return (
            b'[{"error": {"json": {"message": "nope", "code": -32600, "data": '
            + str(data).replace("'", '"').encode()
            + b"}}}]"
        )

    assert isinstance(proto.trpc_error(response(400, entry("BAD_REQUEST", 400))), AuthError)
    assert isinstance(proto.trpc_error(response(429, entry("TOO_MANY_REQUESTS", 429))), RateLimited)
    assert isinstance(
        proto.trpc_error(response(500, entry("INTERNAL_SERVER_ERROR", 500))), ServerError
    )
    with pytest.raises(AuthError, match="nope"):
        proto.parse_trpc_login(entry("BAD_REQUEST", 400))
    assert proto.parse_trpc_login(b'[{"result": {"data": {"json": "u-1"}}}]') == "u-1"
    with pytest.raises(ProtocolError):
        proto.parse_trpc_login(b"[]")


def test_polling_answers() -> None:
    assert proto.parse_login_polling(b'{"result": "pending"}') is None
    assert proto.parse_login_polling(b'{"result": "done", "value": "https://a/?x=1&oobCode=c"}')
    with pytest.raises(AuthError):
        proto.parse_login_polling(b'{"result": "expired"}')
    assert isinstance(proto.polling_error(response(404, b'{"result": "not_found"}')), AuthError)


def test_login_view_errors_and_answers() -> None:
    assert isinstance(proto.login_error(response(400, b'{"error": "Invalid id_token"}')), AuthError)
    assert proto.parse_google_idp(b'{"key": "' + b"a" * 40 + b'"}') == "a" * 40
    with pytest.raises(AuthError):
        proto.parse_google_idp(b'{"error": "no"}')
    assert proto.parse_lazy_login(b'{"success": true, "token": "t"}') == "t"
    with pytest.raises(AuthError, match="closed"):
        proto.parse_lazy_login(b'{"success": false, "error": "closed"}')
    with pytest.raises(ProtocolError):
        proto.parse_send_oob_code(b'{"email": "x@y.zz"}', "a@b.cc")
    proto.parse_send_oob_code(b'{"email": "A@b.cc"}', "a@b.cc")
    with pytest.raises(ProtocolError):
        proto.parse_sign_in(b"{}")


def test_requests_use_the_site_key_and_hosts() -> None:
    endpoints = Endpoints.live()
    request = proto.send_oob_code(endpoints, "a@b.cc", continue_url=endpoints.web)
    assert request.url == "https://identitytoolkit.googleapis.com/v1/accounts:sendOobCode"
    assert request.params == {"key": auth.FIREBASE_WEB_API_KEY}
    assert request.json["requestType"] == "EMAIL_SIGNIN"
    assert proto.lazy_login(endpoints, "u").url == "https://beta.character.ai/chat/auth/lazy/"
    assert (
        proto.google_idp(endpoints, "t").url == "https://plus.character.ai/dj-rest-auth/google_idp/"
    )
    trpc = proto.trpc_login(endpoints, "a@b.cc")
    assert trpc.url == "https://character.ai/api/trpc/auth.login"
    assert trpc.params == {"batch": "1"}
    assert trpc.json == {"0": {"json": {"email": "a@b.cc"}}}
    assert proto.login_polling(endpoints, "u").url == "https://character.ai/login/polling/"
