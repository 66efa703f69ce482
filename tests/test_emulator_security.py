"""The emulator's security model (docs/emulator.md "Security"): per-state secrets, the
control token, the Host allowlist and private state files. Regression tests of issue 10
items 8, 9 and 15, driven by aiohttp's own client."""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from caiclient.emulator import Emulator
from caiclient.emulator.control import is_loopback

HEX40 = re.compile(r"[0-9a-f]{40}")
SECRET = "reproducible-test-secret"


JSON = {"Content-Type": "application/json"}


def control(emu: Emulator) -> dict[str, str]:
    return {"X-Emulator-Control": emu.control_token}


def auth(emu: Emulator) -> dict[str, str]:
    return {"Authorization": f"Token {emu.token}"}


async def id_token(http: aiohttp.ClientSession, emu: Emulator, email: str) -> str:
    """Sign in by e-mail link on ``emu`` and return the Firebase idToken it issued."""
    key = "AIzaSyAbLy_s6hJqVNr2ZN0UHHiCbJX1X8smTws"
    base = f"{emu.url}/identitytoolkit/v1/accounts"
    body = {"requestType": "EMAIL_SIGNIN", "email": email, "continueUrl": f"{emu.url}/web/"}
    async with http.post(f"{base}:sendOobCode", params={"key": key}, json=body) as r:
        assert r.status == 200, await r.text()
    async with http.get(emu.mailbox(email)[-1].link) as r:
        code = r.url.query["oobCode"]
    body = {"email": email, "oobCode": code}
    async with http.post(f"{base}:signInWithEmailLink", params={"key": key}, json=body) as r:
        token: str = (await r.json())["idToken"]
        return token


# ---- item 8: credentials nobody can mint ------------------------------------------------


async def test_defect_08_tokens_and_keys_are_random_per_state(
    http: aiohttp.ClientSession,
) -> None:
    async with Emulator() as first, Emulator() as second:
        for emu in (first, second):
            assert HEX40.fullmatch(emu.token) and HEX40.fullmatch(emu.control_token)
            assert emu.token != emu.control_token
        assert first.token != second.token
        assert first.control_token != second.control_token
        assert first.store.add_user("alice").token != second.store.add_user("alice").token
        # The Firebase signing key differs too: one emulator's idToken is worthless to another.
        forged = await id_token(http, first, "victim@example.com")
        url = f"{second.url}/plus/dj-rest-auth/google_idp/"
        async with http.post(url, json={"id_token": forged}) as r:
            assert (r.status, await r.json()) == (400, {"error": "Invalid id_token"})


