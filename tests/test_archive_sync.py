"""The sync engine against the emulator: full, incremental, resumable after errors, paced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from archive_seed import Seeded, delete_chat_on_server, seed_account
from caiclient import AsyncClient, Backoff, Client, Endpoints
from caiclient.archive import (
    Archive,
    AsyncArchive,
    ChatDone,
    Event,
    Paused,
    SyncOptions,
)
from caiclient.emulator import Emulator
from caiclient.errors import ValidationError

FAST = {"rate": None}


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as c:
        yield c


@pytest.fixture
async def seeded(client: AsyncClient, emu: Emulator) -> Seeded:
    return await seed_account(client, emu)


async def backup(path: Path, client: AsyncClient, **options: object) -> tuple[list[str], object]:
    async with AsyncArchive(path) as archive:
        summary = await archive.sync(client, **{**FAST, **options})  # type: ignore[arg-type]
        return list(archive.store.canonical()), summary


async def test_full_backup_holds_every_chat_turn_candidate_and_more(
    tmp_path: Path, client: AsyncClient, emu: Emulator, seeded: Seeded
) -> None:
    events: list[Event] = []
    async with AsyncArchive(tmp_path / "a.cai") as archive:
        summary = await archive.sync(client, rate=None, progress=events.append)
        assert summary.ok, summary.errors
        assert (summary.chats_new, summary.chats_changed, summary.chats_unchanged) == (4, 0, 0)
        stored = {c.id: c async for c in archive.chats()}
        assert set(stored) == {c.chat_id for c in seeded.chats}
        assert stored[seeded.archived.chat_id].is_archived  # archived chats are not lost
        for chat in seeded.chats:
            history = await client.chats.history(chat, all_candidates=True)
            turns = [t.turn async for t in archive.turns(chat.chat_id)]
            assert turns == history  # every turn, in order, with every candidate
            assert stored[chat.chat_id].turns == len(history)
        long_turns = {t.turn_id: t.turn async for t in archive.turns(seeded.long.chat_id)}
        swiped = long_turns[seeded.swiped.turn_id]
        assert len(swiped.candidates) == 2
        assert swiped.primary_candidate_id == seeded.swiped.primary_candidate_id
        assert long_turns[seeded.pinned.turn_id].is_pinned
        assert any(c.base_candidate_id for t in long_turns.values() for c in t.candidates)
        account = await archive.account()
        assert account is not None and account.username == emu.username
        characters = {c.id: c async for c in archive.characters()}
        sage = characters[emu.character("Sage").id]
        assert sage.character is not None and sage.character.greeting
        assert archive.store.avatar(sage.avatar_file_name)  # the image's bytes
        [history] = [h async for h in archive.v1_histories(emu.character("Sage").id)]
        messages = list(archive.store.v1_messages(history.id))
        assert len(messages) == len(await client.v1.messages(history.history))
        assert any(m.message.is_alternative for m in messages)
        assert [p.name for p in archive.store.personas()] == ["Ada"]
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished" and "planned" in kinds
    done = [e for e in events if isinstance(e, ChatDone)]
    assert len(done) == 5 and done[-1].counters.chats_done == 5  # 4 chats + 1 V1 history
    assert events[-1].as_dict()["summary"]["ok"] is True


async def test_a_sync_of_a_complete_archive_only_reads_what_detects_no_change(
    tmp_path: Path, client: AsyncClient, seeded: Seeded
) -> None:
    first, _ = await backup(tmp_path / "a.cai", client)
    again, summary = await backup(tmp_path / "a.cai", client)
    assert again == first
    assert summary.ok and summary.chats_unchanged == 4 and summary.v1_histories_unchanged == 1
    assert summary.turns_new == summary.turns_changed == 0
    # me, personas, rooms, recent chats, recent characters, my characters; per character
    # (3): info, chats, V1 histories; one newest page per chat (4); no V1 messages, no avatar.
    assert summary.requests == 6 + 3 * 3 + 4


async def test_incremental_run_after_changes_equals_a_fresh_full_backup(
    tmp_path: Path, client: AsyncClient, emu: Emulator, seeded: Seeded
) -> None:
    await backup(tmp_path / "a.cai", client)
    long = seeded.long
    await client.chats.send(long, "a new question")  # new turns
    await client.chats.regenerate(seeded.old_bot_turn)  # a swipe on an old turn
    await client.chats.unpin(seeded.pinned)
    history = await client.chats.history(long)
    gone = history[-12]
    await client.chats.delete(long, gone)  # a deletion
    await client.chats.edit(history[-14], "Edited later.")  # an edit
    delete_chat_on_server(emu, seeded.archived.chat_id)
    new_chat, _ = await client.chats.create(emu.character("Nova").id)

    _, summary = await backup(tmp_path / "a.cai", client)
    assert summary.ok, summary.errors
    assert summary.chats_new == 1 and summary.chats_removed == 1
    # two in the long chat, and the greeting of the new chat
    assert summary.turns_new == 3 and summary.turns_removed == 1 and summary.turns_changed >= 3
    fresh, _ = await backup(tmp_path / "fresh.cai", client, full=True)
    async with AsyncArchive(tmp_path / "a.cai") as archive:
        assert list(archive.store.canonical(include_removed=False)) == fresh
        # What the server lost is still here, marked.
        [lost] = [c async for c in archive.chats(chats=[seeded.archived.chat_id])]
        assert lost.removed and lost.turns == 3
        turns = [t async for t in archive.turns(long.chat_id, include_removed=True)]
        assert [t.turn_id for t in turns if t.removed] == [gone.turn_id]
        assert new_chat.chat_id in {c.id async for c in archive.chats()}


async def test_changes_older_than_the_recheck_window_need_full(
    tmp_path: Path, client: AsyncClient, seeded: Seeded
) -> None:
    await backup(tmp_path / "a.cai", client)
    oldest_bot = next(t for t in await client.chats.history(seeded.long) if not t.is_human)
    await client.chats.regenerate(oldest_bot)  # on the second (older) page of 61 turns
    _, summary = await backup(tmp_path / "a.cai", client)
    assert summary.turns_changed == 0  # outside the window of one page: not re-read
    _, summary = await backup(tmp_path / "a.cai", client, recheck_pages=2)
    assert summary.turns_changed == 1
    await client.chats.regenerate(oldest_bot)
    full, summary = await backup(tmp_path / "a.cai", client, full=True)
    assert summary.turns_changed == 1 and summary.mode == "full"
    fresh, _ = await backup(tmp_path / "fresh.cai", client)
    assert full == fresh


async def test_an_error_on_one_chat_is_recorded_and_the_run_goes_on(
    tmp_path: Path, client: AsyncClient, emu: Emulator, seeded: Seeded
) -> None:
    emu.faults.http_status(500, times=1, path_prefix=f"/neo/turns/{seeded.pirate.chat_id}/")
    events: list[Event] = []
    async with AsyncArchive(tmp_path / "a.cai") as archive:
        summary = await archive.sync(client, rate=None, progress=events.append)
        assert not summary.ok and summary.fatal is None
        [issue] = summary.errors
        assert (issue.scope, issue.object_id, issue.error) == (
            "chat",
            seeded.pirate.chat_id,
            "ServerError",
        )
        assert [e.chat_id for e in events if e.kind == "chat_failed"] == [seeded.pirate.chat_id]
        assert summary.chats_new == 3  # the others are archived
        assert archive.store.runs()[-1]["status"] == "errors"
        assert archive.store.runs()[-1]["errors"][0]["id"] == seeded.pirate.chat_id
        summary = await archive.sync(client, rate=None)  # the next run catches up
        assert summary.ok and summary.chats_unchanged == 3
        assert summary.chats_changed + summary.chats_new == 1
        canonical = list(archive.store.canonical())
    fresh, _ = await backup(tmp_path / "fresh.cai", client)
    assert canonical == fresh


async def test_rate_limits_pause_every_request_and_are_retried(
    tmp_path: Path, client: AsyncClient, emu: Emulator, seeded: Seeded
) -> None:
    # More 429s than the client retries on its own, so the engine's pause is needed.
    emu.faults.http_status(429, times=6, retry_after=0.05, path_prefix="/neo/turns/")
    events: list[Event] = []
    async with AsyncArchive(tmp_path / "a.cai") as archive:
        summary = await archive.sync(client, rate=None, concurrency=1, progress=events.append)
        assert summary.ok, summary.errors
        paused = [e for e in events if isinstance(e, Paused)]
        assert paused and all(p.reason == "rate limited" and p.seconds == 0.05 for p in paused)
        canonical = list(archive.store.canonical())
    fresh, _ = await backup(tmp_path / "fresh.cai", client)
    assert canonical == fresh


async def test_a_lasting_block_backs_off_then_stops_the_run_and_keeps_the_archive(
    tmp_path: Path, client: AsyncClient, emu: Emulator, seeded: Seeded
) -> None:
    before, _ = await backup(tmp_path / "a.cai", client)
    await client.chats.send(seeded.long, "more")
    emu.faults.cloudflare(times=1000, websocket=False)
    events: list[Event] = []
    async with AsyncArchive(tmp_path / "a.cai") as archive:
        summary = await archive.sync(
            client,
            rate=None,
            block_backoff=Backoff(initial=0.01, factor=2, jitter=0, attempts=2),
            progress=events.append,
        )
        assert summary.fatal is not None and summary.fatal.error == "BlockedError"
        assert not summary.ok
        assert [round(e.seconds, 2) for e in events if isinstance(e, Paused)] == [0.01, 0.02]
        assert list(archive.store.canonical()) == before
        assert archive.store.runs()[-1]["status"] == "fatal"


async def test_a_token_that_expires_mid_backup_stops_cleanly_and_a_rerun_completes(
    tmp_path: Path, client: AsyncClient, emu: Emulator, seeded: Seeded
) -> None:
    before, _ = await backup(tmp_path / "a.cai", client)
    await client.chats.send(seeded.long, "more")
    await client.chats.send(seeded.pirate, "more")
    emu.faults.http_status(401, times=1000, path_prefix=f"/neo/turns/{seeded.pirate.chat_id}/")
    async with AsyncArchive(tmp_path / "a.cai") as archive:
        summary = await archive.sync(client, rate=None, concurrency=1)
        assert summary.fatal is not None and summary.fatal.error == "AuthError"
        after = list(archive.store.canonical())
    kept = [line for line in before if line.startswith(("turns ", "v1_messages ", "avatars "))]
    assert set(kept) - set(after) <= {
        line for line in kept if seeded.long.chat_id in line
    }  # only turns that changed since (the long chat's swipe window) differ
    assert len([x for x in after if x.startswith("turns ")]) >= len(
        [x for x in kept if x.startswith("turns ")]
    )
    emu.faults.clear()
    rerun, summary = await backup(tmp_path / "a.cai", client)
    assert summary.ok
    fresh, _ = await backup(tmp_path / "fresh.cai", client)
    assert rerun == fresh


async def test_selecting_chats_characters_and_since(
    tmp_path: Path, client: AsyncClient, emu: Emulator, seeded: Seeded
) -> None:
    async with AsyncArchive(tmp_path / "a.cai") as archive:
        summary = await archive.sync(client, rate=None, chats=[seeded.pirate.chat_id])
        assert summary.ok and summary.chats_new == 1
        assert [c.id async for c in archive.chats()] == [seeded.pirate.chat_id]
        unknown = "00000000-0000-4000-8000-000000000000"
        summary = await archive.sync(client, rate=None, chats=[unknown])
        assert [(e.object_id, e.error) for e in summary.errors] == [(unknown, "ChatNotFound")]
        summary = await archive.sync(client, rate=None, characters=[emu.character("Echo").id])
        assert summary.ok and summary.chats_new == 1 and summary.v1_histories_new == 0
        future = datetime.now(timezone.utc) + timedelta(days=1)
        summary = await archive.sync(client, rate=None, since=future)
        assert summary.chats_skipped == 5 and summary.chats_new == 0  # 4 + the V1 history
        assert summary.v1_histories_new == 0
        # Skipped chats are listed (their metadata is cheap) but their history is not read.
        turns = {c.id: c.turns async for c in archive.chats()}
        assert turns[seeded.long.chat_id] == turns[seeded.archived.chat_id] == 0
        assert turns[seeded.pirate.chat_id] == 3
        summary = await archive.sync(client, rate=None, since=future - timedelta(days=2))
        # Sage's two (listed before, so "changed"), now with their history
        assert summary.chats_changed == 2 and summary.chats_skipped == 0
        assert summary.turns_new > 60 and summary.v1_messages == 4


def test_options_are_checked_before_anything_is_sent() -> None:
    for bad in ({"rate": 0}, {"concurrency": 0}, {"recheck_pages": 0}, {"chats": [""]}):
        with pytest.raises(ValidationError):
            SyncOptions(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SyncOptions(chats=["a"], characters=["b"])


async def test_the_blocking_archive_with_the_sync_client_makes_the_same_archive(
    tmp_path: Path, client: AsyncClient, emu: Emulator, seeded: Seeded
) -> None:
    expected, _ = await backup(tmp_path / "a.cai", client)

    def blocking() -> list[str]:
        with (
            Client(emu.token, endpoints=Endpoints.local(emu.url)) as sync_client,
            Archive(tmp_path / "b.cai") as archive,
        ):
            summary = archive.sync(sync_client, rate=None)
            assert summary.ok, summary.errors
            assert len(list(archive.chats())) == 4
            return list(archive.store.canonical())

    assert await asyncio.to_thread(blocking) == expected


async def test_the_request_rate_is_honoured(
    tmp_path: Path, client: AsyncClient, seeded: Seeded
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    _, summary = await backup(tmp_path / "a.cai", client, rate=100.0)
    took = loop.time() - started
    assert summary.ok
    assert took >= (summary.requests - 1) / 100.0  # never faster than the rate allows


async def test_a_first_backup_finds_characters_whose_chats_are_all_archived(
    tmp_path: Path, client: AsyncClient, emu: Emulator
) -> None:
    nova, echo = emu.character("Nova").id, emu.character("Echo").id
    hidden, _ = await client.chats.create(nova)
    await client.chats.send(hidden, "a chat nobody lists as recent")
    await client.chats.archive(hidden)
    history = await client.v1.create(echo)  # Echo: only a legacy V1 history
    assert nova not in {c.character_id for c in await client.chats.recent()}
    async with AsyncArchive(tmp_path / "a.cai") as archive:
        summary = await archive.sync(client, rate=None)
        assert summary.ok, summary.errors
        [stored] = [c async for c in archive.chats()]
        assert stored.id == hidden.chat_id and stored.is_archived and stored.turns == 3
        assert [h.id async for h in archive.v1_histories(echo)] == [history.external_id]
