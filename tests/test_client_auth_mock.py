"""Tier 2: the login flows of ``caiclient.auth`` over MockTransport.

A handler plays beta, Firebase's identitytoolkit, plus and the character.ai web host with
literal bodies (docs/protocol.md §3): the exact requests of the guest, e-mail link and
polling logins (none carries a token), the parsing of their answers, the error shapes of
each service (Django, Firebase, tRPC, polling), and validation before any request.
"""

from __future__ import annotations

from typing import Any

import pytest

from caiclient import AsyncAuth, Auth, auth
from caiclient.errors import (
    AuthError,
    BlockedError,
    ProtocolError,
    RateLimited,
    ServerError,
    Timeout,
    ValidationError,
)
from caiclient.protocol.http import Request, Response
from caiclient.transports import MockTransport
from mock_service import (
    BETA,
    FIREBASE,
    LIVE,
    PLUS,
    WEB,
    Service,
    cloudflare,
    json_body,
    text_body,
    unauthorized,
    urls,
    wire,
)

KEY = auth.FIREBASE_WEB_API_KEY
NEW_TOKEN = "5e1f" + "a" * 36
LAZY = f"{BETA}/chat/auth/lazy/"
SEND_OOB = f"{FIREBASE}/v1/accounts:sendOobCode"
SIGN_IN = f"{FIREBASE}/v1/accounts:signInWithEmailLink"
GOOGLE_IDP = f"{PLUS}/dj-rest-auth/google_idp/"
TRPC_LOGIN = f"{WEB}/api/trpc/auth.login"
POLLING = f"{WEB}/login/polling/"
ACTION = "https://character-ai.firebaseapp.com/__/auth/action?mode=signIn&oobCode=C0de-1_x&apiKey=LinkKey&lang=en"


def firebase(message: str, status: int = 400) -> Response:
    """Google's error shape (docs/protocol.md §2.4.7)."""
    errors = [{"message": message, "domain": "global", "reason": "invalid"}]
    return json_body({"error": {"code": status, "message": message, "errors": errors}}, status)


def trpc_failure(message: str, status: int, code: str) -> Response:
    data = {"code": code, "httpStatus": status, "path": "auth.login"}
    return json_body(
        [{"error": {"json": {"message": message, "code": -32600, "data": data}}}], status
    )


def signs_in(service: Service) -> Service:
    """Answer the two last steps of every e-mail login."""
    service.route("POST", SIGN_IN, json_body({"idToken": "firebase-id-token", "email": "a@b.cc"}))
    return service.route("POST", GOOGLE_IDP, json_body({"key": NEW_TOKEN}))


def login(transport: MockTransport) -> AsyncAuth:
    return AsyncAuth(endpoints=LIVE, transport=transport)


def no_token_anywhere(transport: MockTransport) -> None:
    for sent in transport.sent:
        assert "Authorization" not in sent.headers and "Cookie" not in sent.headers


# ---- guest ------------------------------------------------------------------------------------


async def test_guest(service: Service, transport: MockTransport) -> None:
    service.route("POST", LAZY, json_body({"success": True, "token": NEW_TOKEN}))
    assert await auth.guest(endpoints=LIVE, transport=transport) == NEW_TOKEN
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params) == ("POST", LAZY, None)
    assert set(sent.json) == {"lazy_uuid"} and len(sent.json["lazy_uuid"]) == 36
    assert dict(sent.headers) == {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (json_body({"error": "Guests are disabled"}, 400), AuthError, "Guests are disabled"),
        (json_body({"success": False, "error": "closed"}), AuthError, "closed"),
        (json_body({"success": True}), AuthError, "no token"),
        (unauthorized(), AuthError, "401"),
        (cloudflare(403), BlockedError, "anti-bot"),
        (json_body({"detail": "unavailable"}, 503), ServerError, "503"),
        (text_body("<h1>oops</h1>", 200, "text/html"), ProtocolError, "lazy"),
    ],
)
async def test_guest_errors(
    service: Service, transport: MockTransport, answer: Response, error: type, match: str
) -> None:
    service.route("POST", LAZY, answer)
    with pytest.raises(error, match=match):
        await auth.guest(endpoints=LIVE, transport=transport)
    assert len(transport.sent) == 1  # logins are never retried


def test_the_sync_twin_logs_in_without_asyncio(service: Service, transport: MockTransport) -> None:
    service.route("POST", LAZY, json_body({"success": True, "token": NEW_TOKEN}))
    assert Auth(endpoints=LIVE, transport=transport).guest() == NEW_TOKEN
    assert urls(transport.sent) == [f"POST {LAZY}"]


