"""``cai-dump``: the legacy "CAI dump" JSON of a character's whole history (docs/archive.md).

``{"info": {"character": …}, "histories": {"histories": [{"external_id", "msgs": [...]}]}}``
with one history per Chat V2 chat and per legacy V1 history. Each message is
``{"text", "src": {"is_human", "name"}, "tgt": {"name"}}`` plus the c.ai ids under ``cai``.
Only primary candidates fit the format. Written as a stream: one chat in memory at most.

SillyTavern's own importer of this format fails on dumps that hold history (docs/archive.md,
"Exports"); point SillyTavern users at ``sillytavern`` or ``ooba``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from .._rows import StoredCharacter, StoredV1Message
from ._turns import decode_turn, encode

__all__ = ["render_character"]

History = tuple[str, Iterable[dict[str, Any]]]


def v2_messages(turns: Iterable[bytes], character: str, user: str) -> Iterator[dict[str, Any]]:
    for raw in turns:
        turn = decode_turn(raw)
        primary = next(
            (c for c in turn.candidates if c.candidate_id == turn.primary_candidate_id),
            turn.candidates[0] if turn.candidates else None,
        )
        human = turn.author.is_human
        yield {
            "text": primary.raw_content if primary is not None else "",
            "src": {"is_human": human, "name": turn.author.name},
            "tgt": {"is_human": not human, "name": character if human else user},
            "cai": {"turn_id": turn.turn_key.turn_id, "created": turn.create_time},
        }


def v1_messages(
    messages: Iterable[StoredV1Message], character: str, user: str
) -> Iterator[dict[str, Any]]:
    for row in messages:
        m = msgspec.json.decode(row.model or row.raw)
        human = bool(m.get("is_human"))
        yield {
            "text": m.get("text", ""),
            "src": {"is_human": human, "name": m.get("src_name", "")},
            "tgt": {"is_human": not human, "name": character if human else user},
            "cai": {"uuid": m.get("uuid"), "is_alternative": m.get("is_alternative", False)},
        }


def render_character(character: StoredCharacter, histories: Iterable[History]) -> Iterator[bytes]:
    """The dump's bytes: ``histories`` yields (history id, its messages oldest first)."""
    info = character.raw or encode({"external_id": character.id, "name": character.name})
    yield b'{"info":{"character":' + info + b'},"histories":{"histories":['
    for number, (history_id, messages) in enumerate(histories):
        yield (b"," if number else b"") + b'{"external_id":' + encode(history_id) + b',"msgs":['
        for index, message in enumerate(messages):
            yield (b"," if index else b"") + encode(message)
        yield b"]}"
    yield b"]}}\n"
