"""The errors of the archive, under :class:`caiclient.errors.CaiError`.

::

    CaiError
    └── ArchiveError            anything the archive file or an export refused
        ├── ArchiveCorrupt      not a caiclient archive (another SQLite file, not SQLite at
        │                       all) or a damaged one; nothing is written to it
        ├── ArchiveTooNew       written by a newer caiclient (a schema this one does not know)
        ├── ArchiveLocked       another process holds the archive's write lock past the wait
        ├── ArchiveWriteError   the file system refused a write: read-only, disk full, …
        └── OutputExists        an export would overwrite a file (pass ``force``)

An unknown format is a :class:`~caiclient.errors.ValidationError`; a character or chat the
archive does not hold is :class:`~caiclient.errors.CharacterNotFound` /
:class:`~caiclient.errors.ChatNotFound`, as from the client.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CaiError

__all__ = [
    "ArchiveCorrupt",
    "ArchiveError",
    "ArchiveLocked",
    "ArchiveTooNew",
    "ArchiveWriteError",
    "OutputExists",
]


class ArchiveError(CaiError):
    """The archive file, or a file an export writes, could not be used."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        super().__init__(message if path is None else f"{path}: {message}")


class ArchiveCorrupt(ArchiveError):
    """The file is not a caiclient archive, or it is damaged; it was not changed."""


class ArchiveTooNew(ArchiveError):
    """The archive was written by a newer caiclient; ``found`` and ``supported`` versions."""

    def __init__(self, path: str | Path, *, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"archive schema version {found} is newer than this caiclient supports "
            f"({supported}); upgrade caiclient to open it",
            path=path,
        )


class ArchiveLocked(ArchiveError):
    """Another process kept the archive locked for longer than the wait allowed."""


class ArchiveWriteError(ArchiveError):
    """The file system refused a write (read-only file or directory, disk full, …).

    What was committed before stays intact; the failed step was rolled back.
    """


class OutputExists(ArchiveError):
    """An export would replace an existing file; nothing was written (pass ``force``)."""
