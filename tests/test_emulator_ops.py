"""Operating the emulator: seed data, state files, the background thread, the pytest plugin."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from caiclient import AsyncClient, Endpoints
from caiclient.emulator import Emulator, serve
from caiclient.emulator.background import BackgroundEmulator

SEED = {
    "users": [{"username": "alice", "name": "Alice", "token": "a1" * 20}],
    "characters": [
        {"name": "Mira", "greeting": "Hi, I'm Mira.", "style": "sage", "definition": "Kind."}
    ],
}


def get_json(url: str, token: str | None = None) -> tuple[int, object]:
    request = urllib.request.Request(
        url, headers={"Authorization": f"Token {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read() or b"null")


async def test_seed_adds_users_with_tokens_and_characters() -> None:
    async with Emulator(seed=SEED) as emu:
        mira = emu.character("Mira")
        assert len(mira.id) == 43
        assert mira.definition == "Kind."
        async with AsyncClient("a1" * 20, endpoints=Endpoints.local(emu.url)) as alice:
            me = await alice.account.me()
            assert (me.username, me.name) == ("alice", "Alice")
            chat, greeting = await alice.chats.create(mira.id)
            assert greeting is not None and greeting.text == "Hi, I'm Mira."
            reply = await alice.chats.send(chat, "hello")
            assert reply.author.name == "Mira"


@pytest.mark.parametrize("suffix", [".json", ".toml"])
async def test_seed_from_files(tmp_path: Path, suffix: str) -> None:
    if suffix == ".toml" and sys.version_info < (3, 11):
        pytest.skip("TOML needs Python 3.11")
    path = tmp_path / f"seed{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(SEED))
    else:
        path.write_text(
            '[[users]]\nusername = "alice"\ntoken = "' + "a1" * 20 + '"\n\n'
            '[[characters]]\nname = "Mira"\ngreeting = "Hi"\nstyle = "echo"\n'
        )
    async with Emulator(seed=path) as emu:
        assert emu.character("Mira").style == ("sage" if suffix == ".json" else "echo")
        assert "a1" * 20 in emu.store.users_by_token


@pytest.mark.parametrize(
    "seed",
    [
        {"users": [{"username": "x"}]},
        {"characters": [{"name": "N", "greeting": "g", "style": "nope"}]},
        {"characters": [{"name": "N"}]},
        {"robots": []},
        {"users": [{"username": "bob", "token": "bad token!"}]},
    ],
)
def test_invalid_seed_is_a_value_error(seed: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"seed|username|style|token"):
        Emulator(seed=seed)


async def test_state_file_keeps_users_and_characters_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    async with Emulator(state_file=state, seed=SEED) as first:
        seeded_token = first.token
    assert state.exists()
    async with Emulator(state_file=state) as second:
        assert second.token == seeded_token
        assert second.character("Mira").greeting == "Hi, I'm Mira."
        async with AsyncClient("a1" * 20, endpoints=Endpoints.local(second.url)) as alice:
            assert (await alice.account.me()).username == "alice"


async def test_stopped_emulator_cannot_restart() -> None:
    emu = Emulator()
    await emu.start()
    await emu.stop()
    await emu.stop()  # idempotent
    with pytest.raises(RuntimeError, match="create a new one"):
        await emu.start()


def test_background_emulator_serves_sync_code() -> None:
    with BackgroundEmulator() as emu:
        status, body = get_json(f"{emu.url}/plus/chat/user/", emu.token)
        assert status == 200
        assert body["user"]["user"]["username"] == emu.username  # type: ignore[index]
        status, _ = get_json(f"{emu.url}/plus/chat/user/", "0" * 40)
        assert status == 401


def test_plugin_fixture_in_a_sync_test(cai_emulator: Emulator) -> None:
    status, _ = get_json(f"{cai_emulator.url}/neo/ping/", cai_emulator.token)
    assert status == 200


async def test_plugin_client_fixture(cai_emulator: Emulator, cai_client: AsyncClient) -> None:
    me = await cai_client.account.me()
    assert me.id == cai_emulator.user_id


@pytest.mark.cai_emulator(seed=SEED)
def test_plugin_marker_passes_options(cai_emulator: Emulator) -> None:
    assert cai_emulator.character("Mira").name == "Mira"


# ---- seed data and knobs ----------------------------------------------------------------


async def test_seed_data_shapes(emu: Emulator) -> None:
    assert re.fullmatch(r"[0-9a-f]{40}", emu.token)
    assert emu.user_id.isdigit()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emu.url)
    assert len(emu.characters) >= 3
    for character in emu.characters:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", character.id)
        assert character.name and character.greeting and character.title
    assert emu.character("Echo").name == "Echo"
    with pytest.raises(KeyError):
        emu.character("Nobody")


@pytest.mark.parametrize("chunks", [1, 0, 2.5, True])
def test_chunks_validated(chunks: Any) -> None:
    with pytest.raises(ValueError, match="chunks"):
        Emulator(chunks=chunks)


async def test_stop_is_idempotent() -> None:
    emulator = Emulator()
    await emulator.start()
    await emulator.stop()
    await emulator.stop()


async def test_serve_runs_until_cancelled(http: aiohttp.ClientSession) -> None:
    ready: asyncio.Future[Emulator] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(chunk_delay=0.0, on_ready=ready.set_result))
    emulator = await asyncio.wait_for(ready, 5)
    async with http.get(f"{emulator.url}/neo/ping/") as r:
        assert r.status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(aiohttp.ClientConnectionError):
        await http.get(f"{emulator.url}/neo/ping/")
