"""The archive's SQL schema as forward migrations (a data table: one entry per version).

``MIGRATIONS[n]`` turns a version ``n - 1`` file into version ``n``; a new file runs them all.
Every object keeps the JSON the service sent (``raw``) beside the parsed columns, so a
later exporter can use fields neither a column nor the client's models hold. ``removed_at``
marks what the server no longer has: the archive never forgets a chat, turn or message
because the service dropped it.
"""

from __future__ import annotations

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION"]

# ``PRAGMA application_id``: "CAIa" — how a caiclient archive is told from other SQLite files.
APPLICATION_ID = 0x43414961

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE account (
    id TEXT PRIMARY KEY, username TEXT NOT NULL, name TEXT, raw BLOB NOT NULL,
    synced_at TEXT NOT NULL);
CREATE TABLE personas (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, raw BLOB NOT NULL, removed_at TEXT,
    synced_at TEXT NOT NULL);
CREATE TABLE characters (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, title TEXT, greeting TEXT, definition TEXT,
    avatar_file_name TEXT, raw BLOB, info_error TEXT, removed_at TEXT, synced_at TEXT NOT NULL);
CREATE TABLE avatars (
    file_name TEXT PRIMARY KEY, data BLOB NOT NULL, synced_at TEXT NOT NULL);
CREATE TABLE chats (
    id TEXT PRIMARY KEY, character_id TEXT NOT NULL REFERENCES characters(id),
    name TEXT, state TEXT, type TEXT, model TEXT, create_time TEXT, raw BLOB NOT NULL,
    complete INTEGER NOT NULL DEFAULT 0, removed_at TEXT, synced_at TEXT NOT NULL);
CREATE INDEX chats_by_character ON chats(character_id);
CREATE TABLE turns (
    chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE, turn_id TEXT NOT NULL,
    pos INTEGER NOT NULL, create_time TEXT, author_id TEXT, author_name TEXT,
    is_human INTEGER NOT NULL, is_pinned INTEGER NOT NULL, primary_candidate_id TEXT,
    candidates INTEGER NOT NULL, text TEXT NOT NULL, raw BLOB NOT NULL, removed_at TEXT,
    UNIQUE (chat_id, turn_id));
CREATE INDEX turns_in_order ON turns(chat_id, pos);
CREATE TABLE v1_histories (
    id TEXT PRIMARY KEY, character_id TEXT NOT NULL REFERENCES characters(id), title TEXT,
    created TEXT, last_interaction TEXT, raw BLOB NOT NULL, complete INTEGER NOT NULL DEFAULT 0,
    removed_at TEXT, synced_at TEXT NOT NULL);
CREATE INDEX v1_histories_by_character ON v1_histories(character_id);
CREATE TABLE v1_messages (
    history_id TEXT NOT NULL REFERENCES v1_histories(id) ON DELETE CASCADE,
    uuid TEXT NOT NULL, pos INTEGER NOT NULL, src_name TEXT, is_human INTEGER NOT NULL,
    is_alternative INTEGER NOT NULL, text TEXT NOT NULL, raw BLOB NOT NULL, removed_at TEXT,
    UNIQUE (history_id, uuid));
CREATE INDEX v1_messages_in_order ON v1_messages(history_id, pos);
CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, mode TEXT NOT NULL,
    status TEXT NOT NULL, summary BLOB);
CREATE TABLE sync_errors (
    run_id INTEGER NOT NULL REFERENCES sync_runs(id), at TEXT NOT NULL, scope TEXT NOT NULL,
    object_id TEXT, error TEXT NOT NULL, message TEXT NOT NULL);
"""

# Version 2: group chats ("rooms", docs/protocol.md §9), before the client can read them.
_V2 = """
CREATE TABLE rooms (
    id TEXT PRIMARY KEY, title TEXT, raw BLOB NOT NULL, complete INTEGER NOT NULL DEFAULT 0,
    removed_at TEXT, synced_at TEXT NOT NULL);
CREATE TABLE room_characters (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE, character_id TEXT NOT NULL,
    name TEXT, PRIMARY KEY (room_id, character_id));
CREATE TABLE room_turns (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE, turn_id TEXT NOT NULL,
    pos INTEGER NOT NULL, create_time TEXT, author_id TEXT, author_name TEXT,
    is_human INTEGER NOT NULL, candidates INTEGER NOT NULL, text TEXT NOT NULL,
    raw BLOB NOT NULL, removed_at TEXT, UNIQUE (room_id, turn_id));
CREATE INDEX room_turns_in_order ON room_turns(room_id, pos);
"""

# Version 3: ``raw`` becomes the JSON the service sent for the object (it was the client
# model's JSON). Where the models rename or reshape the service's fields, ``model`` keeps the
# model's JSON for the rows to decode; older rows' ``raw`` was exactly that, so it is copied.
# Room turns gain the columns chat turns have, so one code path stores both.
_V3 = """
ALTER TABLE account ADD COLUMN model BLOB;
UPDATE account SET model = raw;
ALTER TABLE personas ADD COLUMN model BLOB;
UPDATE personas SET model = raw;
ALTER TABLE characters ADD COLUMN model BLOB;
UPDATE characters SET model = raw;
ALTER TABLE v1_histories ADD COLUMN model BLOB;
UPDATE v1_histories SET model = raw;
ALTER TABLE v1_messages ADD COLUMN model BLOB;
UPDATE v1_messages SET model = raw;
ALTER TABLE rooms ADD COLUMN model BLOB;
UPDATE rooms SET model = raw;
ALTER TABLE room_turns ADD COLUMN is_pinned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE room_turns ADD COLUMN primary_candidate_id TEXT;
"""

MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2, 3: _V3}
SCHEMA_VERSION = max(MIGRATIONS)