# ---- send_login_email -------------------------------------------------------------------------


async def test_send_login_email(service: Service, transport: MockTransport) -> None:
    service.route(
        "POST",
        SEND_OOB,
        json_body({"kind": "identitytoolkit#GetOobCode", "email": "me@example.com"}),
    )
    assert await login(transport).send_login_email("  me@example.com ") is None
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params) == ("POST", SEND_OOB, {"key": KEY})
    assert sent.json == {
        "requestType": "EMAIL_SIGNIN",
        "email": "me@example.com",
        "clientType": "CLIENT_TYPE_WEB",
        "continueUrl": "https://character.ai",
        "canHandleCodeInApp": True,
    }
    no_token_anywhere(transport)


async def test_send_login_email_accepts_another_case_of_the_address(
    service: Service, transport: MockTransport
) -> None:
    service.route("POST", SEND_OOB, json_body({"email": "ME@Example.com"}))
    await auth.send_login_email("me@example.com", endpoints=LIVE, transport=transport)


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (json_body({"email": "someone@else.com"}), ProtocolError, "another e-mail"),
        (json_body({}), ProtocolError, "another e-mail"),
        (firebase("INVALID_EMAIL"), AuthError, "INVALID_EMAIL"),
        (firebase("EMAIL_NOT_FOUND"), AuthError, "no account"),
        (firebase("TOO_MANY_ATTEMPTS_TRY_LATER : Try again later."), RateLimited, "TOO_MANY"),
        (firebase("QUOTA_EXCEEDED", 400), RateLimited, "QUOTA"),
        (firebase("API key not valid. Please pass a valid API key."), AuthError, "API key"),
        (firebase("INTERNAL", 500), ServerError, "INTERNAL"),
        (json_body({"nothing": "useful"}, 429), RateLimited, "429"),
        (cloudflare(503), BlockedError, "anti-bot"),
    ],
)
async def test_send_login_email_errors(
    service: Service, transport: MockTransport, answer: Response, error: type, match: str
) -> None:
    service.route("POST", SEND_OOB, answer)
    with pytest.raises(error, match=match):
        await auth.send_login_email("me@example.com", endpoints=LIVE, transport=transport)
    assert len(transport.sent) == 1


# ---- login_with_link --------------------------------------------------------------------------


async def test_a_link_holding_the_code_is_not_opened(
    service: Service, transport: MockTransport
) -> None:
    signs_in(service)
    token = await auth.login_with_link("a@b.cc", ACTION, endpoints=LIVE, transport=transport)
    assert token == NEW_TOKEN
    sign_in, idp = wire(transport.sent)
    assert (sign_in.method, sign_in.url, sign_in.params) == ("POST", SIGN_IN, {"key": "LinkKey"})
    assert sign_in.json == {"email": "a@b.cc", "oobCode": "C0de-1_x"}
    assert (idp.method, idp.url, idp.json) == (
        "POST",
        GOOGLE_IDP,
        {"id_token": "firebase-id-token"},
    )
    no_token_anywhere(transport)


async def test_a_link_without_its_own_key_uses_the_sites_key(
    service: Service, transport: MockTransport
) -> None:
    signs_in(service)
    link = "https://character.ai/?mode=signIn&oobCode=abc"
    await auth.login_with_link("a@b.cc", link, endpoints=LIVE, transport=transport)
    assert wire(transport.sent)[0].params == {"key": KEY}


async def test_a_nested_dynamic_link_is_read_without_opening_it(
    service: Service, transport: MockTransport
) -> None:
    signs_in(service)
    link = "https://cai.page.link/?link=https%3A%2F%2Fa.example%2F%3FoobCode%3Dnested%26apiKey%3DQ"
    await auth.login_with_link("a@b.cc", link, endpoints=LIVE, transport=transport)
    assert wire(transport.sent)[0].json["oobCode"] == "nested"
    assert urls(transport.sent) == [f"POST {SIGN_IN}", f"POST {GOOGLE_IDP}"]


async def test_a_login_page_is_opened_and_the_code_read_from_it(
    service: Service, transport: MockTransport
) -> None:
    page_url = f"{WEB}/login/5b6a"
    escaped = ACTION.replace("&", "\\u0026")
    html = f'<html><script>self.__next_f.push([1,"5:\\"{escaped}\\""])</script></html>'
    service.route("GET", page_url, text_body(html, 200, "text/html"))
    signs_in(service)
    assert (
        await auth.login_with_link("a@b.cc", page_url, endpoints=LIVE, transport=transport)
        == NEW_TOKEN
    )
    opened, sign_in, _ = wire(transport.sent)
    assert (opened.method, opened.url, opened.body) == ("GET", page_url, None)
    assert sign_in.json["oobCode"] == "C0de-1_x"
    no_token_anywhere(transport)


