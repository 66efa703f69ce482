"""``sillytavern``: SillyTavern chat ``.jsonl`` (docs/archive.md, "Exports").

Line 1 is the header SillyTavern requires (``user_name``, ``character_name``,
``create_date``, ``chat_metadata``); then one message per turn, oldest first. Character
turns carry every candidate as ``swipes`` (oldest first), ``swipe_id`` pointing at the
primary one so that ``mes == swipes[swipe_id]``, and an aligned ``swipe_info``. Timestamps
are the service's (ISO 8601), never the export time. c.ai ids go under ``extra.cai``.

Group chats (rooms) use SillyTavern's group-chat file: the same header and message lines
(``character_name`` is the room's title; SillyTavern's own group saves put ``chat_metadata``
there), several speakers, and each character message names its speaker with
``original_avatar`` (the avatar file SillyTavern gives a card it imports under that name,
``<name>.png``) and ``force_avatar`` (that file's thumbnail URL), as SillyTavern writes its
own group messages. Every human in the room is a user message under their own name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

from .._rows import StoredAccount, StoredCharacter, StoredChat, StoredRoom
from ._turns import LiteTurn, chronological, decode_turn, encode

__all__ = ["avatar_file", "create_date", "render_chat", "render_room"]

# What SillyTavern's file-name sanitiser removes from a character's name.
_NOT_IN_FILE_NAMES = re.compile(r'[\x00-\x1f\x7f/\\?<>:*|"]')


def create_date(iso: str | None) -> str:
    """``YYYY-MM-DD@HHhMMmSSs``, the header date SillyTavern's client writes."""
    if not iso or len(iso) < 19:
        return "1970-01-01@00h00m00s"
    return f"{iso[:10]}@{iso[11:13]}h{iso[14:16]}m{iso[17:19]}s"


def avatar_file(name: str) -> str:
    """``<name>.png``: the avatar file SillyTavern names a card it imports as ``name``."""
    return (_NOT_IN_FILE_NAMES.sub("", name).strip() or "character") + ".png"


def _message(turn: LiteTurn, chat_id: str, key: str = "chat_id") -> dict[str, Any]:
    candidates, index = chronological(turn)
    primary = candidates[index] if candidates else None
    author = turn.author
    cai: dict[str, Any] = {
        key: chat_id,
        "turn_id": turn.turn_key.turn_id,
        "candidate_ids": [c.candidate_id for c in candidates],
        "is_pinned": turn.is_pinned,
        "state": turn.state,
        "safety_truncated": primary.safety_truncated if primary is not None else False,
    }
    texts = [c.raw_content for c in candidates]
    message: dict[str, Any] = {
        "name": author.name,
        "is_user": author.is_human,
        "is_system": False,
        "send_date": turn.create_time or "",
        "mes": texts[index] if texts else "",
        "extra": {"cai": cai},
    }
    if author.is_human:
        # SillyTavern has no swipes on user messages; earlier versions (edits) stay here.
        cai["primary_candidate_id"] = turn.primary_candidate_id
        cai["versions"] = texts
        return message
    message["swipe_id"] = index
    message["swipes"] = texts
    # The service records when each candidate was made, not how long it took: no
    # gen_started/gen_finished. swipe_info[i] belongs to candidate_ids[i].
    sent = turn.create_time or ""
    message["swipe_info"] = [{"send_date": c.create_time or sent, "extra": {}} for c in candidates]
    return message


def render_chat(
    chat: StoredChat,
    character: StoredCharacter | None,
    account: StoredAccount | None,
    turns: Iterable[bytes],
) -> Iterator[bytes]:
    """The file's bytes, a batch of lines at a time; ``turns``: raw turns, oldest first."""
    header = {
        "user_name": (account.name or account.username) if account is not None else "You",
        "character_name": character.name if character is not None else chat.character_name,
        "create_date": create_date(chat.create_time),
        "chat_metadata": {
            "cai": {
                "chat_id": chat.id,
                "character_id": chat.character_id,
                "name": chat.name,
                "state": chat.state,
                "removed": chat.removed,
            }
        },
    }
    yield encode(header) + b"\n"
    yield from _lines(_message(decode_turn(raw), chat.id) for raw in turns)


def _group_message(turn: LiteTurn, room_id: str) -> dict[str, Any]:
    message = _message(turn, room_id, "room_id")
    message["extra"]["cai"]["author_id"] = turn.author.author_id
    if not turn.author.is_human:
        avatar = avatar_file(turn.author.name)
        message["original_avatar"] = avatar
        message["force_avatar"] = "/thumbnail?type=avatar&file=" + quote(avatar)
    return message


def render_room(
    room: StoredRoom, account: StoredAccount | None, turns: Iterable[bytes]
) -> Iterator[bytes]:
    """A group chat's file; ``turns``: raw turns, oldest first."""
    cast = [{"id": character_id, "name": name} for character_id, name in room.characters]
    header = {
        "user_name": (account.name or account.username) if account is not None else "You",
        "character_name": room.title or ", ".join(room.character_names),
        "create_date": create_date(room.create_time),
        "chat_metadata": {
            "cai": {
                "room_id": room.id,
                "title": room.title,
                "characters": cast,
                "removed": room.removed,
            }
        },
    }
    yield encode(header) + b"\n"
    yield from _lines(_group_message(decode_turn(raw), room.id) for raw in turns)


def _lines(messages: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """The messages as JSON lines, a batch at a time."""
    batch: list[bytes] = []
    for message in messages:
        batch.append(encode(message))
        if len(batch) >= 256:
            batch.append(b"")
            yield b"\n".join(batch)
            batch = []
    if batch:
        batch.append(b"")
        yield b"\n".join(batch)