async def test_defect_08_a_secret_fixes_every_token(tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(f'{{"secret": "{SECRET}", "users": [{{"username": "alice"}}]}}')
    async with Emulator(secret=SECRET) as a, Emulator(seed=seed_file) as b:
        assert a.token == b.token and a.control_token == b.control_token
        seeded = next(u for u in b.store.users_by_id.values() if u.username == "alice")
        assert a.store.add_user("alice").token == seeded.token
        assert a.store.add_user("bob").token == b.store.add_user("bob").token
    async with Emulator(secret="another-secret") as c:
        assert c.token != a.token


@pytest.mark.parametrize("secret", ["short", "has space in it", "x" * 257, "ünïcödé-secret"])
def test_defect_08_unusable_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        Emulator(secret=secret)
    with pytest.raises(ValueError, match="secret"):
        Emulator(seed={"secret": secret})


async def test_defect_08_a_state_file_keeps_the_secret(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    async with Emulator(state_file=state) as first:
        token, control_token = first.token, first.control_token
        guest = first.store.derive("token:lazy:g1")
    async with Emulator(state_file=state) as second:
        assert (second.token, second.control_token) == (token, control_token)
        assert second.store.derive("token:lazy:g1") == guest  # tokens minted later agree too


async def test_defect_08_the_mailbox_is_not_open(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{emu.url}/__emulator__/mailbox") as r:
        assert r.status == 401
    async with http.get(f"{emu.url}/__emulator__/mailbox", headers=control(emu)) as r:
        assert (r.status, await r.json()) == (200, [])


# ---- item 9: the control plane ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/__emulator__/faults"),
        ("POST", "/__emulator__/faults"),
        ("DELETE", "/__emulator__/faults"),
        ("GET", "/__emulator__/mailbox"),
        ("GET", "/__emulator__/v1/guest_limit"),
        ("POST", "/__emulator__/v1/guest_limit"),
    ],
)
async def test_defect_09_control_routes_need_the_control_token(
    emu: Emulator, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    url = emu.url + path
    async with http.request(method, url) as r:
        assert r.status == 401
        assert "X-Emulator-Control" in (await r.json())["detail"]
    async with http.request(method, url, headers={"X-Emulator-Control": "0" * 40}) as r:
        assert r.status == 403
    assert emu.faults.active == []  # nothing was armed by the refused POSTs


async def test_defect_09_a_cross_site_post_cannot_arm_a_fault(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    url = f"{emu.url}/__emulator__/faults"
    body = '{"kind": "http_status", "status": 503, "times": 1000}'
    # What a web page can send without a preflight: text/plain or a form, no custom header.
    async with http.post(url, data=body, headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 401
    async with http.post(url, data={"kind": "http_status"}) as r:
        assert r.status == 401
    # Even with the token, a body must be JSON.
    headers = {**control(emu), "Content-Type": "text/plain"}
    async with http.post(url, data=body, headers=headers) as r:
        assert r.status == 415
    assert emu.faults.active == []
    async with http.post(url, data=body, headers={**control(emu), **JSON}) as r:
        assert r.status == 201


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:80", "127.0.0.1.nip.io", "10.0.0.1"]
)
async def test_defect_09_foreign_host_headers_are_misdirected(
    emu: Emulator, http: aiohttp.ClientSession, host: str
) -> None:
    for path in ("/neo/ping/", "/plus/chat/user/", "/__emulator__/faults"):
        headers = {"Host": host, "Authorization": f"Token {emu.token}", **control(emu)}
        async with http.get(emu.url + path, headers=headers) as r:
            assert r.status == 421
            assert "DNS rebinding" in (await r.json())["detail"]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(f"{emu.url}/neo/ws/", headers={"Host": host, **auth(emu)})
    assert refused.value.status == 421


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "LOCALHOST", "[::1]"])
async def test_defect_09_loopback_host_headers_are_served(
    emu: Emulator, http: aiohttp.ClientSession, name: str
) -> None:
    for host in (name, f"{name}:{emu.port}", f"{name}:1"):
        async with http.get(f"{emu.url}/neo/ping/", headers={"Host": host}) as r:
            assert r.status == 200


async def test_defect_09_mail_links_ignore_the_host_header(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    body = {"0": {"json": {"email": "me@example.com"}}}
    url = f"{emu.url}/web/api/trpc/auth.login?batch=1"
    async with http.post(url, json=body, headers={"Host": f"localhost:{emu.port}"}) as r:
        assert r.status == 200
    [mail] = emu.mailbox("me@example.com")
    assert mail.link.startswith(f"{emu.url}/web/login/")  # 127.0.0.1, not localhost


async def test_defect_09_a_non_loopback_bind_warns(caplog: pytest.LogCaptureFixture) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.20", "example.com"))
    with caplog.at_level(logging.WARNING, logger="caiclient.emulator"):
        exposed = Emulator(host="0.0.0.0")  # constructed, never started: nothing is bound
    assert not exposed.loopback
    assert any("reachable from other machines" in r.getMessage() for r in caplog.records)
    exposed.persistence.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="caiclient.emulator"):
        assert Emulator().loopback
    assert caplog.records == []


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"kind": "http_status", "status": "abc"}, "status"),
        ({"kind": "http_status", "status": 200}, "status"),
        ({"kind": "http_status", "status": True}, "status"),
        ({"kind": "http_status", "status": 503, "times": 0}, "times"),
        ({"kind": "http_status", "status": 503, "retry_after": "1\r\nX-Injected: 1"}, "retry"),
        ({"kind": "http_status", "status": 503, "retry_after": -5}, "retry_after"),
        ({"kind": "http_status", "status": 503, "path_prefix": "neo"}, "path_prefix"),
        ({"kind": "http_status", "status": 503, "seconds": 1e300}, "seconds"),
        ({"kind": "close_socket", "code": 1006}, "code"),
        ({"kind": "close_socket", "code": "1000"}, "code"),
        ({"kind": "delay_frames", "seconds": "1"}, "seconds"),
        ({"kind": "drop_after", "frames": -1}, "frames"),
        ({"kind": "cloudflare", "rest": "yes"}, "rest"),
        ({"kind": "silence", "seconds": -1}, "seconds"),
        ({"kind": "mutate_json", "path_prefix": "/plus", "add": {"a..b": 1}}, "add"),
        ({"kind": "mutate_json", "path_prefix": "/plus", "remove": "user"}, "remove"),
        ({"kind": "drop_after", "bogus": 1}, "bogus"),
    ],
)
async def test_defect_16_unchecked_fault_specs_are_refused(
    emu: Emulator, http: aiohttp.ClientSession, spec: dict[str, Any], reason: str
) -> None:
    url = f"{emu.url}/__emulator__/faults"
    async with http.post(url, json=spec, headers=control(emu)) as r:
        assert r.status == 400, await r.text()
        assert reason in (await r.json())["detail"]
    assert emu.faults.active == []
    async with http.get(f"{emu.url}/neo/ping/") as r:
        assert r.status == 200  # nothing was armed that could break the server


# ---- item 15: private state files -------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_defect_15_state_files_are_created_0600(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    previous = os.umask(0o022)  # the usual umask, under which files come out 0644
    try:
        async with Emulator(state_file=state) as emu, aiohttp.ClientSession() as http:
            async with http.post(
                f"{emu.url}/plus/chat/user/update/", json={"bio": "hi"}, headers=auth(emu)
            ) as r:
                assert r.status == 200
            files = [state, Path(f"{state}-wal"), Path(f"{state}-shm")]
            assert all(f.exists() for f in files)
            assert [mode(f) for f in files] == [0o600] * 3
    finally:
        os.umask(previous)


async def test_defect_15_an_existing_state_file_is_narrowed(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    state.touch(mode=0o644)
    os.chmod(state, 0o644)
    async with Emulator(state_file=state):
        assert mode(state) == 0o600
