"""Login flows (docs/protocol.md §3): requests, response parsers, error mapping. No I/O.

Three ways to a token: a guest ("lazy") token; a Firebase e-mail link (sendOobCode → the
link's ``oobCode`` → signInWithEmailLink → ``dj-rest-auth/google_idp/``); and the current
character.ai flow (tRPC ``auth.login`` → polling until the mail link is opened → the same
Firebase and google_idp steps).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from ..endpoints import Endpoints
from ..errors import AuthError, CaiError, ProtocolError, RateLimited, ServerError
from .http import Request, Response, decode, error_for

__all__ = [
    "FIREBASE_WEB_API_KEY",
    "LoginCode",
    "firebase_error",
    "google_idp",
    "lazy_login",
    "login_code",
    "login_error",
    "login_polling",
    "parse_google_idp",
    "parse_lazy_login",
    "parse_login_polling",
    "parse_send_oob_code",
    "parse_sign_in",
    "parse_trpc_login",
    "polling_error",
    "send_oob_code",
    "sign_in_with_email_link",
    "trpc_error",
    "trpc_login",
]

FIREBASE_WEB_API_KEY = "AIzaSyAbLy_s6hJqVNr2ZN0UHHiCbJX1X8smTws"
"""character.ai's public Firebase web API key, as its web page ships it (docs/protocol.md §3.2)."""


# --- requests ----------------------------------------------------------------------------


def lazy_login(endpoints: Endpoints, lazy_uuid: str) -> Request:
    # Guest login lived on beta (docs/protocol.md §3.1).
    url = f"{endpoints.beta}/chat/auth/lazy/"
    return Request("POST", url, json={"lazy_uuid": lazy_uuid}, idempotent=False)


def send_oob_code(
    endpoints: Endpoints, email: str, *, continue_url: str, key: str = FIREBASE_WEB_API_KEY
) -> Request:
    body = {
        "requestType": "EMAIL_SIGNIN",
        "email": email,
        "clientType": "CLIENT_TYPE_WEB",
        "continueUrl": continue_url,
        "canHandleCodeInApp": True,
    }
    url = f"{endpoints.identitytoolkit}/v1/accounts:sendOobCode"
    return Request("POST", url, params={"key": key}, json=body, idempotent=False)


def sign_in_with_email_link(
    endpoints: Endpoints, email: str, oob_code: str, key: str = FIREBASE_WEB_API_KEY
) -> Request:
    url = f"{endpoints.identitytoolkit}/v1/accounts:signInWithEmailLink"
    body = {"email": email, "oobCode": oob_code}
    return Request("POST", url, params={"key": key}, json=body, idempotent=False)


def google_idp(endpoints: Endpoints, id_token: str) -> Request:
    # CN posts to plus (beta is retired); both serve the same Django app (§3.2 step 4).
    url = f"{endpoints.plus}/dj-rest-auth/google_idp/"
    return Request("POST", url, json={"id_token": id_token}, idempotent=False)


def trpc_login(endpoints: Endpoints, email: str) -> Request:
    body = {"0": {"json": {"email": email}}}
    url = f"{endpoints.web}/api/trpc/auth.login"
    return Request("POST", url, params={"batch": "1"}, json=body, idempotent=False)


def login_polling(endpoints: Endpoints, uuid: str) -> Request:
    return Request("GET", f"{endpoints.web}/login/polling/", params={"uuid": uuid})


# --- responses ---------------------------------------------------------------------------


class _LazyBody(msgspec.Struct):
    success: bool | None = None
    token: str | None = None
    error: Any = None


class _OobBody(msgspec.Struct):
    email: str | None = None


class _SignInBody(msgspec.Struct, rename="camel"):
    id_token: str | None = None


class _KeyBody(msgspec.Struct):
    key: str | None = None
    error: Any = None


class _TrpcErrorData(msgspec.Struct, rename="camel"):
    code: str | None = None
    http_status: int | None = None


class _TrpcErrorJson(msgspec.Struct):
    message: str = ""
    data: _TrpcErrorData | None = None


