"""Login flows (docs/protocol.md §3): guest tokens, Firebase e-mail links, tRPC + polling.

- Guest: ``POST /beta|plus/chat/auth/lazy/`` ``{"lazy_uuid"}`` → a ``Guest…`` user's token;
  the same ``lazy_uuid`` gets the same guest back.
- Firebase (``/identitytoolkit/v1/accounts:sendOobCode`` and ``:signInWithEmailLink``):
  only the site's public web API key is accepted. ``sendOobCode`` puts a mail in the
  **mailbox** whose link goes through a click-tracker redirect and the Firebase action
  handler to ``continueUrl`` with ``oobCode=…`` in its query. The signed-in ``idToken``
  is an HS256 JWT the emulator can verify; ``dj-rest-auth/google_idp/`` trades it for the
  DRF token of the user with that e-mail (created on first login).
- Current flow: tRPC ``auth.login`` ``{"email"}`` → a polling uuid and a mail linking to
  ``/web/login/<uuid>``; ``GET /web/login/polling/?uuid=`` answers ``{"result": "pending"}``
  until that link is opened, then ``{"result": "done", "value": <action URL with oobCode>}``.
  The page at the link embeds the same URL (NET's path), ``/web/login/jwt`` sets the
  ``web-next-auth`` cookie (holding the DRF token) and ``GET /web/`` with
  ``X-Nextjs-data: 1`` answers the Next.js page props with the token.
- Mailbox: ``GET /__emulator__/mailbox?email=…`` (and ``Emulator.mailbox``).

The records are in :mod:`.store`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
from aiohttp import web

from .._http import DJANGO_PREFIXES, ApiError, json_response
from .._util import b64url, decode_json, new_id
from ..state import STATE
from ..trpc import TrpcCall, TrpcError, add_procedure
from .store import AUTH, CODE_TTL, AuthStore, FirebaseAccount, LoginAttempt

__all__ = ["EDGE_ROLLOUT", "FIREBASE_WEB_API_KEY", "add_routes", "make_id_token", "verify_id_token"]

FIREBASE_WEB_API_KEY = "AIzaSyAbLy_s6hJqVNr2ZN0UHHiCbJX1X8smTws"
"""character.ai's public Firebase web API key (docs/protocol.md §3.2); the only key accepted."""
_PROJECT = "character-ai"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Live hosts a continueUrl may name, mapped to the emulator's prefixes.
_LIVE_HOSTS = {
    "character.ai": "/web",
    "www.character.ai": "/web",
    "beta.character.ai": "/beta",
    "plus.character.ai": "/plus",
}


# ---- helpers ----------------------------------------------------------------------------


def _auth(request: web.Request) -> AuthStore:
    return request.app[AUTH]


def _origin(request: web.Request) -> str:
    """The emulator's own URL: links in mails never come from the request's ``Host``."""
    return request.app[STATE].origin()


