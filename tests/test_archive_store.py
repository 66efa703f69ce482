"""The archive file: what it refuses, how it migrates, and that failures lose nothing."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from caiclient import AsyncClient, Endpoints
from caiclient.archive import (
    SCHEMA_VERSION,
    ArchiveCorrupt,
    ArchiveError,
    ArchiveLocked,
    ArchiveTooNew,
    ArchiveWriteError,
    AsyncArchive,
    _schema,
)
from caiclient.archive.store import Store, turn_position
from caiclient.emulator import Emulator
from caiclient.errors import CaiError, CharacterNotFound, ChatNotFound


def test_a_new_archive_is_marked_and_at_the_current_schema(tmp_path: Path) -> None:
    with Store.open(tmp_path / "a.cai") as store:
        assert store.schema_version == SCHEMA_VERSION == 3
    db = sqlite3.connect(tmp_path / "a.cai")
    assert db.execute("PRAGMA application_id").fetchone()[0] == _schema.APPLICATION_ID
    # Closed: back to one self-contained file, no -wal/-shm left beside it.
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    db.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.cai"]


def test_while_open_for_writing_it_is_wal_with_foreign_keys(tmp_path: Path) -> None:
    with Store.open(tmp_path / "a.cai") as store:
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with pytest.raises(sqlite3.IntegrityError):  # a turn of no chat: refused
            store._db.execute(
                "INSERT INTO turns (chat_id, turn_id, pos, is_human, is_pinned, candidates, "
                "text, raw) VALUES ('nope', 't', 0, 0, 0, 0, '', x'')"
            )


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("my shopping list\n" * 100)
    before = path.read_bytes()
    with pytest.raises(ArchiveCorrupt, match="not a SQLite file"):
        Store.open(path)
    assert path.read_bytes() == before
    with pytest.raises(ArchiveCorrupt, match="not a file"):
        Store.open(tmp_path)


def test_another_programs_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE stuff (x)")
    db.execute("INSERT INTO stuff VALUES (1)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(ArchiveCorrupt, match="not a caiclient archive"):
        Store.open(path)
    assert path.read_bytes() == before
    assert isinstance(ArchiveCorrupt("x"), CaiError)


def test_an_archive_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.cai"
    Store.open(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(ArchiveTooNew) as caught:
        Store.open(path)
    assert (caught.value.found, caught.value.supported) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
    with pytest.raises(ArchiveTooNew):
        Store.open(path, readonly=True)


def _old_archive(path: Path, version: int) -> None:
    """An archive file as caiclient wrote it at schema ``version``, one character in it."""
    db = sqlite3.connect(path, isolation_level=None)
    for step in range(1, version + 1):
        for statement in _schema.MIGRATIONS[step].split(";"):
            if statement.strip():
                db.execute(statement)
    db.execute(f"PRAGMA application_id={_schema.APPLICATION_ID}")
    db.execute(f"PRAGMA user_version={version}")
    db.execute(
        "INSERT INTO characters (id, name, raw, synced_at) VALUES ('c1', 'Kept', ?, 'x')",
        (b'{"id":"c1","name":"Kept"}',),
    )
    db.close()


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_archive_is_migrated_forward_keeping_its_content(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "old.cai"
    _old_archive(path, version)
    with pytest.raises(ArchiveError, match="upgrade"):
        Store.open(path, readonly=True)
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        [kept] = store.characters()
        assert kept.name == "Kept" and kept.character is not None  # decodes as before
        # Version 3: the old raw (the model's JSON) is the model column now.
        assert kept.model == kept.raw == b'{"id":"c1","name":"Kept"}'
        assert list(store.rooms()) == []
        columns = {row[1] for row in store._db.execute("PRAGMA table_info(room_turns)")}
        assert {"is_pinned", "primary_candidate_id"} <= columns


def test_a_damaged_archive_reports_corruption_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "a.cai"
    with Store.open(path) as store:
        for i in range(300):
            store.put_character_stub(f"c{i:04}", "x" * 500)
    data = bytearray(path.read_bytes())
    data[4096:] = os.urandom(len(data) - 4096)  # scribble over every page but the header
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveCorrupt), Store.open(path) as store:
        list(store.characters())


def test_a_missing_archive_is_an_error_when_not_creating(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no archive"):
        Store.open(tmp_path / "none.cai", create=False)
    with pytest.raises(ArchiveError, match="no archive"):
        Store.open(tmp_path / "none.cai", readonly=True)
    assert not (tmp_path / "none.cai").exists()


@contextlib.contextmanager
def read_only_dir(path: Path) -> Iterator[None]:
    """A directory nobody may write to, root included (chattr +i), restored afterwards."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a read-only directory")
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if done.returncode:
        pytest.skip(f"chattr +i not supported here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_directory_cannot_take_a_new_archive_but_serves_an_old_one(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    with Store.open(folder / "old.cai") as store:
        store.put_character_stub("c1", "Kept")
    before = (folder / "old.cai").read_bytes()
    with read_only_dir(folder):
        with pytest.raises(ArchiveWriteError):
            Store.open(folder / "new.cai")
        with pytest.raises(ArchiveWriteError):
            Store.open(folder / "old.cai")  # WAL needs files beside the archive
        with Store.open(folder / "old.cai", readonly=True) as reader:
            assert [c.name for c in reader.characters()] == ["Kept"]
            with pytest.raises(ArchiveWriteError, match="read-only"):
                reader.put_character_stub("c2", "No")
    assert (folder / "old.cai").read_bytes() == before


def test_a_second_writer_waits_then_gets_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "a.cai"
    with Store.open(path) as first:
        first._db.execute("BEGIN IMMEDIATE")  # another process mid-write
        with Store.open(path, lock_timeout=0.2) as second, pytest.raises(ArchiveLocked):
            second.put_character_stub("c1", "x")
        first._db.execute("ROLLBACK")


async def test_a_full_disk_mid_sync_fails_typed_and_loses_nothing(tmp_path: Path) -> None:
    async with (
        Emulator() as emu,
        AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client,
    ):
        chat, _ = await client.chats.create(emu.character("Sage").id)
        await client.chats.send(chat, "first")
        path = tmp_path / "a.cai"
        async with AsyncArchive(path) as archive:
            assert (await archive.sync(client, rate=None)).ok
            before = list(archive.store.canonical())
        for i in range(150):
            await client.chats.send(chat, f"a long message number {i} " * 20)
        async with AsyncArchive(path) as archive:
            db = archive.store._db
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count={pages + 2}")  # the disk fills up
            with pytest.raises(ArchiveWriteError, match="full"):
                await archive.sync(client, rate=None)
        with Store.open(path) as store:
            assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            after = set(store.canonical())
            kept = [line for line in before if not line.startswith(("characters ", "chats "))]
            assert set(kept) <= after  # every turn archived before is still there


def test_unknown_ids_are_typed_not_found_errors(tmp_path: Path) -> None:
    with Store.open(tmp_path / "a.cai") as store:
        store.put_character_stub("c1", "x")
        with pytest.raises(CharacterNotFound, match="not in the archive: nope"):
            list(store.characters(["c1", "nope"]))
        with pytest.raises(ChatNotFound):
            list(store.chats(chat_ids=["missing"]))


def test_turn_positions_follow_server_order_even_when_clocks_tie() -> None:
    t = datetime(2025, 5, 1, 12, 0, tzinfo=timezone.utc)
    newest = turn_position(t, None)
    tied = turn_position(t, newest)
    older = turn_position(t - timedelta(seconds=1), tied)
    skewed = turn_position(t + timedelta(seconds=5), older)  # a clock that went backwards
    undated = turn_position(None, skewed)
    assert newest > tied > older > skewed > undated
    assert turn_position(t.replace(tzinfo=None), None) == newest  # naive means UTC


def test_raw_json_leaves_out_only_what_decodes_back_the_same() -> None:
    """The archive drops null members from raw JSON; that is lossless only while every
    optional field of the archived models defaults to None."""
    import typing

    import msgspec

    from caiclient import Chat, Persona, Turn, User, V1History, V1Message
    from caiclient.archive.store import _encode
    from caiclient.models._character import Character

    seen: set[type] = set()

    def walk(model: type) -> None:
        if model in seen:
            return
        seen.add(model)
        for f in msgspec.structs.fields(model):
            if type(None) in typing.get_args(f.type):
                assert f.default is None, f"{model.__name__}.{f.name} defaults to {f.default!r}"
            for arg in typing.get_args(f.type) or (f.type,):
                for inner in typing.get_args(arg) or (arg,):
                    if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
                        walk(inner)

    for model in (Turn, Chat, Character, User, Persona, V1History, V1Message):
        walk(model)
    assert len(seen) >= 10
    tricky = ',"model_type":null} {"editor":null,'  # looks like members, is text
    turn = Turn(
        turn_key={"chat_id": "c", "turn_id": "t"},  # type: ignore[arg-type]
        candidates=[{"candidate_id": "x", "raw_content": tricky}],  # type: ignore[list-item]
    )
    turn = msgspec.convert(msgspec.to_builtins(turn), Turn)
    raw = _encode(turn)
    assert b"null" not in raw.replace(tricky.encode().replace(b'"', b'\\"'), b"")
    assert msgspec.json.decode(raw, type=Turn) == turn
