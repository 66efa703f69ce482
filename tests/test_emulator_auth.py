"""The emulator's login flows (PROTOCOL.md §3), driven by aiohttp, not caiclient."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import aiohttp
import pytest

from caiclient.emulator import Emulator
from caiclient.emulator.auth import AUTH

KEY = "AIzaSyAbLy_s6hJqVNr2ZN0UHHiCbJX1X8smTws"
HEX40 = re.compile(r"^[0-9a-f]{40}$")


async def post_json(
    http: aiohttp.ClientSession, url: str, body: Any, **kwargs: Any
) -> tuple[int, Any]:
    response = await http.post(url, json=body, **kwargs)
    return response.status, await response.json(content_type=None)


async def me(http: aiohttp.ClientSession, emu: Emulator, token: str) -> dict[str, Any]:
    response = await http.get(
        f"{emu.url}/plus/chat/user/", headers={"Authorization": f"Token {token}"}
    )
    assert response.status == 200
    data: dict[str, Any] = (await response.json())["user"]
    return data


def firebase(emu: Emulator, method: str, key: str | None = KEY) -> str:
    query = f"?key={key}" if key is not None else ""
    return f"{emu.url}/identitytoolkit/v1/accounts:{method}{query}"


def oob_body(email: str, continue_url: str = "https://character.ai") -> dict[str, Any]:
    return {
        "requestType": "EMAIL_SIGNIN",
        "email": email,
        "clientType": "CLIENT_TYPE_WEB",
        "continueUrl": continue_url,
        "canHandleCodeInApp": True,
    }


async def code_for(http: aiohttp.ClientSession, emu: Emulator, email: str) -> str:
    """Request a sign-in mail and follow its link to the URL holding the code."""
    status, body = await post_json(http, firebase(emu, "sendOobCode"), oob_body(email))
    assert status == 200, body
    response = await http.get(emu.mailbox(email)[-1].link)
    await response.read()
    return parse_qs(response.url.query_string)["oobCode"][0]


async def id_token_for(http: aiohttp.ClientSession, emu: Emulator, email: str) -> str:
    code = await code_for(http, emu, email)
    status, body = await post_json(
        http, firebase(emu, "signInWithEmailLink"), {"email": email, "oobCode": code}
    )
    assert status == 200, body
    token: str = body["idToken"]
    return token


# ---- guest ------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/beta", "/plus"])
async def test_lazy_login_makes_a_guest(
    emu: Emulator, http: aiohttp.ClientSession, prefix: str
) -> None:
    url = f"{emu.url}{prefix}/chat/auth/lazy/"
    status, body = await post_json(http, url, {"lazy_uuid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"})
    assert status == 200
    assert set(body) == {"success", "token"}
    assert body["success"] is True
    assert HEX40.match(body["token"])
    user = await me(http, emu, body["token"])
    assert user["user"]["username"].startswith("Guest")
    assert user["user"]["id"] != int(emu.user_id)
    _, again = await post_json(http, url, {"lazy_uuid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"})
    assert again["token"] == body["token"]
    _, other = await post_json(http, url, {"lazy_uuid": "another"})
    assert other["token"] != body["token"]


async def test_lazy_login_errors(emu: Emulator, http: aiohttp.ClientSession) -> None:
    url = f"{emu.url}/beta/chat/auth/lazy/"
    for body in ({}, {"lazy_uuid": ""}, {"lazy_uuid": 5}, [1]):
        status, answer = await post_json(http, url, body)
        assert status == 400
        assert answer == {"success": False, "error": "lazy_uuid is required"}
    response = await http.post(url, data=b"{oops")
    assert response.status == 400


# ---- Firebase ---------------------------------------------------------------------------


async def test_send_oob_code_mails_a_redirecting_link(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    status, body = await post_json(http, firebase(emu, "sendOobCode"), oob_body("Me@Example.com"))
    assert status == 200
    assert body == {
        "kind": "identitytoolkit#GetOobConfirmationCodeResponse",
        "email": "Me@Example.com",
    }
    [mail] = emu.mailbox("me@example.com")
    assert mail.link.startswith(f"{emu.url}/")
    assert "oobCode" not in mail.link
    assert emu.mailbox("someone@else.com") == []
    response = await http.get(
        f"{emu.url}/__emulator__/mailbox",
        params={"email": "ME@example.com"},
        headers={"X-Emulator-Control": emu.control_token},
    )
    assert await response.json() == [
        {
            "id": mail.id,
            "email": "me@example.com",
            "subject": mail.subject,
            "link": mail.link,
            "sent": mail.sent,
        }
    ]
    response = await http.get(mail.link)
    assert response.status == 200
    assert len(response.history) == 2  # Click tracker, then the Firebase action handler.
    assert str(response.url).startswith(f"{emu.url}/web")  # https://character.ai → /web
    query = dict(parse_qsl(response.url.query_string))
    assert query["apiKey"] == KEY
    assert query["mode"] == "signIn"
    assert len(query["oobCode"]) > 20


async def test_continue_url_on_the_old_beta_maps_to_its_prefix(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    body = oob_body("k1@example.com", "https://beta.character.ai")
    assert (await post_json(http, firebase(emu, "sendOobCode"), body))[0] == 200
    response = await http.get(emu.mailbox("k1@example.com")[-1].link)
    assert response.status == 200
    assert response.url.path == "/beta"
    assert "oobCode" in response.url.query


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"email": "not-an-email"}, "INVALID_EMAIL"),
        ({"email": None}, "MISSING_EMAIL"),
        ({"requestType": "PASSWORD_RESET"}, "INVALID_REQ_TYPE : Unsupported request parameters."),
        (
            {"continueUrl": "https://evil.example.com/"},
            "UNAUTHORIZED_DOMAIN : Domain not allowlisted by project",
        ),
        ({"continueUrl": None}, "MISSING_CONTINUE_URI"),
    ],
)
async def test_send_oob_code_errors(
    emu: Emulator, http: aiohttp.ClientSession, change: dict[str, Any], message: str
) -> None:
    body = {**oob_body("me@example.com"), **change}
    status, answer = await post_json(http, firebase(emu, "sendOobCode"), body)
    assert status == 400
    assert answer["error"]["code"] == 400
    assert answer["error"]["message"] == message
    assert answer["error"]["errors"][0]["message"] == message
    assert emu.mailbox("me@example.com") == []


async def test_api_key_checks(emu: Emulator, http: aiohttp.ClientSession) -> None:
    status, answer = await post_json(
        http, firebase(emu, "sendOobCode", "AIzaWrong"), oob_body("me@example.com")
    )
    assert status == 400
    assert answer["error"]["status"] == "INVALID_ARGUMENT"
    assert answer["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    status, answer = await post_json(
        http, firebase(emu, "signInWithEmailLink", None), {"email": "a@b.co", "oobCode": "x"}
    )
    assert status == 403
    assert answer["error"]["status"] == "PERMISSION_DENIED"
    response = await http.post(firebase(emu, "sendOobCode"), data=b"{nope")
    assert response.status == 400
    assert (await response.json())["error"]["status"] == "INVALID_ARGUMENT"
    assert emu.mailbox("me@example.com") == []


async def test_sign_in_with_email_link(emu: Emulator, http: aiohttp.ClientSession) -> None:
    code = await code_for(http, emu, "new@example.com")
    status, body = await post_json(
        http, firebase(emu, "signInWithEmailLink"), {"email": "new@example.com", "oobCode": code}
    )
    assert status == 200
    assert set(body) >= {"idToken", "email", "refreshToken", "expiresIn", "localId", "isNewUser"}
    assert body["email"] == "new@example.com"
    assert body["isNewUser"] is True
    assert body["expiresIn"] == "3600"
    _header, payload, _signature = body["idToken"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["email"] == "new@example.com"
    assert claims["sub"] == body["localId"]
    # The code is single-use; a second code for the same address is not a new user.
    status, body = await post_json(
        http, firebase(emu, "signInWithEmailLink"), {"email": "new@example.com", "oobCode": code}
    )
    assert (status, body["error"]["message"]) == (400, "INVALID_OOB_CODE")
    code = await code_for(http, emu, "new@example.com")
    _, body = await post_json(
        http, firebase(emu, "signInWithEmailLink"), {"email": "NEW@example.com", "oobCode": code}
    )
    assert body["isNewUser"] is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"email": "other@example.com", "oobCode": "CODE"}, "INVALID_EMAIL"),
        ({"email": "me@example.com", "oobCode": "unknown"}, "INVALID_OOB_CODE"),
        ({"email": "me@example.com"}, "MISSING_OOB_CODE"),
        ({"oobCode": "CODE"}, "MISSING_EMAIL"),
    ],
)
async def test_sign_in_errors(
    emu: Emulator, http: aiohttp.ClientSession, body: dict[str, Any], message: str
) -> None:
    code = await code_for(http, emu, "me@example.com")
    body = {k: (code if v == "CODE" else v) for k, v in body.items()}
    status, answer = await post_json(http, firebase(emu, "signInWithEmailLink"), body)
    assert (status, answer["error"]["message"]) == (400, message)


async def test_expired_code(emu: Emulator, http: aiohttp.ClientSession) -> None:
    code = await code_for(http, emu, "me@example.com")
    emu.app[AUTH].code_ttl = -1.0
    status, answer = await post_json(
        http, firebase(emu, "signInWithEmailLink"), {"email": "me@example.com", "oobCode": code}
    )
    assert (status, answer["error"]["message"]) == (400, "EXPIRED_OOB_CODE")


@pytest.mark.parametrize("prefix", ["/plus", "/beta"])
async def test_google_idp_gives_one_user_per_email(
    emu: Emulator, http: aiohttp.ClientSession, prefix: str
) -> None:
    url = f"{emu.url}{prefix}/dj-rest-auth/google_idp/"
    status, body = await post_json(
        http, url, {"id_token": await id_token_for(http, emu, "fresh@example.com")}
    )
    assert status == 200
    assert set(body) == {"key"}
    assert HEX40.match(body["key"])
    user = await me(http, emu, body["key"])
    assert user["email"] == "fresh@example.com"
    assert user["user"]["id"] != int(emu.user_id)
    _, again = await post_json(
        http, url, {"id_token": await id_token_for(http, emu, "Fresh@Example.com")}
    )
    assert again["key"] == body["key"]
    _, seed = await post_json(
        http, url, {"id_token": await id_token_for(http, emu, f"{emu.username}@example.com")}
    )
    assert seed["key"] == emu.token


async def test_google_idp_errors(emu: Emulator, http: aiohttp.ClientSession) -> None:
    url = f"{emu.url}/plus/dj-rest-auth/google_idp/"
    good = await id_token_for(http, emu, "me@example.com")
    head, payload, _ = good.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["email"] = f"{emu.username}@example.com"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    for token in (f"{head}.{forged_payload}.{good.split('.')[2]}", "a.b.c", "nonsense"):
        assert await post_json(http, url, {"id_token": token}) == (
            400,
            {"error": "Invalid id_token"},
        )
    assert await post_json(http, url, {}) == (400, {"error": "id_token is required"})


# ---- tRPC + polling ---------------------------------------------------------------------


async def trpc_login(http: aiohttp.ClientSession, emu: Emulator, email: str) -> str:
    status, body = await post_json(
        http,
        f"{emu.url}/web/api/trpc/auth.login?batch=1",
        {"0": {"json": {"email": email, "host": "https://character.ai"}}},
    )
    assert status == 200, body
    attempt: str = body[0]["result"]["data"]["json"]
    return attempt


async def poll(http: aiohttp.ClientSession, emu: Emulator, attempt: str) -> tuple[int, Any]:
    response = await http.get(f"{emu.url}/web/login/polling/", params={"uuid": attempt})
    return response.status, await response.json()


async def test_polling_login(emu: Emulator, http: aiohttp.ClientSession) -> None:
    attempt = await trpc_login(http, emu, "poll@example.com")
    [mail] = emu.mailbox("poll@example.com")
    assert mail.link == f"{emu.url}/web/login/{attempt}"
    assert await poll(http, emu, attempt) == (200, {"result": "pending"})
    assert await poll(http, emu, attempt) == (200, {"result": "pending"})
    page = await http.get(mail.link)
    assert page.status == 200
    status, body = await poll(http, emu, attempt)
    assert status == 200
    assert body["result"] == "done"
    value = body["value"]
    assert value.startswith(f"{emu.url}/identitytoolkit/__/auth/action?")
    params = parse_qsl(urlsplit(value).query)
    assert params[1][0] == "oobCode"  # CN takes the 2nd parameter.
    assert dict(params)["apiKey"] == KEY
    status, _ = await post_json(
        http,
        firebase(emu, "signInWithEmailLink"),
        {"email": "poll@example.com", "oobCode": params[1][1]},
    )
    assert status == 200
    # The action link itself redirects to continueUrl with the code.
    response = await http.get(value)
    assert response.status == 200
    assert "oobCode" in response.url.query


async def test_polling_errors(emu: Emulator, http: aiohttp.ClientSession) -> None:
    assert await poll(http, emu, "nope") == (404, {"result": "not_found"})
    status, body = await post_json(
        http, f"{emu.url}/web/api/trpc/auth.login?batch=1", {"0": {"json": {"email": "nope"}}}
    )
    assert status == 400
    error = body[0]["error"]["json"]
    assert error["data"]["code"] == "BAD_REQUEST"
    assert error["data"]["path"] == "auth.login"
    assert emu.mailbox("nope") == []
    response = await http.get(f"{emu.url}/web/login/not-an-attempt")
    assert response.status == 404


async def test_link_page_jwt_cookie_and_page_props(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    attempt = await trpc_login(http, emu, "net@example.com")
    page = await (await http.get(emu.mailbox("net@example.com")[-1].link)).text()
    match = re.search(r"oobCode=([A-Za-z0-9_-]+)\\u0026apiKey=([A-Za-z0-9_-]+)", page)
    assert match is not None
    assert "continueUrl=" in page and "email%3Dnet%40example.com" in page
    code, key = match.groups()
    assert key == KEY
    _, signed = await post_json(
        http,
        firebase(emu, "signInWithEmailLink"),
        {"email": "net@example.com", "oobCode": code},
    )
    # unsafe=True: the jar keeps cookies of IP-address hosts such as 127.0.0.1.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as fresh:
        response = await fresh.get(
            f"{emu.url}/web/login/jwt",
            params={"googleJwt": signed["idToken"], "uuid": attempt, "open_mobile": "false"},
        )
        assert response.status == 200
        cookie = response.cookies["web-next-auth"].value
        assert cookie
        response = await fresh.get(f"{emu.url}/web/", headers={"X-Nextjs-data": "1"})
        props = (await response.json())["pageProps"]
    assert HEX40.match(props["token"])
    assert props["user"]["email"] == "net@example.com"
    assert set(props["user"]["user"]) == {"id", "username", "account"}
    user = await me(http, emu, props["token"])
    assert user["email"] == "net@example.com"
    # No cookie: no token; a bad googleJwt sets none.
    async with aiohttp.ClientSession() as fresh:
        response = await fresh.get(f"{emu.url}/web/", headers={"X-Nextjs-data": "1"})
        assert await response.json() == {"pageProps": {}}
        response = await fresh.get(f"{emu.url}/web/login/jwt", params={"googleJwt": "x.y.z"})
        assert response.status == 400
        assert "web-next-auth" not in response.cookies
    response = await http.get(f"{emu.url}/web/")
    assert response.content_type == "text/html"


@pytest.mark.parametrize("headers", [{}, {"X-Nextjs-data": "1"}])
async def test_web_root_sets_a_numeric_edge_rollout_cookie(
    emu: Emulator, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    response = await http.get(f"{emu.url}/web/", headers=headers)
    assert response.status == 200
    header = response.headers["Set-Cookie"]
    # The regex two maintained JS clients read it with (PROTOCOL.md §1.2).
    found = re.search(r"edge_rollout=([^;]+)", header)
    assert found is not None and found.group(1).isdigit(), header
    assert "Path=/" in header


async def test_auth_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    async with Emulator(state_file=state) as emu, aiohttp.ClientSession() as http:
        _, guest = await post_json(http, f"{emu.url}/beta/chat/auth/lazy/", {"lazy_uuid": "g"})
        id_token = await id_token_for(http, emu, "kept@example.com")
        _, key = await post_json(
            http, f"{emu.url}/plus/dj-rest-auth/google_idp/", {"id_token": id_token}
        )
        attempt = await trpc_login(http, emu, "later@example.com")
        mails = emu.mailbox("kept@example.com")
    async with Emulator(state_file=state) as emu, aiohttp.ClientSession() as http:
        assert (await me(http, emu, guest["token"]))["user"]["username"].startswith("Guest")
        assert (await me(http, emu, key["key"]))["email"] == "kept@example.com"
        assert emu.mailbox("kept@example.com") == mails
        assert await poll(http, emu, attempt) == (200, {"result": "pending"})
        _, again = await post_json(
            http,
            f"{emu.url}/plus/dj-rest-auth/google_idp/",
            {"id_token": await id_token_for(http, emu, "kept@example.com")},
        )
        assert again["key"] == key["key"]


async def test_mailbox_needs_a_running_emulator() -> None:
    with pytest.raises(RuntimeError):
        Emulator().mailbox("a@b.co")