def _valid_email(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 254 and bool(_EMAIL.match(value))


def _html(body: str, status: int = 200) -> web.Response:
    page = (
        f"<!DOCTYPE html><html><head><title>character.ai</title></head><body>{body}</body></html>"
    )
    return web.Response(status=status, text=page, content_type="text/html")


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _action_url(origin: str, code: str, continue_url: str) -> str:
    """The Firebase action link; ``oobCode`` is its 2nd parameter (CN reads it so, §3.3)."""
    query = urlencode(
        {
            "mode": "signIn",
            "oobCode": code,
            "apiKey": FIREBASE_WEB_API_KEY,
            "continueUrl": continue_url,
            "lang": "en",
        }
    )
    return f"{origin}/identitytoolkit/__/auth/action?{query}"


def _local_url(url: object, origin: str) -> str | None:
    """``url`` as an emulator URL: live character.ai hosts map to their prefixes; any
    other domain is not allow-listed (None)."""
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" == origin:
        return url
    prefix = _LIVE_HOSTS.get(parts.hostname or "") if parts.scheme == "https" else None
    if prefix is None:
        return None
    local = urlsplit(origin + prefix + parts.path)
    return urlunsplit(local._replace(query=parts.query))


# ---- JWT (Firebase idToken) -------------------------------------------------------------


def _sign(key: bytes, data: bytes) -> str:
    return b64url(hmac.new(key, data, hashlib.sha256).digest())


def make_id_token(key: bytes, account: FirebaseAccount, now: float) -> str:
    """A Firebase-like ``idToken`` (HS256, signed with ``key``, derived from the emulator's
    secret, so nobody without it can mint one for any e-mail)."""
    header = b64url(msgspec.json.encode({"alg": "HS256", "kid": "emulator", "typ": "JWT"}))
    claims = {
        "iss": f"https://securetoken.google.com/{_PROJECT}",
        "aud": _PROJECT,
        "auth_time": int(now),
        "user_id": account.local_id,
        "sub": account.local_id,
        "iat": int(now),
        "exp": int(now + CODE_TTL),
        "email": account.email,
        "email_verified": True,
        "firebase": {"identities": {"email": [account.email]}, "sign_in_provider": "emailLink"},
    }
    payload = b64url(msgspec.json.encode(claims))
    signing_input = f"{header}.{payload}"
    return f"{signing_input}.{_sign(key, signing_input.encode())}"


def verify_id_token(key: bytes, token: object, now: float) -> str | None:
    """The e-mail of a valid, unexpired token made by :func:`make_id_token`, else None."""
    if not isinstance(token, str) or token.count(".") != 2:
        return None
    signing_input, _, signature = token.rpartition(".")
    if not hmac.compare_digest(_sign(key, signing_input.encode()), signature):
        return None
    try:
        payload = signing_input.split(".")[1]
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = decode_json(raw)
    except (ValueError, msgspec.DecodeError):
        return None
    if not isinstance(claims, dict) or claims.get("aud") != _PROJECT:
        return None
    email, exp = claims.get("email"), claims.get("exp")
    if not isinstance(email, str) or not isinstance(exp, int) or exp <= now:
        return None
    return email


# ---- guest ------------------------------------------------------------------------------


async def lazy_login(request: web.Request) -> web.Response:
    """``POST /chat/auth/lazy/`` ``{"lazy_uuid"}`` → ``{"success": true, "token"}`` (§3.1)."""
    body = decode_json(await request.read() or b"{}")
    lazy_uuid = body.get("lazy_uuid") if isinstance(body, dict) else None
    if not isinstance(lazy_uuid, str) or not lazy_uuid.strip():
        raise ApiError(400, {"success": False, "error": "lazy_uuid is required"})
    user = _auth(request).guest(lazy_uuid.strip())
    return json_response({"success": True, "token": user.token})


# ---- Firebase ---------------------------------------------------------------------------


def _firebase_error(message: str, http_status: int = 400, **extra: Any) -> ApiError:
    """Google's error body (docs/protocol.md §2.4.7); ``extra`` adds ``status``/``details``."""
    reason = "invalid" if http_status == 400 else "forbidden"
    error = {
        "code": http_status,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}],
        **extra,
    }
    return ApiError(http_status, {"error": error})


def _check_key(request: web.Request) -> None:
    key = request.query.get("key")
    if not key:
        raise _firebase_error(
            "Method doesn't allow unregistered callers (callers without established "
            "identity). Please use API Key or other form of API consumer identity to call "
            "this API.",
            403,
            status="PERMISSION_DENIED",
        )
    if key != FIREBASE_WEB_API_KEY:
        detail = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "identitytoolkit.googleapis.com"},
        }
        raise _firebase_error(
            "API key not valid. Please pass a valid API key.",
            status="INVALID_ARGUMENT",
            details=[detail],
        )


async def _firebase_body(request: web.Request) -> dict[str, Any]:
    _check_key(request)
    try:
        body = decode_json(await request.read() or b"{}")
    except msgspec.DecodeError:
        body = None
    if not isinstance(body, dict):
        raise _firebase_error("Invalid JSON payload received.", status="INVALID_ARGUMENT")
    return body


def _email_of(body: dict[str, Any]) -> str:
    email = body.get("email")
    if email is None or email == "":
        raise _firebase_error("MISSING_EMAIL")
    if not _valid_email(email):
        raise _firebase_error("INVALID_EMAIL")
    return str(email)


async def send_oob_code(request: web.Request) -> web.Response:
    """``POST /v1/accounts:sendOobCode?key=`` (EMAIL_SIGNIN only): mail a sign-in link."""
    body = await _firebase_body(request)
    if body.get("requestType") != "EMAIL_SIGNIN":
        raise _firebase_error("INVALID_REQ_TYPE : Unsupported request parameters.")
    email = _email_of(body)
    origin = _origin(request)
    if not body.get("continueUrl"):
        raise _firebase_error("MISSING_CONTINUE_URI")
    continue_url = _local_url(body["continueUrl"], origin)
    if continue_url is None:
        raise _firebase_error("UNAUTHORIZED_DOMAIN : Domain not allowlisted by project")
    store = _auth(request)
    code = store.new_code(email)
    # The mail's link goes through a click tracker, as real mails' links do; only the
    # redirects reveal the code (K1 takes it from the final URL, §3.2).
    mail_id = new_id()
    store.add_click(mail_id, _action_url(origin, code.code, continue_url))
    link = f"{origin}/__emulator__/click/{mail_id}"
    store.send_mail(email, "Sign in to character.ai", link, mail_id=mail_id)
    return json_response({"kind": "identitytoolkit#GetOobConfirmationCodeResponse", "email": email})


