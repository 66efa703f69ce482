"""``cai serve``: through ``main(argv)`` in-process for what ends at once, and as a real
process (it runs until stopped) with the official ``openai`` client against it."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import openai
import pytest
from aiohttp import web

import caiclient.bridge as bridge
from bridge_util import Bridge, Ops, bridge_on, sqlite_url, texts
from caiclient import AsyncClient, CaiError, Endpoints, RateLimited, TransportError, ValidationError
from caiclient.bridge import BridgeConfig, create_app, running
from caiclient.cli import main
from caiclient.emulator import Emulator


def test_the_bridge_errors_are_importable_from_one_place() -> None:
    assert issubclass(bridge.WireError, ValidationError)
    assert issubclass(bridge.StateUnavailable, TransportError)
    assert issubclass(bridge.Busy, RateLimited)
    assert all(issubclass(e, CaiError) for e in (bridge.WireError, bridge.Busy))
    assert {"Busy", "StateUnavailable", "WireError"} <= set(bridge.__all__)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "::"])
def test_a_public_address_without_a_key_is_a_usage_error(
    host: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAI_SERVE_API_KEY", raising=False)
    monkeypatch.delenv("CAI_TOKEN", raising=False)  # refused before any login is needed
    assert main(["serve", "--host", host]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("cai: usage: refusing to listen on")
    assert "CAI_SERVE_API_KEY" in err and "Traceback" not in err


def test_help_names_the_contract_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--state", "--api-key", "CAI_SERVE_API_KEY"):
        assert option in out


@asynccontextmanager
async def cai_serve(
    emu: Emulator, tmp_path: Path, *argv: str, key: str | None = None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, list[str]]]:
    """``cai serve`` as a process on the emulator's account; (process, base URL, banner)."""
    env = {
        **os.environ,
        "CAI_BASE_URL": emu.url,
        "CAI_TOKEN": emu.token,
        "CAI_CONFIG_DIR": str(tmp_path / "config"),
        "CAI_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("CAI_SERVE_API_KEY", None)
    if key is not None:
        env["CAI_SERVE_API_KEY"] = key
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "caiclient.cli", "serve", "--port", "0", *argv,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        banner: list[str] = []
        while not banner or not banner[-1].lstrip().startswith("models:"):  # its last line
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert line, "cai serve ended before it listened"
            banner.append(line.rstrip("\n"))
        url = banner[0].split()[4]
        assert url.startswith("http://127.0.0.1:")
        yield process, url, banner
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_cai_serve_answers_the_openai_client_and_stops_cleanly(
    emu: Emulator, tmp_path: Path
) -> None:
    state = tmp_path / "bridge.sqlite3"
    echo = emu.character("Echo").id
    async with cai_serve(emu, tmp_path, "--state", f"sqlite:///{state}") as (proc, url, banner):
        assert f"{url}/v1" in "\n".join(banner)  # how to point a client at it
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="anything") as oa:
            reply = await oa.chat.completions.create(
                model=echo, messages=[{"role": "user", "content": "Hi from openai"}]
            )
            assert (reply.choices[0].message.content or "").startswith("Hi from openai")
            stream = await oa.chat.completions.create(
                model=echo,
                messages=[{"role": "user", "content": "And a stream"}],
                stream=True,
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream])
            assert text.startswith("And a stream")
            assert echo in [m.id for m in (await oa.models.list()).data]
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert proc.stdout is not None and proc.stderr is not None
        out = "\n".join(banner) + (await proc.stdout.read()).decode()
        err = (await proc.stderr.read()).decode()
    assert emu.token not in out and emu.token not in err  # never the c.ai token
    assert "cai serve: stopped" in err and "Traceback" not in err
    # Closed cleanly: the state file carries no mark of a crash.
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT count(*) FROM bridge_open").fetchone() == (0,)


async def test_the_api_key_can_come_from_the_environment(emu: Emulator, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 'keyed.sqlite3'}"
    async with cai_serve(emu, tmp_path, "--state", state, key="s3cret-key") as (proc, url, banner):
        assert "s3cret-key" not in "\n".join(banner)
        models = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
        async with models as wrong:
            with pytest.raises(openai.AuthenticationError):
                await wrong.models.list()
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="s3cret-key") as right:
            assert (await right.models.list()).data is not None
        proc.send_signal(signal.SIGTERM)  # as a service manager stops it
        assert await asyncio.wait_for(proc.wait(), 30) == 0


