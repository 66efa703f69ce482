"""The archive file: one SQLite database, the store of record of a backup.

Opening checks what the file is before anything is written: not SQLite, another program's
SQLite database, or a damaged one → :class:`ArchiveCorrupt`; a newer schema →
:class:`ArchiveTooNew`; an older one is migrated forward in one transaction. While open for
writing the file is in WAL mode (readers never block the writer, a ``kill -9`` loses at
most the step in progress); :meth:`Store.close` checkpoints and returns it to a single
self-contained file. Every write is one short transaction, so an interruption at any point
leaves the archive as of the last completed step.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec

from ..errors import CharacterNotFound, ChatNotFound
from ..models import Chat, Persona, Room, Turn, User, V1History, V1Message
from ..models._character import Character
from . import _schema
from ._rows import (
    StoredAccount,
    StoredCharacter,
    StoredChat,
    StoredPersona,
    StoredRoom,
    StoredTurn,
    StoredV1History,
    StoredV1Message,
)
from .errors import (
    ArchiveCorrupt,
    ArchiveError,
    ArchiveLocked,
    ArchiveTooNew,
    ArchiveWriteError,
)

__all__ = ["SCHEMA_VERSION", "PageWrite", "Store", "turn_position"]

SCHEMA_VERSION = _schema.SCHEMA_VERSION
_SQLITE_MAGIC = b"SQLite format 3\x00"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
_plain_encode = msgspec.json.Encoder().encode
# Every optional field of the archived models defaults to None (a test holds the models to
# it), so a null member carries nothing the decoder would not restore: leave them out. In
# msgspec's output a quote inside a string is always escaped, so these patterns only ever
# meet real members. About a fifth of a turn's bytes.
_NULL_MEMBER = re.compile(rb',"[A-Za-z0-9_]+":null(?=[,}])')
_LEADING_NULL = re.compile(rb'(?<=\{)"[A-Za-z0-9_]+":null,?')


def _encode(obj: Any) -> bytes:
    """The JSON kept as ``raw``: the model's JSON without its null members."""
    return _LEADING_NULL.sub(b"", _NULL_MEMBER.sub(b"", _plain_encode(obj)))


