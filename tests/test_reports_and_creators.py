"""Character reports (neo /report/create) and neo creator search."""

from __future__ import annotations

import aiohttp
import pytest

from caiclient import AsyncClient, CharacterNotFound, Endpoints, ValidationError
from caiclient.emulator import Emulator


async def test_emulator_report_shapes_and_errors(emu: Emulator) -> None:
    url = f"{emu.url}/neo/report/create"
    headers = {"Authorization": f"Token {emu.token}"}
    sage = emu.character("Sage").id
    body = {
        "category": "SPAM",
        "comments": "ads",
        "reported_resource_id": sage,
        "type": "CHARACTER",
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body, headers=headers) as r:
            assert r.status == 200
            report = (await r.json())["report"]
            assert len(report["report_id"]) == 36
        async with session.post(url, json={**body, "category": "BORING"}, headers=headers) as r:
            assert r.status == 400
            assert (await r.json())["command"] == "neo_error"
        async with session.post(
            url, json={**body, "reported_resource_id": "x" * 43}, headers=headers
        ) as r:
            assert r.status == 404
            assert (await r.json())["comment"] == "Character not found"
        async with session.post(url, json=body) as r:
            assert r.status == 401


async def test_emulator_neo_creator_search(emu: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{emu.url}/neo/search/v1/creator", params={"query": "cast"}) as r:
            assert r.status == 200
            creators = (await r.json())["creators"]
        async with session.get(f"{emu.url}/neo/search/v1/creator", params={"query": "zzz"}) as r:
            assert (await r.json())["creators"] == []
    assert [c["username"] for c in creators] == ["caiclient_cast"]
    assert creators[0]["num_characters"] == len(emu.characters)


async def test_client_report(emu: Emulator, client: AsyncClient) -> None:
    report_id = await client.characters.report(emu.character("Echo").id, "SPAM", "too loud")
    assert len(report_id) == 36
    with pytest.raises(CharacterNotFound):
        await client.characters.report("A" * 43, "ABUSE")


async def test_client_report_checks_arguments_before_sending() -> None:
    # A dead port: any I/O would fail with a TransportError, not a ValidationError.
    async with AsyncClient("t" * 40, endpoints=Endpoints.local("http://127.0.0.1:9")) as offline:
        with pytest.raises(ValidationError, match="category"):
            await offline.characters.report("A" * 43, "BORING")
        with pytest.raises(ValidationError, match="comments"):
            await offline.characters.report("A" * 43, "SPAM", "x" * 1001)


async def test_other_users_private_character_cannot_be_reported(emu: Emulator) -> None:
    owner = emu.store.add_user("owner")
    async with (
        AsyncClient(owner.token, endpoints=Endpoints.local(emu.url)) as alice,
        AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as bob,
    ):
        secret = await alice.characters.create("Secretive", "Hush.")
        with pytest.raises(CharacterNotFound):
            await bob.characters.report(secret.id, "SPAM")
