"""``raw`` is what the service sent: fields the client's models do not know are kept.

The emulator's ``mutate_json`` fault plays the live site adding a field; the archive must
hold it (and the ``native`` export must carry it), with the async and the blocking client.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from archive_seed import Seeded, seed_account
from caiclient import AsyncClient, Client, Endpoints, Turn
from caiclient.archive import Archive, AsyncArchive
from caiclient.emulator import Emulator

NEW_CHARACTER_FIELD = {"cai_future_badge": {"tier": 3, "since": "2031-01-01"}}
NEW_ACCOUNT_FIELD = {"cai_future_setting": [1, 2, 3]}


def drift(emu: Emulator) -> None:
    """The service starts sending fields no model of the client knows."""
    for prefix in ("/neo/character/v1/get_character_info", "/plus/chat/character/info/"):
        emu.faults.mutate_json(
            prefix, add={"character." + k: v for k, v in NEW_CHARACTER_FIELD.items()}
        )
    emu.faults.mutate_json(
        "/plus/chat/user/", add={"user." + k: v for k, v in NEW_ACCOUNT_FIELD.items()}
    )


def check_archive(archive: Archive, emu: Emulator, out: Path) -> None:
    sage = emu.character("Sage").id
    [stored] = archive.characters([sage])
    assert stored.raw is not None
    assert json.loads(stored.raw)["cai_future_badge"] == NEW_CHARACTER_FIELD["cai_future_badge"]
    assert stored.character is not None and stored.character.name == "Sage"  # still decodes
    account = archive.account()
    assert account is not None
    assert json.loads(account.raw)["cai_future_setting"] == [1, 2, 3]
    assert account.user.username == emu.username
    result = archive.export("native", out, characters=[sage])
    assert result.files
    for path in result.files:
        header = json.loads(path.read_bytes().splitlines()[0])
        assert header["character"]["cai_future_badge"] == NEW_CHARACTER_FIELD["cai_future_badge"]


async def test_fields_the_models_do_not_know_are_archived_and_exported(
    tmp_path: Path, emu: Emulator
) -> None:
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        await seed_account(client, emu, long_messages=8)
        drift(emu)
        async with AsyncArchive(tmp_path / "a.cai") as archive:
            assert (await archive.sync(client, rate=None)).ok
    with Archive(tmp_path / "a.cai", readonly=True) as archive:
        check_archive(archive, emu, tmp_path / "native")


async def test_the_blocking_archive_keeps_them_too(tmp_path: Path, emu: Emulator) -> None:
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        await seed_account(client, emu, long_messages=8)
    drift(emu)

    def blocking() -> None:
        with (
            Client(emu.token, endpoints=Endpoints.local(emu.url)) as sync_client,
            Archive(tmp_path / "b.cai") as archive,
        ):
            assert archive.sync(sync_client, rate=None).ok
            check_archive(archive, emu, tmp_path / "native")

    await asyncio.to_thread(blocking)


def served_turns(bodies: list[Any]) -> dict[str, Any]:
    """Every turn of the captured history pages, as the JSON the emulator sent."""
    turns: dict[str, Any] = {}
    for body in bodies:
        for turn in json.loads(body.body)["turns"]:
            turns[turn["turn_key"]["turn_id"]] = turn
    return turns


@pytest.fixture
async def seeded_client(emu: Emulator) -> Any:
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        seeded = await seed_account(client, emu, long_messages=30)
        yield client, seeded


async def test_turns_and_v1_messages_are_kept_as_the_service_sent_them(
    tmp_path: Path, seeded_client: tuple[AsyncClient, Seeded]
) -> None:
    client, seeded = seeded_client
    async with AsyncArchive(tmp_path / "a.cai") as archive:
        assert (await archive.sync(client, rate=None)).ok
        with client.capture_raw() as bodies:
            async for _ in client.chats.iter_history(seeded.long, all_candidates=True):
                pass
        served = served_turns(bodies)
        stored = [t async for t in archive.turns(seeded.long.chat_id)]
        assert len(stored) == len(served) == 61
        for row in stored:
            # The very object the service sent: the model's encoding would differ (it
            # writes defaults the service leaves out, such as ``is_pinned: false``).
            assert json.loads(row.raw) == served[row.turn_id]
            assert row.turn == msgspec.json.decode(row.raw, type=Turn)
        assert any("is_pinned" not in json.loads(row.raw) for row in stored)
        [message, *_] = archive.store.v1_messages(seeded.v1_history_id)
        assert "src__name" in json.loads(message.raw)  # the service's spelling
        assert message.message.src_name  # the model, decoded from its own column
        [history] = [h async for h in archive.v1_histories()]
        assert "messages" not in json.loads(history.raw)  # stored as its messages instead
        [persona] = archive.store.personas()
        assert json.loads(persona.raw)["external_id"] == persona.persona.id  # wire spelling
