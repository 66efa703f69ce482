"""``native``: the lossless JSON-lines export (docs/archive.md, "Exports").

Line 1 is a header ``{"chat", "character", "removed", "exported_at", "tool_version",
"schema"}`` (``chat`` and ``character`` are the archived objects as the service sent them);
every further line is one turn exactly as the service sent it, oldest first, with every
candidate. A group chat's header has ``room`` (the room as sent) and ``characters`` (its
cast, ``[{"id", "name"}]``) in place of ``chat`` and ``character``. Nothing is decoded on the
way, so this is also the fastest export.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .._rows import StoredCharacter, StoredChat, StoredRoom
from ._turns import encode

__all__ = ["SCHEMA", "render_chat", "render_room"]

SCHEMA = "caiclient-native/1"


def render_chat(
    chat: StoredChat,
    character: StoredCharacter | None,
    turns: Iterable[bytes],
    *,
    exported_at: str,
    tool_version: str,
) -> Iterator[bytes]:
    """The file's bytes, a few lines at a time. ``turns``: raw archived turns, oldest first."""
    header = (
        b'{"chat":'
        + chat.raw
        + b',"character":'
        + (character.raw if character is not None and character.raw else b"null")
        + b',"removed":'
        + (b"true" if chat.removed else b"false")
        + b',"exported_at":'
        + encode(exported_at)
        + b',"tool_version":'
        + encode(tool_version)
        + b',"schema":'
        + encode(SCHEMA)
        + b"}\n"
    )
    yield header
    yield from _lines(turns)


def render_room(
    room: StoredRoom, turns: Iterable[bytes], *, exported_at: str, tool_version: str
) -> Iterator[bytes]:
    """A group chat's file: its header, then its raw turns (oldest first) one per line."""
    cast = [{"id": character_id, "name": name} for character_id, name in room.characters]
    yield (
        b'{"room":'
        + room.raw
        + b',"characters":'
        + encode(cast)
        + b',"removed":'
        + (b"true" if room.removed else b"false")
        + b',"exported_at":'
        + encode(exported_at)
        + b',"tool_version":'
        + encode(tool_version)
        + b',"schema":'
        + encode(SCHEMA)
        + b"}\n"
    )
    yield from _lines(turns)


def _lines(turns: Iterable[bytes]) -> Iterator[bytes]:
    batch: list[bytes] = []
    for raw in turns:
        batch.append(raw)
        if len(batch) >= 256:
            batch.append(b"")
            yield b"\n".join(batch)
            batch = []
    if batch:
        batch.append(b"")
        yield b"\n".join(batch)
