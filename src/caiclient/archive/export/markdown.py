"""``markdown``: a readable transcript per chat.

Each turn is a heading line (author, time, a pin mark) and the primary text; a character
turn with several candidates lists the others in a ``<details>`` block (rendered folded
by GitHub and most viewers), so no swipe is lost. A group chat's turns read the same, each
under its speaker's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .._rows import StoredCharacter, StoredChat, StoredRoom
from ._turns import chronological, decode_turn

__all__ = ["render_chat", "render_room"]


def _when(iso: str | None) -> str:
    return f"{iso[:10]} {iso[11:16]} UTC" if iso and len(iso) >= 16 else ""


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.splitlines()) or ">"


def render_chat(
    chat: StoredChat, character: StoredCharacter | None, turns: Iterable[bytes]
) -> Iterator[bytes]:
    name = character.name if character is not None else chat.character_name
    title = chat.name or f"Chat with {name}"
    notes = [f"Character: **{name}**", f"chat `{chat.id}`", f"started {_when(chat.create_time)}"]
    if chat.state == "STATE_ARCHIVED":
        notes.append("archived")
    if chat.removed:
        notes.append("deleted on the server since (kept in the archive)")
    yield f"# {title}\n\n{' · '.join(notes)}\n".encode()
    for raw in turns:
        yield _turn(raw).encode()


def render_room(room: StoredRoom, turns: Iterable[bytes]) -> Iterator[bytes]:
    """A group chat's transcript; ``turns``: raw turns, oldest first."""
    cast = ", ".join(f"**{name}**" for name in room.character_names)
    title = room.title or f"Group chat with {', '.join(room.character_names)}"
    notes = [f"Group chat: {cast}", f"room `{room.id}`", f"started {_when(room.create_time)}"]
    if room.removed:
        notes.append("deleted on the server since (kept in the archive)")
    yield f"# {title}\n\n{' · '.join(notes)}\n".encode()
    for raw in turns:
        yield _turn(raw).encode()


def _turn(raw: bytes) -> str:
    turn = decode_turn(raw)
    candidates, index = chronological(turn)
    pin = " · 📌 pinned" if turn.is_pinned else ""
    head = f"\n**{turn.author.name or '?'}** · {_when(turn.create_time)}{pin}\n\n"
    text = candidates[index].raw_content if candidates else ""
    parts = [head, text, "\n"]
    if len(candidates) > 1:
        label = "swipes" if not turn.author.is_human else "versions"
        parts.append(f"\n<details><summary>{len(candidates)} {label}</summary>\n\n")
        for number, candidate in enumerate(candidates, start=1):
            mark = " (shown above)" if number - 1 == index else ""
            parts.append(
                f"{number}/{len(candidates)}{mark}:\n\n{_quote(candidate.raw_content)}\n\n"
            )
        parts.append("</details>\n")
    return "".join(parts)