@pytest.mark.parametrize(
    ("page", "error", "match"),
    [
        (text_body("<html>Welcome</html>", 200, "text/html"), AuthError, "no login code"),
        (text_body("Not Found", 404), AuthError, "HTTP 404"),
        (cloudflare(403), BlockedError, "anti-bot"),
        (json_body({"detail": "unavailable"}, 503), ServerError, "503"),
    ],
)
async def test_a_link_that_leads_to_no_code(
    service: Service, transport: MockTransport, page: Response, error: type, match: str
) -> None:
    link = f"{WEB}/login/gone"
    service.route("GET", link, page)
    with pytest.raises(error, match=match):
        await auth.login_with_link("a@b.cc", link, endpoints=LIVE, transport=transport)
    assert urls(transport.sent) == [f"GET {link}"]


@pytest.mark.parametrize(
    ("step", "answer", "error", "match"),
    [
        ("sign_in", firebase("INVALID_OOB_CODE"), AuthError, "already used"),
        ("sign_in", firebase("EXPIRED_OOB_CODE"), AuthError, "expired"),
        ("sign_in", firebase("INVALID_EMAIL"), AuthError, "not the one the link was sent to"),
        ("sign_in", firebase("USER_DISABLED"), AuthError, "disabled"),
        ("sign_in", firebase("WEIRD_NEW_CODE"), AuthError, "WEIRD_NEW_CODE"),
        ("sign_in", json_body({"kind": "x"}), ProtocolError, "idToken"),
        ("idp", json_body({"error": "Invalid id_token"}, 400), AuthError, "Invalid id_token"),
        ("idp", json_body({"key": ""}), AuthError, "no key"),
        ("idp", json_body({"detail": "boom"}, 500), ServerError, "500"),
    ],
)
async def test_login_with_link_errors(
    service: Service,
    transport: MockTransport,
    step: str,
    answer: Response,
    error: type,
    match: str,
) -> None:
    signs_in(service)
    service.route("POST", SIGN_IN if step == "sign_in" else GOOGLE_IDP, answer)
    with pytest.raises(error, match=match) as caught:
        await auth.login_with_link("a@b.cc", ACTION, endpoints=LIVE, transport=transport)
    assert "firebase-id-token" not in str(caught.value)
    assert len(transport.sent) == (1 if step == "sign_in" else 2)


# ---- login_by_polling -------------------------------------------------------------------------


def trpc_ok(value: Any) -> Response:
    return json_body([{"result": {"data": {"json": value}}}])


def polls(*answers: dict[str, Any]) -> Any:
    """Polling answers in order, the last one repeating."""
    queue = list(answers)

    def answer(request: Request) -> Response:
        return json_body(queue.pop(0) if len(queue) > 1 else queue[0])

    return answer


async def test_login_by_polling(service: Service, transport: MockTransport) -> None:
    service.route("POST", TRPC_LOGIN, trpc_ok("attempt-7"))
    service.route(
        "GET",
        POLLING,
        polls({"result": "pending"}, {"result": "waiting"}, {"result": "done", "value": ACTION}),
    )
    signs_in(service)
    token = await auth.login_by_polling(
        "Me@Example.com", endpoints=LIVE, interval=0.001, timeout=10, transport=transport
    )
    assert token == NEW_TOKEN
    sent = wire(transport.sent)
    assert [f"{s.method} {s.url}" for s in sent] == [
        f"POST {TRPC_LOGIN}",
        f"GET {POLLING}",
        f"GET {POLLING}",
        f"GET {POLLING}",
        f"POST {SIGN_IN}",
        f"POST {GOOGLE_IDP}",
    ]
    assert (sent[0].params, sent[0].json) == (
        {"batch": "1"},
        {"0": {"json": {"email": "Me@Example.com"}}},
    )
    assert all(s.params == {"uuid": "attempt-7"} for s in sent[1:4])
    assert sent[4].json == {"email": "Me@Example.com", "oobCode": "C0de-1_x"}
    no_token_anywhere(transport)