# Primary SQLite result codes (https://sqlite.org/rescode.html).
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26
_PERM = 3
_BATCH = 512


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def turn_position(create_time: datetime | None, newer: int | None) -> int:
    """The sort key of a turn met right after (that is, older than) one at ``newer``.

    Chats are append-only and the server pages them newest first, so walking that order
    from the newest turn gives every turn the same key in a full and in an incremental
    run: its creation time in microseconds (x1024), made strictly smaller than the newer
    neighbour's key when clocks tie or disagree.
    """
    if create_time is None:
        return 0 if newer is None else newer - 1
    if create_time.tzinfo is None:
        create_time = create_time.replace(tzinfo=timezone.utc)
    pos = ((create_time - _EPOCH) // _US) * 1024 + 512
    return pos if newer is None or pos < newer else newer - 1


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _classify(exc: sqlite3.Error, path: Path) -> ArchiveError:
    """The archive error an sqlite3 exception stands for."""
    code, text = _code(exc), str(exc).lower()
    if code == _FULL or "full" in text:
        return ArchiveWriteError("the disk (or the archive's size limit) is full", path=path)
    if code in (_READONLY, _PERM) or "readonly" in text or "read-only" in text:
        return ArchiveWriteError("the archive or its directory is read-only", path=path)
    if code == _CANTOPEN or "unable to open" in text:
        return ArchiveWriteError(
            "cannot open or create the archive (missing or read-only directory?)", path=path
        )
    if code in (_BUSY, _LOCKED) or "locked" in text:
        return ArchiveLocked("another process is writing to this archive", path=path)
    if code in (_CORRUPT, _NOTADB) or "malformed" in text or "not a database" in text:
        return ArchiveCorrupt("the archive is damaged or not an archive", path=path)
    if code == _IOERR:
        return ArchiveWriteError(f"input/output error: {exc}", path=path)
    return ArchiveCorrupt(f"unexpected database error: {exc}", path=path)


@dataclass(frozen=True, slots=True)
class PageWrite:
    """What storing one page of turns changed. ``oldest_known``: the page's oldest turn was
    already archived before (so everything older is too, chats being append-only)."""

    new: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: int
    oldest_known: bool
    last_pos: int | None
    ids: tuple[str, ...]


class Store:
    """An open archive file. Not thread-safe: use it from one thread at a time."""

    def __init__(self, db: sqlite3.Connection, path: Path, *, writable: bool) -> None:
        self._db = db
        self.path = path
        self.writable = writable
        self._closed = False

    # --- opening and closing ---------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        create: bool = True,
        readonly: bool = False,
        lock_timeout: float = 10.0,
    ) -> Store:
        """Open (or, with ``create``, make) the archive at ``path``.

        Raises ArchiveCorrupt (not an archive, damaged), ArchiveTooNew (newer schema),
        ArchiveWriteError (cannot create or write), ArchiveLocked (another writer kept the
        lock past ``lock_timeout`` seconds), ArchiveError (no archive there and no
        ``create``). Nothing is written to a file that fails these checks.
        """
        path = Path(path)
        exists = _check_file(path)
        if not exists and (readonly or not create):
            raise ArchiveError("no archive at this path", path=path)
        uri = f"{path.resolve().as_uri()}?mode={'ro' if readonly else 'rwc'}"
        try:
            db = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False, timeout=lock_timeout
            )
        except sqlite3.Error as exc:
            raise _classify(exc, path) from None
        store = cls(db, path, writable=not readonly)
        try:
            store._prepare()
        except BaseException:
            db.close()
            raise
        return store

    def _prepare(self) -> None:
        with self._mapped():
            app_id = self._db.execute("PRAGMA application_id").fetchone()[0]
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != _schema.APPLICATION_ID and (app_id != 0 or tables):
            raise ArchiveCorrupt("a SQLite database, but not a caiclient archive", path=self.path)
        if version > SCHEMA_VERSION:
            raise ArchiveTooNew(self.path, found=version, supported=SCHEMA_VERSION)
        if not self.writable:
            if version < SCHEMA_VERSION:
                raise ArchiveError(
                    "the archive needs an upgrade; open it for writing once", path=self.path
                )
            return
        with self._mapped():
            self._db.execute("PRAGMA journal_mode=WAL").fetchone()
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
        if version < SCHEMA_VERSION:
            self._migrate(version)

    def _migrate(self, version: int, target: int = SCHEMA_VERSION) -> None:
        """Run migrations ``version + 1 … target`` in one transaction."""
        with self._tx() as db:
            for step in range(version + 1, target + 1):
                for statement in _schema.MIGRATIONS[step].split(";"):
                    if statement.strip():
                        db.execute(statement)
            if version == 0:
                db.execute("INSERT INTO meta VALUES ('created_at', ?)", (_now(),))
            db.execute(f"PRAGMA application_id={_schema.APPLICATION_ID}")
            db.execute(f"PRAGMA user_version={target}")

    def close(self) -> None:
        """Checkpoint and close; the file is left as one self-contained SQLite file."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.writable:
                with contextlib.suppress(sqlite3.Error):
                    # Back to a rollback journal so the file at rest needs no -wal/-shm
                    # companions (and opens read-only in a read-only directory). Another
                    # process still using it keeps WAL mode; that is fine.
                    self._db.execute("PRAGMA journal_mode=DELETE").fetchone()
        finally:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # --- plumbing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _classify(exc, self.path) from None

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed whole, or rolled back whole on any error."""
        if not self.writable:
            raise ArchiveWriteError("the archive is open read-only", path=self.path)
        with self._mapped():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of a query, fetched in batches so a large result is never held at once."""
        with self._mapped():
            cursor = self._db.execute(sql, args)
        while True:
            with self._mapped():
                batch = cursor.fetchmany(_BATCH)
            if not batch:
                return
            yield from batch

    def _one(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._mapped():
            row: tuple[Any, ...] | None = self._db.execute(sql, args).fetchone()
        return row

    # --- account, personas, characters, avatars --------------------------------------------

    def put_account(self, user: User, raw: bytes | None = None) -> None:
        """Store the account; ``raw`` is the service's JSON of it (None: the model's)."""
        model = _encode(user)
        with self._tx() as db:
            db.execute("DELETE FROM account WHERE id != ?", (user.id,))
            db.execute(
                "INSERT INTO account (id, username, name, raw, synced_at, model) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "username=excluded.username, name=excluded.name, raw=excluded.raw, "
                "model=excluded.model, synced_at=excluded.synced_at",
                (user.id, user.username, user.name, raw or model, _now(), model),
            )

    def put_personas(
        self, personas: Sequence[Persona], raws: Sequence[bytes | None] | None = None
    ) -> None:
        """Store the account's personas (``raws``: the service's JSON of each, in order);
        ones no longer listed are marked removed."""
        now, ids = _now(), []
        with self._tx() as db:
            for persona, raw in zip(personas, _raws(raws, len(personas)), strict=True):
                ids.append(persona.id)
                model = _encode(persona)
                db.execute(
                    "INSERT INTO personas (id, name, raw, removed_at, synced_at, model) "
                    "VALUES (?, ?, ?, NULL, ?, ?) ON CONFLICT(id) DO UPDATE "
                    "SET name=excluded.name, raw=excluded.raw, model=excluded.model, "
                    "removed_at=NULL, synced_at=excluded.synced_at",
                    (persona.id, persona.name, raw or model, now, model),
                )
            marks = ",".join("?" * len(ids))
            db.execute(
                "UPDATE personas SET removed_at=? WHERE removed_at IS NULL "
                f"AND id NOT IN ({marks})",
                (now, *ids),
            )

    def put_character(self, character: Character, raw: bytes | None = None) -> bool:
        """Store a character's info (``raw``: the service's JSON of it); True if it is new
        or changed."""
        model = _encode(character)
        raw = raw or model
        old = self._one("SELECT raw FROM characters WHERE id=?", (character.id,))
        with self._tx() as db:
            db.execute(
                "INSERT INTO characters (id, name, title, greeting, definition, "
                "avatar_file_name, raw, info_error, removed_at, synced_at, model) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name=excluded.name, title=excluded.title, "
                "greeting=excluded.greeting, definition=excluded.definition, "
                "avatar_file_name=excluded.avatar_file_name, raw=excluded.raw, "
                "model=excluded.model, info_error=NULL, removed_at=NULL, "
                "synced_at=excluded.synced_at",
                (
                    character.id,
                    character.name,
                    character.title,
                    character.greeting,
                    character.definition,
                    character.avatar_file_name,
                    raw,
                    _now(),
                    model,
                ),
            )
        return old is None or old[0] != raw

    def put_character_stub(self, character_id: str, name: str) -> None:
        """Make sure a character row exists (chats refer to it) even without its info."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO characters (id, name, synced_at) VALUES (?, ?, ?)",
                (character_id, name, _now()),
            )

    def character_unavailable(self, character_id: str, error: str) -> None:
        """The server no longer shows this character's info: keep what we had, say why."""
        with self._tx() as db:
            db.execute(
                "UPDATE characters SET info_error=?, removed_at=coalesce(removed_at, ?) WHERE id=?",
                (error, _now(), character_id),
            )

    def has_avatar(self, file_name: str) -> bool:
        return self._one("SELECT 1 FROM avatars WHERE file_name=?", (file_name,)) is not None

    def put_avatar(self, file_name: str, data: bytes) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO avatars VALUES (?, ?, ?)", (file_name, data, _now()))

    def known_character_ids(self) -> list[str]:
        return [row[0] for row in self._rows("SELECT id FROM characters ORDER BY id")]

    # --- chats and turns -------------------------------------------------------------------

    def put_chat(self, chat: Chat, character_name: str = "", raw: bytes | None = None) -> str:
        """Store a chat's metadata (``raw``: the service's JSON of it): ``"new"``,
        ``"changed"`` or ``"unchanged"``."""
        raw = raw or _encode(chat)
        old = self._one("SELECT raw, removed_at FROM chats WHERE id=?", (chat.chat_id,))
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO characters (id, name, synced_at) VALUES (?, ?, ?)",
                (chat.character_id, character_name or chat.character_name or "", _now()),
            )
            db.execute(
                "INSERT INTO chats VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?) "
                "ON CONFLICT(id) DO UPDATE SET name=excluded.name, state=excluded.state, "
                "type=excluded.type, model=excluded.model, create_time=excluded.create_time, "
                "raw=excluded.raw, removed_at=NULL, synced_at=excluded.synced_at",
                (
                    chat.chat_id,
                    chat.character_id,
                    chat.name,
                    chat.state,
                    chat.type,
                    chat.preferred_model_type,
                    _iso(chat.create_time),
                    raw,
                    _now(),
                ),
            )
        return _status(old, raw)

    def put_room(self, room: Room, raw: bytes | None = None) -> str:
        """Store a group chat's metadata and cast (``raw``: the service's JSON of it):
        ``"new"``, ``"changed"`` or ``"unchanged"``."""
        model = _encode(room)
        raw = raw or model
        old = self._one("SELECT raw, removed_at FROM rooms WHERE id=?", (room.id,))
        with self._tx() as db:
            db.execute(
                "INSERT INTO rooms (id, title, raw, complete, removed_at, synced_at, model) "
                "VALUES (?, ?, ?, 0, NULL, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "title=excluded.title, raw=excluded.raw, model=excluded.model, "
                "removed_at=NULL, synced_at=excluded.synced_at",
                (room.id, room.title, raw, _now(), model),
            )
            db.execute("DELETE FROM room_characters WHERE room_id=?", (room.id,))
            db.executemany(
                "INSERT OR IGNORE INTO room_characters VALUES (?, ?, ?)",
                [(room.id, c.id, c.name) for c in room.characters],
            )
        return _status(old, raw)

    def chat_complete(self, chat_id: str, *, room: bool = False) -> bool:
        parent = _THREADS[room].parent
        row = self._one(f"SELECT complete FROM {parent} WHERE id=?", (chat_id,))
        return bool(row and row[0])

    def set_chat_complete(self, chat_id: str, complete: bool, *, room: bool = False) -> None:
        """Mark a chat's (or, with ``room``, a group chat's) history as fully archived, or
        (before a sync of it) as in progress: a run killed half-way through a chat then
        walks that chat's whole history again."""
        parent = _THREADS[room].parent
        with self._tx() as db:
            db.execute(f"UPDATE {parent} SET complete=? WHERE id=?", (int(complete), chat_id))

    def chat_ids_of(self, character_id: str, *, include_removed: bool = False) -> list[str]:
        sql = "SELECT id FROM chats WHERE character_id=?"
        if not include_removed:
            sql += " AND removed_at IS NULL"
        return [row[0] for row in self._rows(sql + " ORDER BY id", (character_id,))]

    def room_ids(self, *, include_removed: bool = False) -> list[str]:
        sql = "SELECT id FROM rooms"
        if not include_removed:
            sql += " WHERE removed_at IS NULL"
        return [row[0] for row in self._rows(sql + " ORDER BY id")]

    def mark_chat_removed(self, chat_id: str, *, room: bool = False) -> None:
        parent = _THREADS[room].parent
        with self._tx() as db:
            db.execute(
                f"UPDATE {parent} SET removed_at=coalesce(removed_at, ?) WHERE id=?",
                (_now(), chat_id),
            )

    def put_turns(
        self,
        chat_id: str,
        turns: Sequence[Turn],
        newer: int | None,
        raws: Sequence[bytes | None] | None = None,
        *,
        room: bool = False,
    ) -> PageWrite:
        """Store one page of turns (newest first, as the server pages them) of a chat or,
        with ``room``, a group chat. ``raws`` is the service's JSON of each turn, in order.

        ``newer`` is the position of the turn just newer than this page (None for the
        first page). Committed as one transaction.
        """
        table, key = _THREADS[room].table, _THREADS[room].key
        ids = tuple(turn.turn_id for turn in turns)
        marks = ",".join("?" * len(ids))
        before = {
            row[0]: row[1:]
            for row in self._rows(
                f"SELECT turn_id, pos, raw, removed_at FROM {table} "
                f"WHERE {key}=? AND turn_id IN ({marks})",
                (chat_id, *ids),
            )
        }
        rows, counts = _turn_rows(chat_id, turns, _raws(raws, len(turns)), newer, before)
        with self._tx() as db:
            db.executemany(
                f"INSERT INTO {table} ({key}, {_TURN_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT({key}, turn_id) DO UPDATE SET {_TURN_UPDATES}, removed_at=NULL",
                rows,
            )
        last = rows[-1][2] if rows else newer
        oldest_known = bool(ids) and ids[-1] in before
        return PageWrite(*counts, oldest_known=oldest_known, last_pos=last, ids=ids)

    def remove_missing_turns(
        self, chat_id: str, seen: set[str], since_pos: int | None, *, room: bool = False
    ) -> int:
        """Mark removed the turns not ``seen`` at or after ``since_pos`` (None: anywhere)."""
        table, key = _THREADS[room].table, _THREADS[room].key
        sql = f"SELECT turn_id FROM {table} WHERE {key}=? AND removed_at IS NULL"
        args: list[Any] = [chat_id]
        if since_pos is not None:
            sql += " AND pos >= ?"
            args.append(since_pos)
        gone = [row[0] for row in self._rows(sql, args) if row[0] not in seen]
        if gone:
            now = _now()
            with self._tx() as db:
                db.executemany(
                    f"UPDATE {table} SET removed_at=? WHERE {key}=? AND turn_id=?",
                    [(now, chat_id, turn_id) for turn_id in gone],
                )
        return len(gone)

    # --- legacy Chat V1 --------------------------------------------------------------------

    def put_v1_history(self, history: V1History, raw: bytes | None = None) -> str:
        """Store a V1 history's metadata (not its messages; ``raw``: the service's JSON of
        the history without them): new / changed / unchanged."""
        model = _encode(msgspec.structs.replace(history, messages=[]))
        raw = raw or model
        old = self._one(
            "SELECT raw, complete, removed_at FROM v1_histories WHERE id=?", (history.external_id,)
        )
        with self._tx() as db:
            db.execute(
                "INSERT INTO v1_histories (id, character_id, title, created, last_interaction, "
                "raw, complete, removed_at, synced_at, model) "
                "VALUES (?, ?, ?, ?, ?, ?, 0, NULL, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET title=excluded.title, "
                "last_interaction=excluded.last_interaction, raw=excluded.raw, "
                "model=excluded.model, "
                "complete=CASE WHEN raw=excluded.raw THEN complete ELSE 0 END, "
                "removed_at=NULL, synced_at=excluded.synced_at",
                (
                    history.external_id,
                    history.character_id,
                    history.title,
                    _iso(history.created),
                    _iso(history.last_interaction),
                    raw,
                    _now(),
                    model,
                ),
            )
        if old is None:
            return "new"
        return "unchanged" if old[0] == raw and old[1] and old[2] is None else "changed"

    def put_v1_messages(
        self,
        history_id: str,
        messages: Sequence[V1Message],
        raws: Sequence[bytes | None] | None = None,
    ) -> tuple[int, int]:
        """Store every message of a history (oldest first; ``raws``: the service's JSON of
        each); ones not listed are marked removed. Returns (new or changed, removed); the
        history is then complete."""
        before = {
            row[0]: row[1]
            for row in self._rows(
                "SELECT uuid, raw FROM v1_messages WHERE history_id=? AND removed_at IS NULL",
                (history_id,),
            )
        }
        rows = []
        for i, (m, raw) in enumerate(zip(messages, _raws(raws, len(messages)), strict=True)):
            model = _encode(m)
            fields = (m.src_name, int(m.is_human), int(m.is_alternative), m.text)
            rows.append((history_id, m.uuid, i, *fields, raw or model, model))
        changed = sum(1 for row in rows if before.get(row[1]) != row[7])
        gone = set(before) - {m.uuid for m in messages}
        now = _now()
        with self._tx() as db:
            db.executemany(
                "INSERT INTO v1_messages (history_id, uuid, pos, src_name, is_human, "
                "is_alternative, text, raw, model, removed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL) "
                "ON CONFLICT(history_id, uuid) DO UPDATE SET pos=excluded.pos, "
                "src_name=excluded.src_name, is_human=excluded.is_human, "
                "is_alternative=excluded.is_alternative, text=excluded.text, raw=excluded.raw, "
                "model=excluded.model, removed_at=NULL",
                rows,
            )
            db.executemany(
                "UPDATE v1_messages SET removed_at=? WHERE history_id=? AND uuid=?",
                [(now, history_id, uuid) for uuid in gone],
            )
            db.execute("UPDATE v1_histories SET complete=1 WHERE id=?", (history_id,))
        return changed, len(gone)

    def mark_v1_removed(self, character_id: str, listed: set[str]) -> int:
        """Mark removed the character's V1 histories that the server no longer lists."""
        gone = [
            row[0]
            for row in self._rows(
                "SELECT id FROM v1_histories WHERE character_id=? AND removed_at IS NULL",
                (character_id,),
            )
            if row[0] not in listed
        ]
        if gone:
            now = _now()
            with self._tx() as db:
                db.executemany(
                    "UPDATE v1_histories SET removed_at=? WHERE id=?", [(now, h) for h in gone]
                )
        return len(gone)

    # --- sync runs -------------------------------------------------------------------------

    def start_run(self, mode: str) -> int:
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO sync_runs (started_at, mode, status) VALUES (?, ?, 'running')",
                (_now(), mode),
            )
            return int(cursor.lastrowid or 0)

    def record_error(
        self, run_id: int, scope: str, object_id: str | None, exc: BaseException
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO sync_errors VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, _now(), scope, object_id, type(exc).__name__, str(exc)),
            )

    def finish_run(self, run_id: int, status: str, summary: bytes) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE sync_runs SET finished_at=?, status=?, summary=? WHERE id=?",
                (_now(), status, summary, run_id),
            )

    # --- reading ---------------------------------------------------------------------------

    def account(self) -> StoredAccount | None:
        row = self._one("SELECT id, username, name, raw, model FROM account LIMIT 1")
        if row is None:
            return None
        return StoredAccount(row[0], row[1], row[2] or "", row[3], row[4])

    def personas(self) -> Iterator[StoredPersona]:
        sql = "SELECT id, name, raw, removed_at, model FROM personas ORDER BY id"
        for row in self._rows(sql):
            yield StoredPersona(row[0], row[1], row[2], row[3] is not None, row[4])

    def characters(self, ids: Iterable[str] | None = None) -> Iterator[StoredCharacter]:
        """Characters by name (then id); only ``ids`` if given (CharacterNotFound if one is
        not in the archive)."""
        sql = "SELECT id, name, avatar_file_name, raw, removed_at, model FROM characters"
        args: list[str] = []
        if ids is not None:
            args = list(dict.fromkeys(ids))
            self._require("characters", args, CharacterNotFound)
            sql += f" WHERE id IN ({','.join('?' * len(args))})"
        for row in self._rows(sql + " ORDER BY name, id", args):
            yield StoredCharacter(row[0], row[1], row[2], row[3], row[4] is not None, model=row[5])

    def avatar(self, file_name: str | None) -> bytes | None:
        if not file_name:
            return None
        row = self._one("SELECT data FROM avatars WHERE file_name=?", (file_name,))
        return None if row is None else bytes(row[0])

    def _require(self, table: str, ids: Sequence[str], error: type[Exception]) -> None:
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            found = {
                r[0] for r in self._rows(f"SELECT id FROM {table} WHERE id IN ({marks})", part)
            }
            missing = [i for i in part if i not in found]
            if missing:
                raise error(f"not in the archive: {', '.join(missing)}")

    def chats(
        self,
        *,
        character_ids: Iterable[str] | None = None,
        chat_ids: Iterable[str] | None = None,
        include_removed: bool = True,
    ) -> Iterator[StoredChat]:
        """Chats ordered by character name, then creation time. Unknown ids raise
        CharacterNotFound / ChatNotFound."""
        where, args = ["1"], []
        if character_ids is not None:
            wanted = list(dict.fromkeys(character_ids))
            self._require("characters", wanted, CharacterNotFound)
            where.append(f"c.character_id IN ({','.join('?' * len(wanted))})")
            args += wanted
        if chat_ids is not None:
            wanted = list(dict.fromkeys(chat_ids))
            self._require("chats", wanted, ChatNotFound)
            where.append(f"c.id IN ({','.join('?' * len(wanted))})")
            args += wanted
        if not include_removed:
            where.append("c.removed_at IS NULL")
        sql = (
            "SELECT c.id, c.character_id, ch.name, c.name, c.state, c.create_time, c.raw, "
            "c.removed_at, c.complete, (SELECT count(*) FROM turns t WHERE t.chat_id=c.id "
            "AND t.removed_at IS NULL) FROM chats c JOIN characters ch ON ch.id=c.character_id "
            f"WHERE {' AND '.join(where)} ORDER BY ch.name, c.character_id, c.create_time, c.id"
        )
        for r in self._rows(sql, args):
            yield StoredChat(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] is not None, bool(r[8]), r[9]
            )

    def is_room(self, chat_id: str) -> bool:
        """Whether ``chat_id`` names an archived group chat (ids of chats and rooms are
        UUIDs from one space)."""
        return self._one("SELECT 1 FROM rooms WHERE id=?", (chat_id,)) is not None

    def turns(self, chat_id: str, *, include_removed: bool = False) -> Iterator[StoredTurn]:
        """A chat's (or group chat's) turns, oldest first, streamed from the file."""
        thread = _THREADS[self.is_room(chat_id)]
        sql = f"SELECT turn_id, pos, raw, removed_at FROM {thread.table} WHERE {thread.key}=?"
        if not include_removed:
            sql += " AND removed_at IS NULL"
        for row in self._rows(sql + " ORDER BY pos", (chat_id,)):
            yield StoredTurn(chat_id, row[0], row[1], row[2], row[3] is not None)

    def turn_raws(self, chat_id: str, *, room: bool = False) -> Iterator[bytes]:
        """The raw JSON of a chat's (``room``: a group chat's) live turns, oldest first:
        the exporters' fast path."""
        thread = _THREADS[room]
        for row in self._rows(
            f"SELECT raw FROM {thread.table} WHERE {thread.key}=? AND removed_at IS NULL "
            "ORDER BY pos",
            (chat_id,),
        ):
            yield row[0]

    def v1_histories(self, character_id: str | None = None) -> Iterator[StoredV1History]:
        sql = "SELECT id, character_id, title, created, raw, removed_at, model FROM v1_histories"
        args: tuple[str, ...] = ()
        if character_id is not None:
            sql, args = sql + " WHERE character_id=?", (character_id,)
        for r in self._rows(sql + " ORDER BY character_id, created, id", args):
            yield StoredV1History(r[0], r[1], r[2] or "", r[3], r[4], r[5] is not None, r[6])

    def v1_messages(
        self, history_id: str, *, include_removed: bool = False
    ) -> Iterator[StoredV1Message]:
        sql = "SELECT uuid, pos, raw, removed_at, model FROM v1_messages WHERE history_id=?"
        if not include_removed:
            sql += " AND removed_at IS NULL"
        for r in self._rows(sql + " ORDER BY pos", (history_id,)):
            yield StoredV1Message(history_id, r[0], r[1], r[2], r[3] is not None, r[4])

    def rooms(
        self,
        *,
        room_ids: Iterable[str] | None = None,
        character_ids: Iterable[str] | None = None,
        include_removed: bool = True,
    ) -> Iterator[StoredRoom]:
        """Group chats by title, then id: only ``room_ids`` (ChatNotFound for one the
        archive lacks), or only those whose cast has one of ``character_ids``."""
        where, args = ["1"], []
        if room_ids is not None:
            wanted = list(dict.fromkeys(room_ids))
            self._require("rooms", wanted, ChatNotFound)
            where.append(f"r.id IN ({','.join('?' * len(wanted))})")
            args += wanted
        if character_ids is not None:
            wanted = list(dict.fromkeys(character_ids))
            where.append(
                "r.id IN (SELECT room_id FROM room_characters WHERE character_id IN "
                f"({','.join('?' * len(wanted))}))"
            )
            args += wanted
        if not include_removed:
            where.append("r.removed_at IS NULL")
        sql = (
            "SELECT r.id, r.title, r.raw, r.removed_at, r.model, r.complete, "
            "(SELECT count(*) FROM room_turns t WHERE t.room_id=r.id AND t.removed_at IS NULL), "
            "(SELECT min(create_time) FROM room_turns t WHERE t.room_id=r.id) "
            f"FROM rooms r WHERE {' AND '.join(where)} ORDER BY r.title, r.id"
        )
        for r in self._rows(sql, args):
            cast = tuple(
                (c[0], c[1] or "")
                for c in self._rows(
                    "SELECT character_id, name FROM room_characters WHERE room_id=? ORDER BY rowid",
                    (r[0],),
                )
            )
            yield StoredRoom(
                r[0], r[1] or "", r[2], r[3] is not None, r[4], bool(r[5]), r[6], r[7], cast
            )

    def runs(self) -> list[dict[str, Any]]:
        """The sync runs recorded in the archive, oldest first, with their errors."""
        runs = []
        for r in self._rows(
            "SELECT id, started_at, finished_at, mode, status FROM sync_runs ORDER BY id"
        ):
            errors = [
                {"scope": e[0], "id": e[1], "error": e[2], "message": e[3]}
                for e in self._rows(
                    "SELECT scope, object_id, error, message FROM sync_errors WHERE run_id=?",
                    (r[0],),
                )
            ]
            runs.append(
                {
                    "id": r[0],
                    "started_at": r[1],
                    "finished_at": r[2],
                    "mode": r[3],
                    "status": r[4],
                    "errors": errors,
                }
            )
        return runs

    def canonical(self, *, include_removed: bool = True) -> Iterator[str]:
        """The archive's content as deterministic lines, without bookkeeping (sync times,
        run history, error notes): two archives of the same server state give the same
        lines, whatever runs, interruptions and resumptions made them. Without
        ``include_removed``, what the server no longer has is left out: the view a fresh
        backup of the server as it is now would give."""
        yield f"schema {self.schema_version}"
        for table, columns, order in _CANONICAL:
            where = ""
            if not include_removed:
                live = ["removed_at IS NULL"] if "removed_at" in columns else []
                live += [_LIVE_PARENT[table]] if table in _LIVE_PARENT else []
                where = " WHERE " + " AND ".join(live) if live else ""
            for row in self._rows(f"SELECT {columns} FROM {table}{where} ORDER BY {order}"):
                yield table + " " + _plain_encode([_plain(v) for v in row]).decode()


