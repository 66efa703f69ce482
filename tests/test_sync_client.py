"""The synchronous Client: same surface as AsyncClient, on a private loop thread."""

from __future__ import annotations

import asyncio
import gc
import inspect
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import caiclient
from caiclient import AsyncClient, Client, Endpoints, ValidationError
from caiclient.emulator import Emulator
from caiclient.emulator.background import BackgroundEmulator

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with BackgroundEmulator() as emu:
        yield emu


@pytest.fixture
def client(server: Emulator) -> Iterator[Client]:
    with Client(server.token, endpoints=Endpoints.local(server.url)) as c:
        yield c


def _surface(obj: object) -> dict[str, dict[str, tuple[str, ...]]]:
    """namespace -> method -> (parameter descriptions..., return annotation), async erased."""
    surface: dict[str, dict[str, tuple[str, ...]]] = {}
    for attr, namespace in vars(obj).items():
        if attr.startswith("_"):
            continue
        methods: dict[str, tuple[str, ...]] = {}
        for name, fn in inspect.getmembers(type(namespace), inspect.isfunction):
            if name.startswith("_"):
                continue
            sig = inspect.signature(fn)
            params = tuple(
                f"{p.name}:{p.kind.name}:{p.default!r}:{p.annotation}"
                for p in sig.parameters.values()
            )
            returns = str(sig.return_annotation).replace("AsyncIterator", "Iterator")
            methods[name] = (*params, returns)
        surface[attr] = methods
    return surface


def test_generated_sync_module_is_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_sync.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_sync_surface_matches_async_surface() -> None:
    async_client = AsyncClient("t" * 40, endpoints=Endpoints.local("http://127.0.0.1:9"))
    sync_client = Client("t" * 40, endpoints=Endpoints.local("http://127.0.0.1:9"))
    try:
        theirs, ours = _surface(async_client), _surface(sync_client)
        assert set(theirs) == set(ours)
        assert theirs == ours
        assert sum(len(m) for m in ours.values()) >= 6
        init_async = inspect.signature(AsyncClient.__init__)
        init_sync = inspect.signature(Client.__init__)
        assert str(init_async) == str(init_sync)
    finally:
        sync_client.close()
        # The async client never opened anything; nothing to close on a loop.
        del async_client


def test_send_stream_and_history(server: Emulator, client: Client) -> None:
    chat, greeting = client.chats.create(server.character("Echo").id)
    assert greeting is not None
    turn = client.chats.send(chat, "plain and simple")
    assert turn.text.startswith("plain and simple")
    chunks = list(client.chats.stream(chat, "streamed"))
    assert chunks[-1].final
    assert "".join(c.delta for c in chunks) == chunks[-1].text
    history = client.chats.history(chat)
    assert [t.text for t in history if t.is_human] == ["plain and simple", "streamed"]
    with pytest.raises(ValidationError):
        client.chats.stream(chat, "  ")


def test_threads_share_one_client_and_get_their_own_replies(
    server: Emulator, client: Client
) -> None:
    echo = server.character("Echo").id
    chats = [client.chats.create(echo, greeting=False)[0] for _ in range(8)]

    def one(i: int) -> tuple[str, str]:
        text = f"thread message {i}"
        return text, client.chats.send(chats[i % len(chats)], text).text

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(one, range(64)))
    assert all(reply.startswith(text) for text, reply in results)
    assert client._async._core.socket.connects == 1


def test_breaking_out_of_a_stream_releases_the_request(server: Emulator, client: Client) -> None:
    server.chunk_delay = 0.01
    try:
        chat, _ = client.chats.create(server.character("Sage").id, greeting=False)
        for chunk in client.chats.stream(chat, "tell me a long story"):
            assert not chunk.final
            break
        assert client._async._core.socket.in_flight == 0
        # The chat is still usable afterwards.
        assert client.chats.send(chat, "and now?").text
    finally:
        server.chunk_delay = 0.0


def test_works_inside_a_running_event_loop(server: Emulator) -> None:
    async def notebook_cell() -> str:
        with Client(server.token, endpoints=Endpoints.local(server.url)) as c:
            return c.account.me().username

    assert asyncio.run(notebook_cell()) == server.username


def _loop_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "caiclient-sync")


def test_garbage_collected_clients_do_not_leak_threads(server: Emulator) -> None:
    before = _loop_threads()
    for _ in range(5):
        c = Client(server.token, endpoints=Endpoints.local(server.url))
        assert c.account.me().id == server.user_id
        del c
        gc.collect()
    deadline = time.monotonic() + 10
    while _loop_threads() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _loop_threads() == before


def test_close_is_idempotent_and_final(server: Emulator) -> None:
    c = Client(server.token, endpoints=Endpoints.local(server.url))
    c.account.me()
    c.close()
    c.close()
    with pytest.raises(RuntimeError, match="closed"):
        c.account.me()


CTRL_C_SCRIPT = """
import signal, sys, threading, time
from caiclient import Client, Endpoints, Timeout
from caiclient.emulator.background import BackgroundEmulator

with BackgroundEmulator(chunk_delay=5.0) as emu:
    with Client(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        chat, _ = client.chats.create(emu.character("Sage").id, greeting=False)
        started = time.monotonic()
        try:
            print("ready", flush=True)
            client.chats.send(chat, "this takes a long time")
        except KeyboardInterrupt:
            print(f"interrupted after {time.monotonic() - started:.2f}", flush=True)
        emu.chunk_delay = 0.0
        print("usable", client.account.me().username, flush=True)
"""


def test_ctrl_c_returns_control_quickly_and_leaves_the_client_usable() -> None:
    process = subprocess.Popen(
        [sys.executable, "-W", "error", "-c", CTRL_C_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    interrupted = [line for line in out.splitlines() if line.startswith("interrupted after")]
    assert interrupted, out
    assert float(interrupted[0].split()[-1]) < 1.0
    assert "usable emulator_user" in out


def test_client_is_exported() -> None:
    assert caiclient.Client is Client


def test_timeout_is_raised_not_waited_on_forever(server: Emulator, client: Client) -> None:
    # caiclient.Timeout is a TimeoutError, like the one concurrent.futures raises while
    # polling: the portal must not mistake one for the other and keep waiting.
    chat, _ = client.chats.create(server.character("Sage").id, greeting=False)
    server.chunk_delay = 0.5
    try:
        started = time.monotonic()
        with pytest.raises(caiclient.Timeout):
            client.chats.send(chat, "slowly", timeout=0.3)
        assert time.monotonic() - started < 2
    finally:
        server.chunk_delay = 0.0