class _TrpcError(msgspec.Struct):
    json: _TrpcErrorJson | None = None


class _TrpcData(msgspec.Struct):
    json: Any = None


class _TrpcResult(msgspec.Struct):
    data: _TrpcData | None = None


class _TrpcEntry(msgspec.Struct):
    result: _TrpcResult | None = None
    error: _TrpcError | None = None


class _PollingBody(msgspec.Struct):
    result: str | None = None
    value: str | None = None


def parse_lazy_login(body: bytes) -> str:
    """``{"success": true, "token"}`` → the guest token."""
    answer = decode(body, _LazyBody, "/chat/auth/lazy/", in_band=False)
    if answer.success is False or not answer.token:
        raise AuthError(f"guest login refused: {answer.error or 'no token in the answer'}")
    return answer.token


def parse_send_oob_code(body: bytes, email: str) -> None:
    """The answer echoes the e-mail (K1 checks it, §3.2)."""
    answer = decode(body, _OobBody, "sendOobCode", in_band=False)
    if (answer.email or "").lower() != email.lower():
        raise ProtocolError("sendOobCode answered for another e-mail address")


def parse_sign_in(body: bytes) -> str:
    """signInWithEmailLink → the Firebase ``idToken``."""
    token = decode(body, _SignInBody, "signInWithEmailLink", in_band=False).id_token
    if not token:
        raise ProtocolError("signInWithEmailLink answered without an idToken")
    return token


def parse_google_idp(body: bytes) -> str:
    """``{"key": <token>}`` → the character.ai token."""
    answer = decode(body, _KeyBody, "dj-rest-auth/google_idp/", in_band=False)
    if not answer.key:
        raise AuthError(f"character.ai refused the login: {answer.error or 'no key in the answer'}")
    return answer.key


def _trpc_entry_error(entry: _TrpcEntry, status: int) -> CaiError:
    error = entry.error.json if entry.error is not None else None
    message = (error.message if error else "") or "unknown error"
    data = error.data if error is not None else None
    http_status = (data.http_status if data else None) or status
    code = (data.code if data else None) or ""
    if http_status == 429 or code == "TOO_MANY_REQUESTS":
        return RateLimited(f"login refused: {message}")
    if http_status >= 500:
        return ServerError(f"login failed: {message}", status=http_status, body=message)
    return AuthError(f"login refused: {message}")


def parse_trpc_login(body: bytes) -> str:
    """``[{"result": {"data": {"json": "<uuid>"}}}]`` → the polling uuid."""
    entries = decode(body, list[_TrpcEntry], "auth.login", in_band=False)
    if not entries:
        raise ProtocolError("auth.login answered an empty batch")
    entry = entries[0]
    if entry.error is not None:
        raise _trpc_entry_error(entry, 200)
    value = entry.result.data.json if entry.result and entry.result.data else None
    if not isinstance(value, str) or not value:
        raise ProtocolError("auth.login answered without a polling id")
    return value


def parse_login_polling(body: bytes) -> str | None:
    """``{"result": "done", "value": <URL>}`` → the URL; None while still pending.

    Any other ``result`` (the attempt expired or is unknown) is an AuthError.
    """
    answer = decode(body, _PollingBody, "/login/polling/", in_band=False)
    if answer.result == "done":
        if not answer.value:
            raise ProtocolError("/login/polling/ said done without a value")
        return answer.value
    if answer.result in (None, "pending", "waiting"):
        return None
    raise AuthError(f"the login attempt ended: {answer.result}")


# --- the code in a link ------------------------------------------------------------------


class LoginCode(msgspec.Struct, frozen=True):
    """An e-mail sign-in code and the Firebase API key that came with it (if any)."""

    oob_code: str
    api_key: str | None = None


_CODE_IN_TEXT = re.compile(r"[?&]oobCode=([A-Za-z0-9_\-]+)")
_KEY_IN_TEXT = re.compile(r"[?&]apiKey=([A-Za-z0-9_\-]+)")