async def sign_in_with_email_link(request: web.Request) -> web.Response:
    """``POST /v1/accounts:signInWithEmailLink?key=`` ``{"email", "oobCode"}`` → idToken."""
    body = await _firebase_body(request)
    email = _email_of(body)
    code = body.get("oobCode")
    if not isinstance(code, str) or not code:
        raise _firebase_error("MISSING_OOB_CODE")
    store = _auth(request)
    problem = store.redeem(code, email)
    if problem is not None:
        raise _firebase_error(problem)
    account, is_new = store.account(email)
    now = time.time()
    refresh = b64url(hashlib.sha256(f"refresh:{account.local_id}:{new_id()}".encode()).digest())
    return json_response(
        {
            "kind": "identitytoolkit#EmailLinkSigninResponse",
            "idToken": make_id_token(store.jwt_key, account, now),
            "email": email,
            "refreshToken": f"AMf-v{refresh}",
            "expiresIn": str(int(CODE_TTL)),
            "localId": account.local_id,
            "isNewUser": is_new,
        }
    )


async def action_handler(request: web.Request) -> web.Response:
    """The Firebase action link: redirect to ``continueUrl`` carrying the code (§3.2)."""
    query = request.query
    continue_url = _local_url(query.get("continueUrl"), _origin(request))
    if query.get("mode") != "signIn" or not query.get("oobCode") or continue_url is None:
        return _html("<p>The link is invalid.</p>", 400)
    params = {
        "apiKey": query.get("apiKey", ""),
        "oobCode": query["oobCode"],
        "mode": "signIn",
        "lang": query.get("lang", "en"),
    }
    raise web.HTTPFound(_with_query(continue_url, params))


async def google_idp(request: web.Request) -> web.Response:
    """``POST /dj-rest-auth/google_idp/`` ``{"id_token"}`` → ``{"key": <DRF token>}``."""
    body = decode_json(await request.read() or b"{}")
    token = body.get("id_token") if isinstance(body, dict) else None
    if not token:
        raise ApiError(400, {"error": "id_token is required"})
    email = verify_id_token(_auth(request).jwt_key, token, time.time())
    if email is None:
        raise ApiError(400, {"error": "Invalid id_token"})
    return json_response({"key": _auth(request).user_for_email(email).token})


# ---- tRPC + polling (§3.3) --------------------------------------------------------------


async def trpc_login(call: TrpcCall) -> str:
    """``auth.login`` ``{"email"}`` → the polling uuid; mails the link ``/web/login/<uuid>``."""
    email = call.input.get("email") if isinstance(call.input, dict) else None
    if not _valid_email(email):
        raise TrpcError("Invalid email", 400)
    store = call.request.app[AUTH]
    origin = _origin(call.request)
    attempt = store.new_attempt(str(email), origin)
    store.send_mail(str(email), "Sign in to character.ai", f"{origin}/web/login/{attempt.uuid}")
    return attempt.uuid


def _attempt_value(attempt: LoginAttempt) -> str:
    continue_url = f"{attempt.origin}/web/?email={attempt.email}"
    return _action_url(attempt.origin, attempt.code, continue_url)


async def login_polling(request: web.Request) -> web.Response:
    """``GET /login/polling/?uuid=`` → pending | done (with the action URL) | expired."""
    uuid = request.query.get("uuid", "")
    attempt = _auth(request).attempts.get(uuid)
    if attempt is None:
        return json_response({"result": "not_found"}, 404)
    if time.time() - attempt.issued > _auth(request).code_ttl:
        return json_response({"result": "expired"})
    if not attempt.clicked:
        return json_response({"result": "pending"})
    return json_response({"result": "done", "value": _attempt_value(attempt)})