async def test_login_by_polling_times_out_while_pending(
    service: Service, transport: MockTransport
) -> None:
    service.route("POST", TRPC_LOGIN, trpc_ok("attempt-7"))
    service.route("GET", POLLING, json_body({"result": "pending"}))
    with pytest.raises(Timeout, match="not opened"):
        await auth.login_by_polling(
            "me@example.com", endpoints=LIVE, interval=0.01, timeout=0.1, transport=transport
        )
    assert service.hits[("GET", POLLING)] >= 1
    assert ("POST", SIGN_IN) not in service.hits


@pytest.mark.parametrize(
    ("route", "answer", "error", "match"),
    [
        ("login", trpc_failure("slow down", 429, "TOO_MANY_REQUESTS"), RateLimited, "slow down"),
        ("login", trpc_failure("bad email", 400, "BAD_REQUEST"), AuthError, "bad email"),
        ("login", trpc_failure("boom", 500, "INTERNAL_SERVER_ERROR"), ServerError, "boom"),
        ("login", json_body([{"error": {"json": {"message": "nope"}}}]), AuthError, "nope"),
        ("login", json_body([]), ProtocolError, "empty batch"),
        ("login", trpc_ok(None), ProtocolError, "polling id"),
        ("login", cloudflare(403), BlockedError, "anti-bot"),
        ("poll", json_body({"result": "not_found"}, 404), AuthError, "unknown or has expired"),
        ("poll", json_body({"result": "expired"}), AuthError, "expired"),
        ("poll", json_body({"result": "done"}), ProtocolError, "without a value"),
        (
            "poll",
            json_body({"result": "done", "value": "https://character.ai/"}),
            ProtocolError,
            "no login code",
        ),
        ("poll", json_body({"detail": "boom"}, 500), ServerError, "500"),
    ],
)
async def test_login_by_polling_errors(
    service: Service,
    transport: MockTransport,
    route: str,
    answer: Response,
    error: type,
    match: str,
) -> None:
    service.route("POST", TRPC_LOGIN, trpc_ok("attempt-7"))
    service.route("GET", POLLING, json_body({"result": "done", "value": ACTION}))
    signs_in(service)
    if route == "login":
        service.route("POST", TRPC_LOGIN, answer)
    else:
        service.route("GET", POLLING, answer)
    with pytest.raises(error, match=match):
        await auth.login_by_polling(
            "me@example.com", endpoints=LIVE, interval=0.001, timeout=10, transport=transport
        )
    assert ("POST", GOOGLE_IDP) not in service.hits


# ---- validation before any request ------------------------------------------------------------

BAD_EMAILS = [
    "plain",
    "a@b",
    "a b@c.de",
    "a@@b.de",
    "",
    5,
    "x@y..de",
    None,
    "a@" + "b" * 250 + ".de",
]


@pytest.mark.parametrize("email", BAD_EMAILS)
async def test_emails_are_validated_before_any_request(
    transport: MockTransport, email: Any
) -> None:
    with pytest.raises(ValidationError):
        await auth.send_login_email(email, endpoints=LIVE, transport=transport)
    with pytest.raises(ValidationError):
        await auth.login_with_link(email, ACTION, endpoints=LIVE, transport=transport)
    with pytest.raises(ValidationError):
        await auth.login_by_polling(email, endpoints=LIVE, transport=transport)
    with pytest.raises(ValidationError):
        await login(transport).send_login_email(email)
    assert transport.sent == []


@pytest.mark.parametrize(
    "link", ["ftp://x/y", "character.ai/login/1", "https://a b", None, 7, "   ", "javascript:x"]
)
async def test_links_are_validated_before_any_request(transport: MockTransport, link: Any) -> None:
    with pytest.raises(ValidationError):
        await auth.login_with_link("a@b.cc", link, endpoints=LIVE, transport=transport)
    assert transport.sent == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": 0},
        {"timeout": -1},
        {"timeout": float("inf")},
        {"interval": 0},
        {"interval": True},
        {"interval": "1"},
    ],
)
async def test_polling_arguments_are_validated(
    transport: MockTransport, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        await auth.login_by_polling("a@b.cc", endpoints=LIVE, transport=transport, **kwargs)
    assert transport.sent == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"endpoints": "https://character.ai"},
        {"timeout": 0},
        {"timeout": None},
        {"proxy": 5},
        {"impersonate": 1},
    ],
)
def test_login_options_are_validated_before_any_request(
    transport: MockTransport, kwargs: dict[str, Any]
) -> None:
    options = {"endpoints": LIVE, **kwargs}
    with pytest.raises(ValidationError):
        AsyncAuth(transport=transport, **options)
    with pytest.raises(ValidationError):
        Auth(transport=transport, **options)
    assert transport.sent == []
