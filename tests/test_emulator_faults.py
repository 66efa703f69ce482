"""Fault injection (``emu.faults`` and ``/__emulator__/faults``): every kind, its healing,
and the checks of a spec. Driven by aiohttp's own client, and by caiclient where the point
is how a client copes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from caiclient import AsyncClient, AuthError, BlockedError, RateLimited, ServerError
from caiclient.emulator import Emulator

WS = aiohttp.ClientWebSocketResponse


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f'HTTP_AUTHORIZATION="Token {token}"'}


async def recv(ws: WS, timeout: float = 5) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    frame: dict[str, Any] = json.loads(msg.data)
    return frame


def create_chat(emu: Emulator, request_id: str) -> str:
    payload = {"chat": {"character_id": emu.character("Echo").id}, "with_greeting": False}
    return json.dumps({"command": "create_chat", "request_id": request_id, "payload": payload})


async def test_rest_faults_heal_after_their_count(emu: Emulator) -> None:
    emu.faults.http_status(503, times=2)
    url = f"{emu.url}/plus/chat/user/"
    headers = {"Authorization": f"Token {emu.token}"}
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.get(url, headers=headers) as response:
                assert response.status == 503
        async with session.get(url, headers=headers) as response:
            assert response.status == 200
        assert emu.faults.active == []


async def test_faults_over_http(emu: Emulator) -> None:
    control = f"{emu.url}/__emulator__/faults"
    headers = {"X-Emulator-Control": emu.control_token}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(
            control, json={"kind": "http_status", "status": 429, "retry_after": 7}
        ) as r:
            assert r.status == 201
        async with session.get(control) as r:
            listed = await r.json()
        assert [f["status"] for f in listed["faults"]] == [429]
        async with session.get(f"{emu.url}/neo/ping/") as r:
            assert r.status == 429
            assert r.headers["Retry-After"] == "7"
        async with session.post(control, json={"kind": "teleport"}) as r:
            assert r.status == 400
        async with session.post(
            control, json={"kind": "http_status", "status": 500, "bogus": 1}
        ) as r:
            assert r.status == 400
        async with session.post(control, json={"kind": "cloudflare"}) as r:
            assert r.status == 201
        async with session.delete(control) as r:
            assert (await r.json()) == {"faults": []}


async def test_client_retries_transient_rest_failures(emu: Emulator, client: AsyncClient) -> None:
    emu.faults.http_status(503, times=2)
    me = await client.account.me()
    assert me.id == emu.user_id
    emu.faults.http_status(429, times=1, retry_after=0)
    assert (await client.account.me()).id == emu.user_id


async def test_client_gives_up_on_persistent_failures(emu: Emulator, client: AsyncClient) -> None:
    emu.faults.http_status(503, times=50)
    with pytest.raises(ServerError) as caught:
        await client.account.me(timeout=3)
    assert caught.value.status == 503
    emu.faults.clear()
    emu.faults.http_status(429, retry_after=3600)
    with pytest.raises(RateLimited) as limited:
        await client.account.me()
    assert limited.value.retry_after == 3600


async def test_cloudflare_block_is_not_an_auth_error(emu: Emulator, client: AsyncClient) -> None:
    emu.faults.cloudflare(times=1)
    with pytest.raises(BlockedError) as caught:
        await client.account.me()
    assert not isinstance(caught.value, AuthError)
    assert caught.value.ray


# ---- silence ------------------------------------------------------------------------------


async def test_silence_until_cleared(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.silence()
    async with http.ws_connect(f"{emu.url}/neo/ws/", headers=cookie(emu.token)) as sock:
        await sock.send_str("{}")
        await sock.send_str(create_chat(emu, "quiet"))
        with pytest.raises(asyncio.TimeoutError):
            await sock.receive(timeout=0.3)  # no keepalive answer, no reply
        emu.faults.clear()
        await sock.send_str(create_chat(emu, "heard"))
        assert (await recv(sock))["request_id"] == "heard"
    # The fault counted one socket: the next one is served at once.
    async with http.ws_connect(f"{emu.url}/neo/ws/", headers=cookie(emu.token)) as sock:
        await sock.send_str(create_chat(emu, "next"))
        assert (await recv(sock))["request_id"] == "next"


async def test_silence_for_some_seconds(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.silence(0.2)
    async with http.ws_connect(f"{emu.url}/neo/ws/", headers=cookie(emu.token)) as sock:
        await sock.send_str(create_chat(emu, "quiet"))
        with pytest.raises(asyncio.TimeoutError):
            await sock.receive(timeout=0.4)  # outlasts the silence
        await sock.send_str(create_chat(emu, "heard"))
        assert (await recv(sock))["request_id"] == "heard"
    # The silent request was carried out all the same; only its answer was swallowed.
    headers = {"Authorization": f"Token {emu.token}"}
    async with http.get(f"{emu.url}/neo/chats/recent/", headers=headers) as r:
        assert len((await r.json())["chats"]) == 2


# ---- mutate_json --------------------------------------------------------------------------


async def test_mutate_json_adds_and_removes_nested_keys(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.faults.mutate_json(
        "/plus/chat/user/",
        add={"user.user.new_flag": True, "user.brand_new.deep": [1, 2], "top": None},
        remove=["user.user.is_staff", "user.bio", "user.missing.key", "nothing"],
        times=1,
    )
    headers = {"Authorization": f"Token {emu.token}"}
    async with http.get(f"{emu.url}/plus/chat/user/", headers=headers) as r:
        drifted = await r.json()
    async with http.get(f"{emu.url}/plus/chat/user/", headers=headers) as r:
        normal = await r.json()
    assert drifted["user"]["user"]["new_flag"] is True
    assert drifted["user"]["brand_new"] == {"deep": [1, 2]} and drifted["top"] is None
    assert "is_staff" not in drifted["user"]["user"] and "bio" not in drifted["user"]
    assert normal["user"]["user"]["is_staff"] is False and "new_flag" not in normal["user"]["user"]
    assert emu.faults.active == []


async def test_mutate_json_leaves_other_paths_and_non_objects_alone(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    control = {"X-Emulator-Control": emu.control_token}
    spec = {"kind": "mutate_json", "path_prefix": "/neo/", "add": {"x": 1}, "times": 2}
    async with http.post(f"{emu.url}/__emulator__/faults", json=spec, headers=control) as r:
        assert r.status == 201
        assert (await r.json())["fault"]["add"] == {"x": 1}
    headers = {"Authorization": f"Token {emu.token}"}
    async with http.get(f"{emu.url}/plus/chat/user/", headers=headers) as r:
        assert "x" not in await r.json()  # another path
    async with http.get(f"{emu.url}/neo/ping/") as r:
        assert await r.json() == {"status": "pong", "x": 1}
    async with http.get(f"{emu.url}/neo/ping/") as r:
        assert await r.json() == {"status": "pong", "x": 1}
    async with http.get(f"{emu.url}/neo/ping/") as r:
        assert await r.json() == {"status": "pong"}  # healed after its two answers


async def test_a_client_copes_with_schema_drift(emu: Emulator, client: AsyncClient) -> None:
    emu.faults.mutate_json("/plus/chat/user/", add={"user.user.brand_new": {"a": [1]}}, times=5)
    me = await client.account.me()
    assert me.username == emu.username


# ---- checks of a spec in the Python API ---------------------------------------------------


@pytest.mark.parametrize(
    ("arm", "field"),
    [
        (lambda f: f.http_status("abc"), "status"),
        (lambda f: f.http_status(503, times=True), "times"),
        (lambda f: f.delay_frames(float("nan")), "seconds"),
        (lambda f: f.delay_frames(float("inf")), "seconds"),
        (lambda f: f.close_socket(1005), "code"),
        (lambda f: f.silence(-0.1), "seconds"),
        (lambda f: f.mutate_json("/", add={"": 1}), "add"),
        (lambda f: f.mutate_json("/", add={"a": object()}), "add"),
        (lambda f: f.mutate_json("neo", add={"a": 1}), "path_prefix"),
    ],
)
def test_fault_specs_are_checked_when_armed(emu: Emulator, arm: Any, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        arm(emu.faults)
    assert emu.faults.active == []