def _from_url(url: str, depth: int = 0) -> LoginCode | None:
    try:
        query = parse_qs(urlsplit(url).query)
    except ValueError:
        return None
    codes, keys = query.get("oobCode"), query.get("apiKey")
    if codes and codes[0]:
        return LoginCode(codes[0], keys[0] if keys else None)
    if depth < 2:
        # Dynamic links nest the action link in ``link=``; redirects in ``continueUrl=``.
        for name in ("link", "continueUrl", "deep_link_id"):
            for nested in query.get(name, []):
                found = _from_url(nested, depth + 1)
                if found is not None:
                    return found
    return None


def login_code(text: str) -> LoginCode | None:
    """The ``oobCode`` (and ``apiKey``) in a URL, or in a page that embeds the action link
    (the NET path: ``&`` written as ``\\u0026`` or ``&amp;``); None if there is none."""
    found = _from_url(text.strip())
    if found is not None:
        return found
    unescaped = text.replace("\\u0026", "&").replace("&amp;", "&")
    code = _CODE_IN_TEXT.search(unescaped)
    if code is None:
        return None
    key = _KEY_IN_TEXT.search(unescaped)
    return LoginCode(code.group(1), key.group(1) if key else None)


# --- errors ------------------------------------------------------------------------------


class _FirebaseErrorObject(msgspec.Struct):
    message: str = ""
    code: int | None = None


class _FirebaseErrorBody(msgspec.Struct):
    error: _FirebaseErrorObject


_FIREBASE_TEXT = {
    "INVALID_OOB_CODE": "the login link is invalid or was already used",
    "EXPIRED_OOB_CODE": "the login link has expired; ask for a new one",
    "INVALID_EMAIL": "the e-mail address is invalid or is not the one the link was sent to",
    "EMAIL_NOT_FOUND": "there is no account with that e-mail address",
    "USER_DISABLED": "the account is disabled",
}
_FIREBASE_RATE = ("TOO_MANY_ATTEMPTS_TRY_LATER", "QUOTA_EXCEEDED")


def firebase_error(response: Response) -> CaiError | None:
    """The error a Firebase answer stands for (``{"error": {"message": …}}``, §2.4.7)."""
    if 200 <= response.status < 300:
        return None
    try:
        body = msgspec.json.decode(response.body, type=_FirebaseErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return error_for(response)
    message = body.error.message or f"HTTP {response.status}"
    name = re.split(r"[\s:]", message, maxsplit=1)[0]
    if name in _FIREBASE_RATE or response.status == 429:
        return RateLimited(f"Firebase refused the login: {message}")
    if response.status >= 500:
        return ServerError(f"Firebase failed: {message}", status=response.status, body=message)
    text = _FIREBASE_TEXT.get(name)
    return AuthError(f"{text} ({name})" if text else f"Firebase refused the login: {message}")


def trpc_error(response: Response) -> CaiError | None:
    """The error a non-2xx tRPC batch answer stands for (§2.4.6)."""
    if 200 <= response.status < 300:
        return None
    try:
        entries = msgspec.json.decode(response.body, type=list[_TrpcEntry])
    except (msgspec.DecodeError, msgspec.ValidationError):
        return error_for(response)
    for entry in entries:
        if entry.error is not None:
            return _trpc_entry_error(entry, response.status)
    return error_for(response)


def login_error(response: Response) -> CaiError | None:
    """Errors of the Django login views (lazy, google_idp): a 400 ``{"error": …}`` is a
    refused login (AuthError), anything else as usual."""
    if response.status == 400:
        try:
            error = msgspec.json.decode(response.body, type=_KeyBody).error
        except (msgspec.DecodeError, msgspec.ValidationError):
            error = None
        if error is not None:
            return AuthError(f"character.ai refused the login: {error}")
    return error_for(response)


def polling_error(response: Response) -> CaiError | None:
    """Errors of ``/login/polling/``: an unknown attempt (404) is an AuthError."""
    if response.status == 404:
        return AuthError("the login attempt is unknown or has expired; start a new login")
    return error_for(response)
