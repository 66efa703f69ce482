"""Where the emulator's records live between restarts: nowhere (memory) or one SQLite file.

Every area store keeps its records in memory for speed and writes each change through
:class:`Persistence`: ``put(kind, key, record)`` after a create or update, ``delete`` after a
removal, and ``load(kind, type)`` once at start-up. Records are msgspec-encodable values
(Structs, dataclasses, dicts); ``load`` returns them in the order they were first put.

The file holds every token, so it is created readable by its owner only (0600) before
SQLite opens it; SQLite gives its ``-wal`` and ``-shm`` files the database file's mode
(issue 10 #15). An existing file is narrowed to 0600 too.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Any, TypeVar

import msgspec

__all__ = ["Persistence"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind  TEXT NOT NULL,
    key   TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS records_by_kind ON records (kind, seq);
"""


def _private(path: Path) -> None:
    """Create ``path`` with mode 0600 if it does not exist; narrow it to 0600 if it does."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class Persistence:
    """Write-through record storage; ``Persistence(None)`` keeps nothing (the default)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._seq = 0
        self._encode = msgspec.json.Encoder().encode
        if self.path is not None:
            _private(self.path)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()
            self._seq = int(row[0])
            self._db = db

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def put(self, kind: str, key: str, record: Any) -> None:
        """Store ``record`` under (kind, key), replacing any earlier one but keeping its order."""
        db = self._db
        if db is None:
            return
        value = self._encode(record)
        with self._lock:
            self._seq += 1
            db.execute(
                "INSERT INTO records (kind, key, seq, value) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value",
                (kind, key, self._seq, value),
            )

    def delete(self, kind: str, key: str) -> None:
        db = self._db
        if db is None:
            return
        with self._lock:
            db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))

    def load(self, kind: str, type_: type[T]) -> dict[str, T]:
        """Every record of ``kind``, decoded as ``type_``, in the order first put."""
        db = self._db
        if db is None:
            return {}
        rows = db.execute(
            "SELECT key, value FROM records WHERE kind = ? ORDER BY seq", (kind,)
        ).fetchall()
        return {key: msgspec.json.decode(value, type=type_) for key, value in rows}

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()
