"""Backup and export: a local archive of everything the account can read (issue 14).

- :class:`AsyncArchive` / :class:`Archive`: open an archive file, ``sync`` it from a client,
  iterate its characters, chats and turns, ``export`` it (see docs/archive.md).
- :mod:`caiclient.archive.store`: the SQLite store of record.
- :mod:`caiclient.archive.sync`: the sync engine (paged, paced, resumable, incremental).
- :mod:`caiclient.archive.export`: the exporters (pure functions from rows to bytes).

Nothing here is imported by ``import caiclient``.
"""

from __future__ import annotations

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
from .api import Archive, AsyncArchive
from .errors import (
    ArchiveCorrupt,
    ArchiveError,
    ArchiveLocked,
    ArchiveTooNew,
    ArchiveWriteError,
    OutputExists,
)
from .events import (
    ChatDone,
    ChatFailed,
    Counters,
    Event,
    Paused,
    Planned,
    StepFailed,
    SyncFinished,
    SyncIssue,
    SyncStarted,
    SyncSummary,
)
from .export import FORMATS, ExportResult
from .store import SCHEMA_VERSION
from .sync import SyncOptions

__all__ = [
    "FORMATS",
    "SCHEMA_VERSION",
    "Archive",
    "ArchiveCorrupt",
    "ArchiveError",
    "ArchiveLocked",
    "ArchiveTooNew",
    "ArchiveWriteError",
    "AsyncArchive",
    "ChatDone",
    "ChatFailed",
    "Counters",
    "Event",
    "ExportResult",
    "OutputExists",
    "Paused",
    "Planned",
    "StepFailed",
    "StoredAccount",
    "StoredCharacter",
    "StoredChat",
    "StoredPersona",
    "StoredRoom",
    "StoredTurn",
    "StoredV1History",
    "StoredV1Message",
    "SyncFinished",
    "SyncIssue",
    "SyncOptions",
    "SyncStarted",
    "SyncSummary",
]
