"""The aiohttp transport: the client's end-to-end behaviours over it, and its error mapping."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import BodyPartReader, web

from caiclient import AsyncClient, AuthError, Chat, ChatNotFound, Endpoints, User
from caiclient._transport import HandshakeRefused
from caiclient._transport.aiohttp import AiohttpTransport
from caiclient.emulator import Emulator
from caiclient.errors import Disconnected, Timeout, TransportError
from caiclient.protocol.http import Request


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncClient]:
    transport = AiohttpTransport()
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url), transport=transport) as c:
        yield c


# --- the client over aiohttp, against the emulator -------------------------------------------


async def test_send_and_history(emu: Emulator, client: AsyncClient) -> None:
    me = await client.account.me()
    assert me.id == emu.user_id
    echo = emu.character("Echo")
    chat, greeting = await client.chats.create(echo.id, greeting=False)
    assert greeting is None
    turn = await client.chats.send(chat, "over aiohttp")
    assert turn.text.startswith("over aiohttp")
    assert turn.is_final
    assert turn.chat_id == chat.chat_id
    history = await client.chats.history(chat)
    assert [t.text for t in history if t.is_human] == ["over aiohttp"]


async def test_stream_deltas_concatenate(emu: Emulator, client: AsyncClient) -> None:
    chat, _ = await client.chats.create(emu.character("Sage").id, greeting=False)
    chunks = [c async for c in client.chats.stream(chat, "What is patience?")]
    assert len(chunks) == 5
    assert [c.final for c in chunks] == [False] * 4 + [True]
    assert "".join(c.delta for c in chunks) == chunks[-1].turn.text


async def test_concurrent_sends_are_routed(emu: Emulator, client: AsyncClient) -> None:
    echo = emu.character("Echo")
    chats = [c for c, _ in await asyncio.gather(*(client.chats.create(echo.id) for _ in range(10)))]

    async def one(i: int) -> None:
        chat = chats[i % 10]
        turn = await client.chats.send(chat, f"message {i}")
        assert turn.text.startswith(f"message {i}")
        assert turn.chat_id == chat.chat_id

    await asyncio.gather(*(one(i) for i in range(100)))
    assert client._core.socket.in_flight == 0
    assert client._core.socket.connects == 1


async def test_unknown_chat_is_chat_not_found(emu: Emulator, client: AsyncClient) -> None:
    ghost = Chat(chat_id="00000000-0000-4000-8000-000000000000", character_id=emu.characters[0].id)
    with pytest.raises(ChatNotFound):
        await client.chats.send(ghost, "hello?")


async def test_wrong_token_is_an_auth_error(emu: Emulator) -> None:
    async with AsyncClient(
        "0" * 40, endpoints=Endpoints.local(emu.url), transport=AiohttpTransport()
    ) as client:
        with pytest.raises(AuthError):
            await client.account.me()


async def test_ws_403_with_a_wrong_token_is_an_auth_error(emu: Emulator) -> None:
    async with AsyncClient(
        emu.token, endpoints=Endpoints.local(emu.url), transport=AiohttpTransport()
    ) as good:
        user: User = await good.account.me()
    chat = Chat(chat_id="00000000-0000-4000-8000-000000000000", character_id="x")
    async with AsyncClient(
        "0" * 40, endpoints=Endpoints.local(emu.url), transport=AiohttpTransport()
    ) as client:
        client._core._user = user  # Only the socket sees the bad token.
        with pytest.raises(AuthError):
            await client.chats.send(chat, "hello")


async def test_refused_upgrade_carries_the_status(emu: Emulator) -> None:
    transport = AiohttpTransport()
    try:
        with pytest.raises(HandshakeRefused) as caught:
            await transport.ws_connect(
                Endpoints.local(emu.url).neo_ws,
                headers={"Cookie": 'HTTP_AUTHORIZATION="Token nope"'},
                timeout=5,
            )
        assert caught.value.status == 403
    finally:
        await transport.aclose()


async def test_abort_drops_the_socket_and_the_client_reconnects(
    emu: Emulator, client: AsyncClient
) -> None:
    chat, _ = await client.chats.create(emu.character("Echo").id, greeting=False)
    socket_ = client._core.socket
    ws, reader = socket_._ws, socket_._reader
    assert ws is not None
    assert reader is not None
    ws.abort()
    await asyncio.wait_for(reader, 5)  # The reader sees the drop as Disconnected and ends.
    # The next send waits for the background reconnect and then succeeds.
    turn = await client.chats.send(chat, "after the drop", timeout=10)
    assert turn.text.startswith("after the drop")
    assert socket_.drops == 1
    assert socket_.connects == 2


async def test_recv_after_server_close_is_disconnected(emu: Emulator) -> None:
    transport = AiohttpTransport()
    try:
        ws = await transport.ws_connect(
            Endpoints.local(emu.url).neo_ws,
            headers={"Cookie": f'HTTP_AUTHORIZATION="Token {emu.token}"'},
            timeout=5,
        )
        await ws.send(b"{}")
        assert json.loads(await ws.recv()) == {}
        await ws.close()
        with pytest.raises(Disconnected):
            await ws.recv()
        with pytest.raises(Disconnected):
            await ws.send(b"{}")
    finally:
        await transport.aclose()


# --- error mapping against a tiny local server -----------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[str]:
    release = asyncio.Event()

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {"method": request.method, "query": dict(request.query), "body": body.decode()},
            headers={"X-Mixed-Case": "yes"},
        )

    async def slow(request: web.Request) -> web.Response:
        await release.wait()  # Until teardown: longer than any timeout the tests use.
        return web.Response(text="late")

    async def teapot(request: web.Request) -> web.Response:
        return web.Response(status=418, text="short and stout")

    async def form(request: web.Request) -> web.Response:
        parts = []
        async for part in await request.multipart():
            assert isinstance(part, BodyPartReader)
            data = await part.read()
            parts.append([part.name, part.filename, part.headers.get("Content-Type"), data.hex()])
        return web.json_response(parts)

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"X-Kind": "chunked"})
        await response.prepare(request)
        for i in range(int(request.query.get("n", "3"))):
            await response.write(f"piece {i};".encode())
        if "stall" in request.query:
            await release.wait()
        await response.write_eof()
        return response

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/chunked?n=2")

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/slow", slow)
    app.router.add_get("/ws", teapot)
    app.router.add_post("/form", form)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/moved", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        release.set()
        await runner.cleanup()


async def test_request_sends_json_and_params(server: str) -> None:
    transport = AiohttpTransport()
    try:
        response = await transport.request(
            Request("POST", f"http://{server}/echo", params={"a": "1"}, json={"x": [1, "é"]}),
            headers={"Authorization": "Token t"},
            timeout=5,
        )
    finally:
        await transport.aclose()
    assert response.status == 200
    assert response.headers["x-mixed-case"] == "yes"
    answer = json.loads(response.body)
    assert answer["method"] == "POST"
    assert answer["query"] == {"a": "1"}
    assert json.loads(answer["body"]) == {"x": [1, "é"]}


async def test_slow_answer_is_a_timeout(server: str) -> None:
    transport = AiohttpTransport()
    try:
        with pytest.raises(Timeout):
            await transport.request(
                Request("GET", f"http://{server}/slow"), headers={}, timeout=0.2
            )
    finally:
        await transport.aclose()


async def test_upgrade_answered_with_a_status_is_refused(server: str) -> None:
    transport = AiohttpTransport()
    try:
        with pytest.raises(HandshakeRefused) as caught:
            await transport.ws_connect(f"ws://{server}/ws", headers={}, timeout=5)
        assert caught.value.status == 418
    finally:
        await transport.aclose()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_refused_connection_is_a_transport_error() -> None:
    port = _closed_port()
    transport = AiohttpTransport()
    try:
        with pytest.raises(TransportError) as caught:
            await transport.request(
                Request("GET", f"http://127.0.0.1:{port}/"), headers={}, timeout=5
            )
        assert not isinstance(caught.value, Timeout)
        with pytest.raises(TransportError) as caught_ws:
            await transport.ws_connect(f"ws://127.0.0.1:{port}/ws", headers={}, timeout=5)
        assert not isinstance(caught_ws.value, HandshakeRefused)
    finally:
        await transport.aclose()


async def test_multipart_parts_arrive_as_given(server: str) -> None:
    parts = (
        ("image", "a.png", "image/png", b"\x89PNG\x00\x01"),
        ("note", None, None, b"plain"),
    )
    transport = AiohttpTransport()
    try:
        response = await transport.request(
            Request("POST", f"http://{server}/form", multipart=parts), headers={}, timeout=5
        )
    finally:
        await transport.aclose()
    assert response.status == 200
    got = json.loads(response.body)
    assert got[0] == ["image", "a.png", "image/png", b"\x89PNG\x00\x01".hex()]
    assert got[1][0] == "note"
    assert got[1][3] == b"plain".hex()


async def test_stream_follows_redirects_and_yields_the_body(server: str) -> None:
    transport = AiohttpTransport()
    try:
        async with transport.stream(
            Request("GET", f"http://{server}/moved"), headers={}, timeout=5
        ) as response:
            assert response.status == 200
            assert response.headers["x-kind"] == "chunked"
            assert response.url.endswith("/chunked?n=2")
            body = b"".join([chunk async for chunk in response.chunks])
        assert body == b"piece 0;piece 1;"
    finally:
        await transport.aclose()


async def test_leaving_a_stream_early_releases_it(server: str) -> None:
    transport = AiohttpTransport()
    try:
        async with transport.stream(
            Request("GET", f"http://{server}/chunked", params={"stall": "1"}),
            headers={},
            timeout=5,
        ) as response:
            first = await response.chunks.__anext__()
            assert first.startswith(b"piece 0;")
        # The stalled transfer was dropped: the same transport still works at once.
        again = await transport.request(
            Request("GET", f"http://{server}/chunked"), headers={}, timeout=5
        )
        assert again.body == b"piece 0;piece 1;piece 2;"
    finally:
        await transport.aclose()


async def test_a_stalled_stream_times_out(server: str) -> None:
    transport = AiohttpTransport()
    try:
        async with transport.stream(
            Request("GET", f"http://{server}/chunked", params={"stall": "1"}),
            headers={},
            timeout=0.3,
        ) as response:
            with pytest.raises(Timeout):
                async for _ in response.chunks:
                    pass
    finally:
        await transport.aclose()


async def test_stream_to_a_closed_port_is_a_transport_error() -> None:
    port = _closed_port()
    transport = AiohttpTransport()
    try:
        with pytest.raises(TransportError):
            async with transport.stream(
                Request("GET", f"http://127.0.0.1:{port}/"), headers={}, timeout=5
            ):
                pass  # pragma: no cover - the connection is refused
    finally:
        await transport.aclose()
