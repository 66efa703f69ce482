"""``native``: the lossless JSON-lines export (FORMATS.md §c7).

Line 1 is a header ``{"chat", "character", "exported_at", "tool_version", "schema"}``
(``chat`` and ``character`` are the archived objects as the client decoded them); every
further line is one turn exactly as archived, oldest first, with every candidate. Nothing is
decoded on the way, so this is also the fastest export.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .._rows import StoredCharacter, StoredChat
from ._turns import encode

__all__ = ["SCHEMA", "render_chat"]

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