# Children of a removed chat or history are gone from the server with it.
_LIVE_PARENT = {
    "turns": "chat_id IN (SELECT id FROM chats WHERE removed_at IS NULL)",
    "v1_messages": "history_id IN (SELECT id FROM v1_histories WHERE removed_at IS NULL)",
    "room_characters": "room_id IN (SELECT id FROM rooms WHERE removed_at IS NULL)",
    "room_turns": "room_id IN (SELECT id FROM rooms WHERE removed_at IS NULL)",
}


def _plain(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


_CANONICAL = (
    ("account", "id, username, name, raw, model", "id"),
    ("personas", "id, name, raw, model, removed_at IS NOT NULL", "id"),
    (
        "characters",
        "id, name, title, greeting, definition, avatar_file_name, raw, model, "
        "removed_at IS NOT NULL",
        "id",
    ),
    ("avatars", "file_name, hex(data)", "file_name"),
    (
        "chats",
        "id, character_id, name, state, type, model, create_time, raw, complete, "
        "removed_at IS NOT NULL",
        "id",
    ),
    (
        "turns",
        "chat_id, turn_id, pos, create_time, author_id, author_name, is_human, is_pinned, "
        "primary_candidate_id, candidates, text, raw, removed_at IS NOT NULL",
        "chat_id, pos, turn_id",
    ),
    (
        "v1_histories",
        "id, character_id, title, created, last_interaction, raw, model, complete, "
        "removed_at IS NOT NULL",
        "id",
    ),
    (
        "v1_messages",
        "history_id, uuid, pos, src_name, is_human, is_alternative, text, raw, model, "
        "removed_at IS NOT NULL",
        "history_id, pos, uuid",
    ),
    ("rooms", "id, title, raw, model, complete, removed_at IS NOT NULL", "id"),
    ("room_characters", "room_id, character_id, name", "room_id, character_id"),
    (
        "room_turns",
        "room_id, turn_id, pos, create_time, author_id, author_name, is_human, is_pinned, "
        "primary_candidate_id, candidates, text, raw, removed_at IS NOT NULL",
        "room_id, pos, turn_id",
    ),
)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _plain_encode(value)[1:-1].decode()


@dataclass(frozen=True)
class _Thread:
    """Where the turns of one kind of conversation live: Chat V2 chats or group chats."""

    parent: str
    table: str
    key: str


_THREADS = {
    False: _Thread("chats", "turns", "chat_id"),
    True: _Thread("rooms", "room_turns", "room_id"),
}
_TURN_COLUMNS = (
    "turn_id, pos, create_time, author_id, author_name, is_human, is_pinned, "
    "primary_candidate_id, candidates, text, raw"
)
_TURN_UPDATES = ", ".join(f"{column}=excluded.{column}" for column in _TURN_COLUMNS.split(", ")[1:])


def _raws(raws: Sequence[bytes | None] | None, count: int) -> Sequence[bytes | None]:
    """The service's JSON of each of ``count`` objects (None where it was not captured)."""
    if raws is None:
        return [None] * count
    if len(raws) != count:
        raise ValueError(f"{len(raws)} raw bodies for {count} objects")
    return raws


def _status(old: tuple[Any, ...] | None, raw: bytes) -> str:
    """new / changed / unchanged, from the row before (raw, removed_at) and the new raw."""
    if old is None:
        return "new"
    return "changed" if old[0] != raw or old[1] is not None else "unchanged"


def _turn_rows(
    chat_id: str,
    turns: Sequence[Turn],
    raws: Sequence[bytes | None],
    newer: int | None,
    before: dict[str, tuple[Any, ...]],
) -> tuple[list[tuple[Any, ...]], tuple[tuple[str, ...], tuple[str, ...], int]]:
    """The rows to upsert for a page, and (new, changed, unchanged) against ``before``."""
    rows: list[tuple[Any, ...]] = []
    new: list[str] = []
    changed: list[str] = []
    unchanged = 0
    for turn, sent in zip(turns, raws, strict=True):
        raw = sent or _encode(turn)
        newer = turn_position(turn.create_time, newer)
        old = before.get(turn.turn_id)
        if old is None:
            new.append(turn.turn_id)
        elif old[1] != raw or old[2] is not None:
            changed.append(turn.turn_id)
        else:
            unchanged += 1
        author = turn.author
        rows.append(
            (
                chat_id,
                turn.turn_id,
                newer,
                _iso(turn.create_time),
                author.author_id,
                author.name,
                int(author.is_human),
                int(turn.is_pinned),
                turn.primary_candidate_id,
                len(turn.candidates),
                turn.text,
                raw,
            )
        )
    return rows, (tuple(new), tuple(changed), unchanged)


def _check_file(path: Path) -> bool:
    """Whether ``path`` exists; ArchiveCorrupt if it is there but cannot be an archive."""
    if not path.exists():
        return False
    if not path.is_file():
        raise ArchiveCorrupt("not a file", path=path)
    try:
        with path.open("rb") as file:
            header = file.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise ArchiveWriteError(f"cannot read the file: {exc.strerror}", path=path) from None
    if header and header != _SQLITE_MAGIC:
        raise ArchiveCorrupt("not a caiclient archive (not a SQLite file)", path=path)
    return True