def test_the_readme_cai_serve_example_runs() -> None:
    # Marked apart from the `<!-- example: NAME -->` blocks of tests/test_readme.py.
    import re
    import subprocess

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- cai-serve example -->\n```python\n(.*?)```", readme, re.DOTALL)
    assert found is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAI_")}
    env["CAI_EMULATOR_CHUNK_DELAY"] = "0"
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", found.group(1)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "['echo']" in done.stdout  # the alias is listed
    assert "Hello, cai serve" in done.stdout  # Echo's reply, streamed
    assert done.stderr == ""


# --- the bridge app's security and plumbing (in-process, real sockets on loopback) ----------

KEY = "bridge-key-0123"
# Every route that needs the key, with and without the /v1 prefix ("{echo}": the model id).
KEYED_ROUTES = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/chat/completions"),
    ("GET", "/v1/models"),
    ("GET", "/models"),
    ("GET", "/v1/models/{echo}"),
    ("GET", "/models/{echo}"),
    ("GET", "//v1//models"),  # doubled slashes are served too
    ("GET", "/metrics"),
]


def say(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


async def call(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, dict[str, str], bytes]:
    async with http.request(method, url, **kwargs) as response:
        return response.status, dict(response.headers), await response.read()


async def test_the_api_key_is_needed_on_every_route_but_health(
    emu: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ops = Ops(caplog)
    wrong = [None, "Bearer wrong", f"Basic {KEY}", f"Bearer {KEY}x", f"Bearer {KEY[:-1]}", KEY]
    async with (
        bridge_on(emu, sqlite_url(tmp_path), api_key=KEY, metrics=True) as b,
        aiohttp.ClientSession() as http,
    ):
        body = {"model": b.echo, "messages": [say("Let me in")]}
        for method, path in KEYED_ROUTES:
            url = b.url + path.format(echo=b.echo)
            for auth in wrong:
                headers = {} if auth is None else {"Authorization": auth}
                status, got, raw = await call(http, method, url, json=body, headers=headers)
                assert (path, auth, status) == (path, auth, 401)
                assert got["Content-Type"].startswith("application/json")
                assert msgspec.json.decode(raw) == {
                    "error": {
                        "message": "missing or wrong API key (Authorization: Bearer <key>)",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                }
        assert ops() == []  # nothing reached c.ai
        assert await b.client.chats.recent(b.echo) == []
        status, _, raw = await call(http, "GET", b.url + "/health")  # no key needed
        assert status == 200 and msgspec.json.decode(raw)["status"] == "ok"
        for method, path in KEYED_ROUTES:
            url = b.url + path.format(echo=b.echo)
            auth = {"Authorization": f"Bearer {KEY}"}
            status, _, raw = await call(http, method, url, json=body, headers=auth)
            assert (path, status) == (path, 200), raw
        assert ops() == ["create", "stream", "regenerate"]  # the two accepted completions
    # The official clients see the refusal as AuthenticationError with OpenAI's code.
    async with (
        bridge_on(emu, sqlite_url(tmp_path / "2"), api_key=KEY) as b,
        openai.AsyncOpenAI(base_url=b.v1, api_key="wrong", max_retries=0) as oa,
    ):
        with pytest.raises(openai.AuthenticationError) as refused:
            await oa.chat.completions.create(model=b.echo, messages=[say("x")])  # type: ignore[list-item]
        assert refused.value.code == "invalid_api_key"
        sync = openai.OpenAI(base_url=b.v1, api_key="wrong", max_retries=0)
        with sync, pytest.raises(openai.AuthenticationError):
            await asyncio.to_thread(sync.models.retrieve, b.echo)


def cors_of(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower().startswith("access-control-")}


async def test_cors_is_off_by_default(emu: Emulator, tmp_path: Path) -> None:
    async with bridge_on(emu, sqlite_url(tmp_path)) as b, aiohttp.ClientSession() as http:
        page = {"Origin": "https://ui.example"}
        body = {"model": b.echo, "messages": [say("From a web page")]}
        for stream in (False, True):
            status, got, _ = await call(
                http, "POST", b.v1 + "/chat/completions",
                json={**body, "stream": stream}, headers=page,
            )  # fmt: skip
            assert (status, cors_of(got)) == (200, {})  # answered, but a browser hides it
        for path in ("/v1/models", "/health", "/v1/nowhere"):
            status, got, _ = await call(http, "GET", b.url + path, headers=page)
            assert cors_of(got) == {}, path
        asked = {**page, "Access-Control-Request-Method": "POST"}
        asked["Access-Control-Request-Headers"] = "authorization, content-type"
        for path in ("/v1/chat/completions", "/chat/completions", "/v1/models"):
            status, got, _ = await call(http, "OPTIONS", b.url + path, headers=asked)
            assert (status, cors_of(got)) == (403, {}), path  # preflight refused


async def test_cors_allowlist(
    emu: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ops = Ops(caplog)
    allowed = ["https://ui.example", "http://localhost:3000"]
    async with (
        bridge_on(emu, sqlite_url(tmp_path), api_key=KEY, cors=allowed) as b,
        aiohttp.ClientSession() as http,
    ):
        auth = {"Authorization": f"Bearer {KEY}"}
        for origin in allowed:
            asked = {
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, x-session-id, "
                "x-stainless-os, x-stainless-retry-count",
            }
            # The preflight needs no key (a browser never sends one with it).
            status, got, _ = await call(http, "OPTIONS", b.v1 + "/chat/completions", headers=asked)
            assert status == 204
            assert got["Access-Control-Allow-Origin"] == origin and got["Vary"] == "Origin"
            assert "POST" in got["Access-Control-Allow-Methods"]
            allow = {h.strip() for h in got["Access-Control-Allow-Headers"].split(",")}
            assert {"authorization", "content-type", "x-session-id", "x-conversation-id"} <= allow
            assert {"x-openwebui-chat-id", "x-stainless-os", "x-stainless-retry-count"} <= allow
            # The answers themselves carry the origin, errors included (so a page can read them).
            page = {"Origin": origin}
            for stream in (False, True):
                status, got, raw = await call(
                    http, "POST", b.v1 + "/chat/completions", headers={**page, **auth},
                    json={"model": b.echo, "stream": stream, "messages": [say(origin)]},
                )  # fmt: skip
                assert status == 200, raw
                assert got.get("Access-Control-Allow-Origin") == origin, stream
            for headers in ({**page, **auth}, page):  # models, and the 401 without a key
                status, got, _ = await call(http, "GET", b.v1 + "/models", headers=headers)
                assert (status, got.get("Access-Control-Allow-Origin")) in {
                    (200, origin),
                    (401, origin),
                }
        assert ops() == ["create", "stream", "regenerate", "create", "stream", "regenerate"]
        for origin in (
            "https://evil.example",
            "https://ui.example.evil",
            "null",
            "http://localhost:3001",
        ):
            asked = {"Origin": origin, "Access-Control-Request-Method": "POST"}
            status, got, _ = await call(http, "OPTIONS", b.v1 + "/chat/completions", headers=asked)
            assert (status, cors_of(got)) == (403, {}), origin
            status, got, _ = await call(
                http, "GET", b.v1 + "/models", headers={"Origin": origin, **auth}
            )
            assert (status, cors_of(got)) == (200, {}), origin


async def exchanges(b: Bridge, http: aiohttp.ClientSession) -> list[tuple[str, int, str]]:
    """(what, status, every header and the body as text) of each kind of answer."""
    auth = {"Authorization": f"Bearer {KEY}"}
    chat = {"model": b.echo, "messages": [say("Who am I?")]}
    stream = {**chat, "stream": True}
    asks: list[tuple[str, str, str, dict[str, Any]]] = [
        ("health", "GET", "/health", {}),
        ("models", "GET", "/v1/models", {"headers": auth}),
        ("model", "GET", f"/v1/models/{b.echo}", {"headers": auth}),
        ("unknown model", "GET", "/v1/models/no-such-character", {"headers": auth}),
        ("completion", "POST", "/v1/chat/completions", {"headers": auth, "json": chat}),
        ("stream", "POST", "/v1/chat/completions", {"headers": auth, "json": stream}),
        ("bad request", "POST", "/v1/chat/completions", {"headers": auth, "json": {"n": 9}}),
        ("wrong key", "GET", "/v1/models", {"headers": {"Authorization": "Bearer no"}}),
        ("no route", "GET", "/v1/nowhere", {"headers": auth}),
        ("wrong method", "GET", "/v1/chat/completions", {"headers": auth}),
        ("metrics", "GET", "/metrics", {"headers": auth}),
    ]  # fmt: skip
    out = []
    for what, method, path, kwargs in asks:
        status, headers, raw = await call(http, method, b.url + path, **kwargs)
        out.append((what, status, repr(headers) + raw.decode()))
    return out


async def test_the_cai_token_never_reaches_an_http_client(
    emu: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        bridge_on(emu, sqlite_url(tmp_path), api_key=KEY, metrics=True) as b,
        aiohttp.ClientSession() as http,
    ):
        seen = await exchanges(b, http)
        assert [s for _, s, _ in seen] == [200, 200, 200, 404, 200, 200, 400, 401, 404, 405, 200]
        # Upstream failures: a REST error, then Cloudflare on the socket, mid-conversation.
        emu.faults.http_status(500, times=10)
        status, headers, raw = await call(
            http, "GET", f"{b.v1}/models/{emu.character('Sage').id}",
            headers={"Authorization": f"Bearer {KEY}"},
        )  # fmt: skip
        seen.append(("upstream 500", status, repr(headers) + raw.decode()))
        emu.faults.clear()
        emu.faults.cloudflare(rest=False)
        emu.faults.drop_after(0, times=3)
        again = [say("Who am I?"), {"role": "assistant", "content": "x"}, say("again")]
        status, headers, raw = await call(
            http, "POST", b.v1 + "/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
            json={"model": b.echo, "stream": True, "messages": again},
        )  # fmt: skip
        seen.append(("upstream blocked", status, repr(headers) + raw.decode()))
    assert [s for _, s, _ in seen[-2:]] == [502, 502]
    assert len(emu.token) >= 32
    for what, status, text in seen:
        assert emu.token not in text, (what, status)
        assert emu.token[:16] not in text, (what, status)
    assert emu.token not in caplog.text  # nor in the logs


async def test_a_refused_cai_token_is_not_echoed_either(
    emu: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "5f2b" * 10  # the form of a real token, unknown to the emulator
    async with (
        AsyncClient(token, endpoints=Endpoints.local(emu.url)) as client,
        running(create_app(client, state=sqlite_url(tmp_path), api_key=KEY, metrics=True)) as url,
        aiohttp.ClientSession() as http,
    ):
        b = Bridge(url, web.Application(), client, emu, emu.character("Echo").id)
        seen = await exchanges(b, http)
    statuses = {what: status for what, status, _ in seen}
    answers = {what: text for what, _, text in seen}
    assert statuses["health"] == 503 and '"token":"invalid"' in answers["health"]
    assert statuses["completion"] == statuses["stream"] == 401
    assert '"code":"upstream_auth"' in answers["completion"]
    for what, status, text in seen:
        assert token not in text and token[:16] not in text, (what, status)
    assert token not in caplog.text


class Chats(Ops):
    """The c.ai chat of each operation since the last call: [(operation, chat id)]."""

    def chats(self) -> list[tuple[str, str]]:
        records = [r for r in self.caplog.records if r.name == "caiclient.bridge.ops"]
        new, self.seen = records[self.seen :], len(records)
        out = []
        for record in new:
            op, _, rest = record.getMessage().partition(" ")
            fields = dict(f.split("=", 1) for f in rest.split() if "=" in f)
            out.append((op, fields.get("chat", "")))
        return out


def conversation(where: str, value: str) -> dict[str, Any]:
    """The openai client's keywords that send conversation id ``value`` in ``where``."""
    if where == "conversation_id":
        return {"extra_body": {"conversation_id": value}}
    if where == "metadata":
        return {"metadata": {"conversation_id": value}}
    return {"extra_headers": {where: value}}


async def ask_openai(
    oa: openai.AsyncOpenAI, model: str, messages: list[dict[str, str]], **kwargs: Any
) -> tuple[str, str]:
    """(X-Bridge-Action, reply text) of one completion made with the openai client."""
    raw = await oa.chat.completions.with_raw_response.create(
        model=model,
        messages=messages,  # type: ignore[arg-type]
        **kwargs,
    )
    return raw.headers["X-Bridge-Action"], raw.parse().choices[0].message.content or ""


@pytest.mark.parametrize(
    "where",
    ["X-Session-Id", "X-Conversation-Id", "X-OpenWebUI-Chat-Id", "conversation_id", "metadata"],
)
async def test_a_conversation_id_binds_one_chat(
    emu: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    ops = Chats(caplog)
    async with (
        bridge_on(emu, sqlite_url(tmp_path)) as b,
        openai.AsyncOpenAI(base_url=b.v1, api_key="unused", max_retries=0) as oa,
    ):
        one, two = conversation(where, "conv-one"), conversation(where, "conv-two")
        action, a1 = await ask_openai(oa, b.echo, [say("Hi")], **one)
        assert action == "first_contact+new_turn"
        [(create, _), (stream, chat_one)] = ops.chats()
        assert (create, stream) == ("create", "stream")
        # The same words under another id: another conversation, another chat (without
        # ids this request would be a swipe of the first chat's reply).
        action, b1 = await ask_openai(oa, b.echo, [say("Hi")], **two)
        assert action == "first_contact+new_turn"
        [(create, _), (stream, chat_two)] = ops.chats()
        assert (create, stream, chat_two != chat_one) == ("create", "stream", True)
        action, _ = await ask_openai(oa, b.echo, [say("Hi"), reply_of(a1), say("More")], **one)
        assert (action, ops.chats()) == ("new_turn", [("stream", chat_one)])
        action, b1_swipe = await ask_openai(oa, b.echo, [say("Hi")], **two)
        assert (action, ops.chats()) == ("swipe", [("regenerate", chat_two)])
        first = texts(await b.client.chats.history(chat_one, all_candidates=True))
        second = texts(await b.client.chats.history(chat_two, all_candidates=True))
        assert {c.chat_id for c in await b.client.chats.recent(b.echo)} == {chat_one, chat_two}
    assert [who for who, _ in first] == ["char", "user", "char", "user", "char"]
    assert first[1:4] == [("user", ["Hi"]), ("char", [a1]), ("user", ["More"])]
    assert second[1:] == [("user", ["Hi"]), ("char", [b1_swipe, b1])]


async def test_a_conversation_header_wins_over_the_body(
    emu: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ops = Chats(caplog)
    async with bridge_on(emu, sqlite_url(tmp_path)) as b:
        both = {"conversation_id": "in-body", "model": b.echo, "messages": [say("Hi")]}
        status, headers, _ = await b.post(both, {"X-Session-Id": "in-header"})
        assert (status, headers["X-Bridge-Action"]) == (200, "first_contact+new_turn")
        [(_, chat)] = ops.chats()[1:]
        # The body's id was not used: it starts a conversation of its own ...
        status, headers, _ = await b.post({**both, "conversation_id": "in-body"})
        assert headers["X-Bridge-Action"] == "first_contact+new_turn"
        [(_, other)] = ops.chats()[1:]
        assert other != chat
        # ... and the header's id is the first chat's conversation.
        status, headers, _ = await b.post(
            {**both, "conversation_id": None}, {"X-Session-Id": "in-header"}
        )
        assert (headers["X-Bridge-Action"], ops.chats()) == ("swipe", [("regenerate", chat)])


def reply_of(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


CARD = {"role": "system", "content": "You are Echo, who repeats what is said."}
PERSONA = {"role": "system", "content": "[The user is Ada, a sailor.]"}


@pytest.mark.parametrize("policy", ["ignore", "first_message"])
async def test_the_system_prompt_policy(
    emu: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture, policy: Any
) -> None:
    ops = Ops(caplog)
    config = BridgeConfig(system=policy)
    async with bridge_on(emu, sqlite_url(tmp_path), config=config) as b:

        async def step(messages: list[dict[str, str]]) -> tuple[str, list[str], str]:
            status, headers, raw = await b.post({"model": b.echo, "messages": messages})
            assert status == 200, raw
            content = msgspec.json.decode(raw)["choices"][0]["message"]["content"]
            return headers["X-Bridge-Action"], ops(), content

        action, done, a1 = await step([CARD, PERSONA, say("Hi")])
        assert (action, done) == ("first_contact+new_turn", ["create", "stream"])
        # The reply edited in the front end: the chat's history is read, and still matches
        # the dialogue (its first message is not what c.ai holds with "first_message").
        dialogue = [CARD, PERSONA, say("Hi"), reply_of("Rewritten by hand."), say("More")]
        action, done, a2 = await step(dialogue)
        assert (action, done) == ("refresh+edit+new_turn", ["history", "edit", "stream"])
        # Another system text later on is not sent either way: the chat has begun.
        changed = {"role": "system", "content": "You are Echo, now cheerful."}
        dialogue = [changed, *dialogue[2:], reply_of(a2), say("Third")]
        assert (await step(dialogue))[:2] == ("new_turn", ["stream"])
        assert len(await b.client.chats.recent(b.echo)) == 1
        chat = texts(await b.history())
    first = (
        f"{CARD['content']}\n\n{PERSONA['content']}\n\nHi" if policy == "first_message" else "Hi"
    )
    assert [text for who, text in chat if who == "user"] == [[first], ["More"], ["Third"]]
    assert a1.startswith(first)  # Echo repeats what it was sent
    assert chat[2][1] == ["Rewritten by hand.", a1]
    assert "cheerful" not in str(chat)
