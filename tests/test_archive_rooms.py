"""Group chats (rooms) in the archive: synced like chats (full, incremental, resumable),
against the emulator with several characters and users, swipes and edits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
import pytest

from archive_seed import SeededRooms, seed_rooms
from caiclient import AsyncClient, Client, Endpoints, Turn
from caiclient.archive import Archive, AsyncArchive, ChatDone, Event
from caiclient.emulator import Emulator
from caiclient.errors import ChatNotFound

FAST = {"rate": None}


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as c:
        yield c


@pytest.fixture
async def guest(emu: Emulator) -> AsyncIterator[AsyncClient]:
    user = emu.store.add_user("guest_user", "Guest User")
    async with AsyncClient(user.token, endpoints=Endpoints.local(emu.url)) as c:
        yield c


@pytest.fixture
async def rooms(client: AsyncClient, guest: AsyncClient, emu: Emulator) -> SeededRooms:
    return await seed_rooms(client, guest, emu)


async def backup(path: Path, client: AsyncClient, **options: object) -> tuple[list[str], object]:
    async with AsyncArchive(path) as archive:
        summary = await archive.sync(client, **{**FAST, **options})  # type: ignore[arg-type]
        assert summary.ok, summary.errors
        return list(archive.store.canonical()), summary


async def test_a_backup_holds_every_room_turn_and_candidate(
    tmp_path: Path, client: AsyncClient, emu: Emulator, rooms: SeededRooms
) -> None:
    events: list[Event] = []
    async with AsyncArchive(tmp_path / "a.cai") as archive:
        summary = await archive.sync(client, rate=None, progress=events.append)
        assert summary.ok, summary.errors
        assert (summary.rooms_new, summary.rooms_changed, summary.rooms_unchanged) == (2, 0, 0)
        stored = {r.id: r for r in archive.store.rooms()}
        assert set(stored) == {rooms.party.id, rooms.quiet.id}
        party = stored[rooms.party.id]
        assert party.title == "Tea party" and party.complete and not party.removed
        assert party.character_names == ["Echo", "Sage"]
        assert party.room.title == "Tea party" and len(party.room.users) == 2
        for room in (rooms.party, rooms.quiet):
            history = await client.rooms.history(room, all_candidates=True)
            turns = [t.turn async for t in archive.turns(room.id)]
            assert turns == history  # every turn, in order, every candidate
            assert stored[room.id].turns == len(history)
        by_id = {t.turn_id: t.turn async for t in archive.turns(rooms.party.id)}
        assert len(by_id[rooms.swiped.turn_id].candidates) == 2
        assert by_id[rooms.swiped.turn_id].primary_candidate_id == rooms.swiped.primary_candidate_id
        assert by_id[rooms.edited.turn_id].text == "Sage, edited by hand."
        authors = {t.author.name for t in by_id.values() if t.author.is_human}
        assert authors == {(await client.account.me()).username, rooms.guest_username}
        # The casts' characters are archived too (info and avatar), like those of chats.
        names = {c.name async for c in archive.characters()}
        assert {"Echo", "Sage", "Nova"} <= names
    done = [e for e in events if isinstance(e, ChatDone) and e.room]
    assert sorted(e.chat_id for e in done) == sorted([rooms.party.id, rooms.quiet.id])
    assert all(e.status == "new" for e in done)


async def test_an_unchanged_sync_reads_one_page_per_room(
    tmp_path: Path, client: AsyncClient, rooms: SeededRooms
) -> None:
    first, _ = await backup(tmp_path / "a.cai", client)
    again, summary = await backup(tmp_path / "a.cai", client)
    assert again == first
    assert summary.rooms_unchanged == 2 and summary.turns_new == summary.turns_changed == 0  # type: ignore[attr-defined]
    # 6 listings; info, chats and V1 histories of the 3 characters of the casts; one
    # newest page per room.
    assert summary.requests == 6 + 3 * 3 + 2  # type: ignore[attr-defined]


async def test_incremental_run_after_room_changes_equals_a_fresh_full_backup(
    tmp_path: Path, client: AsyncClient, guest: AsyncClient, emu: Emulator, rooms: SeededRooms
) -> None:
    # Nova stays reachable once its room is gone (a fresh backup finds characters only
    # through what the server still lists).
    await client.chats.create(emu.character("Nova").id)
    await backup(tmp_path / "a.cai", client)
    party = rooms.party
    await guest.rooms.send(party, "a new message")  # new turns, from the other user
    await client.rooms.generate(party, emu.character("Echo").id)
    history = await client.rooms.history(party)
    recent_reply = next(t for t in history[-20:] if not t.is_human)
    await client.rooms.regenerate(recent_reply)  # a swipe on an older turn
    await client.rooms.edit(history[-6], "Edited later.")  # an edit
    gone = history[-9]
    await client.rooms.delete_turns(party, gone)  # a deletion
    await client.rooms.delete(rooms.quiet)  # a room deleted on the server
    fresh_room = await client.rooms.create(emu.character("Sage").id, title="New table")

    _, summary = await backup(tmp_path / "a.cai", client)
    assert summary.rooms_new == 1 and summary.rooms_removed == 1  # type: ignore[attr-defined]
    assert summary.rooms_changed == 1 and summary.turns_removed == 1  # type: ignore[attr-defined]
    fresh, _ = await backup(tmp_path / "fresh.cai", client, full=True)
    async with AsyncArchive(tmp_path / "a.cai") as archive:
        assert list(archive.store.canonical(include_removed=False)) == fresh
        # What the server lost is still here, marked.
        [lost] = archive.store.rooms(room_ids=[rooms.quiet.id])
        assert lost.removed and lost.turns == 2
        turns = [t async for t in archive.turns(party.id, include_removed=True)]
        assert [t.turn_id for t in turns if t.removed] == [gone.turn_id]
        assert fresh_room.id in {r.id for r in archive.store.rooms()}


async def test_selecting_rooms_by_id_or_by_character(
    tmp_path: Path, client: AsyncClient, emu: Emulator, rooms: SeededRooms
) -> None:
    chat, _ = await client.chats.create(emu.character("Echo").id)
    async with AsyncArchive(tmp_path / "a.cai") as archive:
        summary = await archive.sync(client, rate=None, chats=[rooms.quiet.id, chat.chat_id])
        assert summary.ok, summary.errors
        assert (summary.rooms_new, summary.chats_new) == (1, 1)
        assert [r.id for r in archive.store.rooms()] == [rooms.quiet.id]
        summary = await archive.sync(client, rate=None, characters=[emu.character("Sage").id])
        assert summary.ok and summary.rooms_new == 1  # the party has Sage; the quiet room not
        assert {r.id for r in archive.store.rooms()} == {rooms.quiet.id, rooms.party.id}


async def test_a_room_left_behind_is_kept_and_marked(
    tmp_path: Path, client: AsyncClient, guest: AsyncClient, emu: Emulator, rooms: SeededRooms
) -> None:
    # The guest's own backup: they are in the party only. Then the owner deletes it.
    async with AsyncArchive(tmp_path / "g.cai") as archive:
        assert (await archive.sync(guest, rate=None)).ok
        assert [r.id for r in archive.store.rooms()] == [rooms.party.id]
        await client.rooms.delete(rooms.party)
        summary = await archive.sync(guest, rate=None)
        assert summary.ok and summary.rooms_removed == 1
        [party] = archive.store.rooms()
        assert party.removed and party.turns > 50
        raw = json.loads(party.raw)  # the room as the service listed it
        assert raw["id"] == rooms.party.id and raw["title"] == "Tea party"
        assert raw["permissions"] == [] and "turns" in raw["preview_turns"]  # not the model's


# --- exports, read back with readers written from FORMATS.md ------------------------------


def read_group_chat(data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """§c1 "Group chats": a header line (SillyTavern tolerates a metadata-only one), then
    the usual message objects; a character message names its speaker with ``name`` plus
    ``original_avatar``/``force_avatar``; swipes aligned as in one-to-one chats."""
    lines = [json.loads(line) for line in data.decode().splitlines()]
    header, messages = lines[0], lines[1:]
    assert "chat_metadata" in header or "user_name" in header
    for m in messages:
        assert {"name", "is_user", "send_date", "mes"} <= set(m)
        datetime.fromisoformat(m["send_date"].replace("Z", "+00:00"))
        if not m["is_user"]:
            assert m["original_avatar"] == m["name"] + ".png"
            assert m["force_avatar"].endswith("file=" + quote(m["original_avatar"]))
        if "swipes" in m:
            assert m["mes"] == m["swipes"][m["swipe_id"]]
            assert len(m["swipe_info"]) == len(m["swipes"])
    return header, messages


@pytest.fixture
async def synced(
    tmp_path: Path, client: AsyncClient, rooms: SeededRooms
) -> AsyncIterator[AsyncArchive]:
    async with AsyncArchive(tmp_path / "a.cai") as archive:
        assert (await archive.sync(client, rate=None)).ok
        yield archive


async def test_the_sillytavern_export_of_a_room_is_a_group_chat(
    tmp_path: Path, client: AsyncClient, emu: Emulator, rooms: SeededRooms, synced: AsyncArchive
) -> None:
    history = await client.rooms.history(rooms.party, all_candidates=True)
    result = await synced.export("sillytavern", tmp_path / "st", chats=[rooms.party.id])
    [path] = result.files
    assert path.parent.name == "group chats" and rooms.party.id[:8] in path.name
    assert "Tea party" in path.name and result.chats == 1 and result.turns == len(history)
    header, messages = read_group_chat(path.read_bytes())
    assert header["character_name"] == "Tea party"
    cai = header["chat_metadata"]["cai"]
    assert cai["room_id"] == rooms.party.id
    assert [c["name"] for c in cai["characters"]] == ["Echo", "Sage"]
    assert [m["extra"]["cai"]["turn_id"] for m in messages] == [t.turn_id for t in history]
    assert [m["name"] for m in messages] == [t.author.name for t in history]
    assert [m["is_user"] for m in messages] == [t.is_human for t in history]
    assert [m["mes"] for m in messages] == [t.text for t in history]
    assert {m["name"] for m in messages if m["is_user"]} == {
        (await client.account.me()).username,
        rooms.guest_username,
    }  # both people, each under their own name
    assert {m["original_avatar"] for m in messages if not m["is_user"]} == {"Echo.png", "Sage.png"}
    swiped = next(m for m in messages if m["extra"]["cai"]["turn_id"] == rooms.swiped.turn_id)
    assert swiped["swipes"] == [c.raw_content for c in rooms.swiped.candidates[::-1]]
    assert [m["send_date"] for m in messages] == [
        msgspec.json.encode(t.create_time).decode().strip('"') for t in history
    ]


async def test_native_markdown_and_html_exports_hold_rooms(
    tmp_path: Path, client: AsyncClient, rooms: SeededRooms, synced: AsyncArchive
) -> None:
    history = await client.rooms.history(rooms.party, all_candidates=True)
    out = tmp_path / "out"
    result = await synced.export("native", out / "native")
    assert result.chats == 2  # both rooms (the account has no one-to-one chat)
    [party] = [p for p in result.files if rooms.party.id[:8] in p.name]
    lines = party.read_bytes().splitlines()
    header = json.loads(lines[0])
    assert header["room"]["id"] == rooms.party.id and header["schema"] == "caiclient-native/1"
    assert [c["name"] for c in header["characters"]] == ["Echo", "Sage"]
    assert [msgspec.json.decode(x, type=Turn) for x in lines[1:]] == history
    result = await synced.export("markdown", out / "md", chats=[rooms.party.id])
    text = result.files[0].read_text()
    assert text.startswith("# Tea party") and "Group chat: **Echo**, **Sage**" in text
    for turn in history:
        for candidate in turn.candidates:
            assert candidate.raw_content in text
    result = await synced.export("html", out / "html")
    index = (out / "html" / "index.html").read_text()
    assert "Tea party" in index and "group chat" in index
    [page] = [p for p in result.files if rooms.party.id[:8] in p.name]
    assert page.read_text().count('class="cand"') == sum(len(t.candidates) for t in history)


async def test_formats_without_group_chats_say_what_they_left_out(
    tmp_path: Path, synced: AsyncArchive, rooms: SeededRooms
) -> None:
    result = await synced.export("ooba", tmp_path / "ooba")
    assert result.files == [] and result.warnings == [
        "2 group chats left out: ooba holds one character"
    ]
    # Cards: the characters of a selected room.
    result = await synced.export("card", tmp_path / "cards", chats=[rooms.party.id])
    assert sorted(p.name.split(" ")[0] for p in result.files if p.suffix == ".png") == [
        "Echo",
        "Sage",
    ]
    with pytest.raises(ChatNotFound, match="not in the archive"):
        await synced.export("sillytavern", tmp_path / "x", chats=[rooms.party.id, "nope"])


async def test_the_blocking_archive_backs_rooms_up_the_same(
    tmp_path: Path, client: AsyncClient, emu: Emulator, rooms: SeededRooms
) -> None:
    expected, _ = await backup(tmp_path / "a.cai", client)

    def blocking() -> list[str]:
        with (
            Client(emu.token, endpoints=Endpoints.local(emu.url)) as sync_client,
            Archive(tmp_path / "b.cai") as archive,
        ):
            summary = archive.sync(sync_client, rate=None)
            assert summary.ok and summary.rooms_new == 2, summary.errors
            return list(archive.store.canonical())

    assert await asyncio.to_thread(blocking) == expected  # raw JSON included