async def login_link(request: web.Request) -> web.Response:
    """The mail link ``/login/<uuid>``: marks the attempt done; the page embeds the action
    URL in Next.js flight data, ``&`` escaped as ``\\u0026`` (NET reads it, §3.3)."""
    store = _auth(request)
    attempt = store.attempts.get(request.match_info["uuid"])
    if attempt is None:
        return _html("<p>This login link is not valid.</p>", 404)
    store.click(attempt)
    # A JS string literal; the URL is percent-encoded, so it holds no "<" to escape.
    literal = json.dumps(f'5:"{_attempt_value(attempt)}"').replace("&", "\\u0026")
    flight = f"self.__next_f.push([1,{literal}])"
    return _html(f"<p>You are signed in. Go back to the app.</p><script>{flight}</script>")


async def login_jwt(request: web.Request) -> web.Response:
    """``/login/jwt?googleJwt=&uuid=`` → sets ``web-next-auth`` (the emulator puts the DRF
    token in it, which its tRPC router accepts)."""
    store = _auth(request)
    uuid = request.query.get("uuid")
    email = verify_id_token(store.jwt_key, request.query.get("googleJwt"), time.time())
    if email is None or (uuid and uuid not in store.attempts):
        return _html("<p>Sign-in failed.</p>", 400)
    user = store.user_for_email(email)
    response = _html("<p>Signed in.</p>")
    response.set_cookie("web-next-auth", user.token, path="/", httponly=True, samesite="Lax")
    return response


EDGE_ROLLOUT = "60"
"""The ``edge_rollout`` cookie the web root sets (§1.2: its purpose is unknown; clients
read it with ``edge_rollout=([^;]+)`` and send it back on the socket; N2's fallback is 60)."""


async def web_root(request: web.Request) -> web.Response:
    """``GET /`` of character.ai: HTML, or with ``X-Nextjs-data: 1`` the page props,
    which carry the token when the ``web-next-auth`` cookie names a user. Every answer sets
    the ``edge_rollout`` cookie."""
    response = _web_root(request)
    response.set_cookie("edge_rollout", EDGE_ROLLOUT, path="/", samesite="Lax")
    return response


def _web_root(request: web.Request) -> web.Response:
    if request.headers.get("X-Nextjs-data") is None:
        return _html("<p>character.ai (emulated)</p>")
    user = request.app[STATE].store.users_by_token.get(request.cookies.get("web-next-auth", ""))
    if user is None:
        return json_response({"pageProps": {}})
    inner = {
        "id": int(user.id),
        "username": user.username,
        "account": {"avatar_file_name": user.avatar_file_name},
    }
    props = {"token": user.token, "user": {"user": inner, "email": user.email}}
    return json_response({"pageProps": props})


async def landing(request: web.Request) -> web.Response:
    """The old sites' front pages, where ``continueUrl`` redirects may land."""
    return _html("<p>character.ai (emulated)</p>")


# ---- emulator control -------------------------------------------------------------------


async def mailbox(request: web.Request) -> web.Response:
    """``GET /__emulator__/mailbox[?email=]`` → the mails sent (to that address)."""
    mails = _auth(request).mailbox(request.query.get("email"))
    return json_response(mails)


async def click(request: web.Request) -> web.Response:
    """A mail's tracked link: redirect to the Firebase action link it stands for."""
    found = _auth(request).clicks.get(request.match_info["mail_id"])
    if found is None:
        return _html("<p>Unknown link.</p>", 404)
    raise web.HTTPFound(found.target)


def add_routes(app: web.Application) -> None:
    """Add the login routes (both Django prefixes, ``/identitytoolkit``, ``/web``) and the
    ``auth.login`` tRPC procedure."""
    add_procedure(app, "auth.login", trpc_login)
    for prefix in DJANGO_PREFIXES:
        app.router.add_post(f"{prefix}/chat/auth/lazy/", lazy_login)
        app.router.add_post(f"{prefix}/dj-rest-auth/google_idp/", google_idp)
        app.router.add_get(f"{prefix}/", landing)
        app.router.add_get(prefix, landing)
    add_post, add_get = app.router.add_post, app.router.add_get
    add_post("/identitytoolkit/v1/accounts:sendOobCode", send_oob_code)
    add_post("/identitytoolkit/v1/accounts:signInWithEmailLink", sign_in_with_email_link)
    add_get("/identitytoolkit/__/auth/action", action_handler)
    add_get("/web/login/polling/", login_polling)
    add_get("/web/login/polling", login_polling)
    add_get("/web/login/jwt", login_jwt)
    add_get("/web/login/{uuid}", login_link)
    add_get("/web/", web_root)
    add_get("/web", web_root)
    add_get("/__emulator__/mailbox", mailbox)
    add_get("/__emulator__/click/{mail_id}", click)
