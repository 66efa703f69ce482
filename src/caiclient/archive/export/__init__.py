"""Exports: files other tools import, made from the archive alone (no network).

Each format module is a set of pure functions from archive rows to bytes (streamed, tested
without a network); :func:`export` picks the rows, names the files and writes each one
atomically. ``out`` is a directory that receives the files, except when the export makes
exactly one file and ``out`` ends with that file's extension: then it is that file.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ValidationError
from .._rows import StoredCharacter, StoredChat, StoredRoom
from ..errors import OutputExists
from ..store import Store
from . import cai_dump, card, html, markdown, native, ooba, sillytavern
from ._files import safe_name, write_atomic
from ._turns import encode

__all__ = ["FORMATS", "ExportResult", "export"]

FORMATS = ("native", "sillytavern", "ooba", "cai-dump", "markdown", "html", "card")


@dataclass
class ExportResult:
    """What an export wrote: the files (in order), how many chats (group chats included)
    and turns they hold, and warnings (e.g. an avatar that could not be read, replaced by a
    plain tile; group chats a format cannot hold)."""

    format: str
    files: list[Path] = field(default_factory=list)
    chats: int = 0
    turns: int = 0
    bytes: int = 0
    warnings: list[str] = field(default_factory=list)


Producer = Callable[[], Iterable[bytes]]


@dataclass(frozen=True)
class _File:
    relative: str
    produce: Producer


@dataclass
class _Plan:
    """What one export writes. ``chats`` / ``rooms``: the selected ids (None: by
    ``characters``, or everything)."""

    store: Store
    characters: list[str] | None
    chats: list[str] | None
    result: ExportResult
    rooms: list[str] | None = None
    files: list[_File] = field(default_factory=list)
    _names: dict[str, StoredCharacter] = field(default_factory=dict)

    def chat_rows(self) -> Iterator[StoredChat]:
        return self.store.chats(character_ids=self.characters, chat_ids=self.chats)

    def room_rows(self) -> Iterator[StoredRoom]:
        return self.store.rooms(character_ids=self.characters, room_ids=self.rooms)

    def room_turns(self, room: StoredRoom) -> Iterator[bytes]:
        return self.counted(self.store.turn_raws(room.id, room=True))

    def character(self, character_id: str) -> StoredCharacter | None:
        if character_id not in self._names:
            for row in self.store.characters([character_id]):
                self._names[character_id] = row
        return self._names.get(character_id)

    def counted(self, turns: Iterable[bytes]) -> Iterator[bytes]:
        for raw in turns:
            self.result.turns += 1
            yield raw


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chat_stem(chat: StoredChat) -> str:
    """``<character>/<date> <chat name> <id>``: how a person finds a chat's file."""
    day = (chat.create_time or "")[:16].replace("T", " ").replace(":", "h")
    name = f"{day} {chat.name or ''} {chat.id[:8]}".replace("  ", " ")
    return f"{safe_name(chat.character_name, fallback=chat.character_id[:12])}/{safe_name(name)}"


def room_stem(room: StoredRoom) -> str:
    """``group chats/<date> <title> <id>``, beside the characters' folders."""
    day = (room.create_time or "")[:16].replace("T", " ").replace(":", "h")
    name = f"{day} {room.title} {room.id[:8]}".replace("  ", " ")
    return f"group chats/{safe_name(name)}"


def _per_chat(
    plan: _Plan,
    suffix: str,
    render: Callable[[StoredChat], Iterable[bytes]],
    render_room: Callable[[StoredRoom], Iterable[bytes]] | None = None,
) -> None:
    """One file per chat, and per room (``render_room``; None: the format has no group
    chats, which a warning then counts)."""
    for chat in plan.chat_rows():
        plan.result.chats += 1
        plan.files.append(_File(chat_stem(chat) + suffix, lambda c=chat: render(c)))  # type: ignore[misc]
    rooms = list(plan.room_rows())
    if render_room is None:
        if rooms:
            plan.result.warnings.append(
                f"{len(rooms)} group chats left out: {plan.result.format} holds one character"
            )
        return
    for room in rooms:
        plan.result.chats += 1
        plan.files.append(_File(room_stem(room) + suffix, lambda r=room: render_room(r)))  # type: ignore[misc]


def _plan_native(plan: _Plan) -> None:
    from ... import __version__

    stamp = {"exported_at": _now(), "tool_version": f"caiclient {__version__}"}
    _per_chat(
        plan,
        ".jsonl",
        lambda chat: native.render_chat(
            chat,
            plan.character(chat.character_id),
            plan.counted(plan.store.turn_raws(chat.id)),
            **stamp,
        ),
        lambda room: native.render_room(room, plan.room_turns(room), **stamp),
    )


def _plan_sillytavern(plan: _Plan) -> None:
    account = plan.store.account()
    _per_chat(
        plan,
        ".jsonl",
        lambda chat: sillytavern.render_chat(
            chat,
            plan.character(chat.character_id),
            account,
            plan.counted(plan.store.turn_raws(chat.id)),
        ),
        lambda room: sillytavern.render_room(room, account, plan.room_turns(room)),
    )


def _plan_ooba(plan: _Plan) -> None:
    _per_chat(
        plan, ".json", lambda chat: ooba.render_chat(plan.counted(plan.store.turn_raws(chat.id)))
    )


def _plan_markdown(plan: _Plan) -> None:
    _per_chat(
        plan,
        ".md",
        lambda chat: markdown.render_chat(
            chat, plan.character(chat.character_id), plan.counted(plan.store.turn_raws(chat.id))
        ),
        lambda room: markdown.render_room(room, plan.room_turns(room)),
    )


def _link(chat: StoredChat) -> html.ChatLink:
    note = "archived" if chat.is_archived else ""
    if chat.removed:
        note = "deleted on the server"
    title = chat.name or f"{chat.character_name} · {(chat.create_time or '')[:10]}"
    href = "chats/" + chat_stem(chat).replace("/", " - ") + ".html"
    return html.ChatLink(href, title, chat.character_name, chat.create_time or "", chat.turns, note)


def _room_link(room: StoredRoom) -> html.ChatLink:
    note = "group chat" + (", deleted on the server" if room.removed else "")
    cast = ", ".join(room.character_names)
    title = room.title or f"Group chat with {cast}"
    href = "chats/" + room_stem(room).replace("/", " - ") + ".html"
    return html.ChatLink(href, title, cast, room.create_time or "", room.turns, note)


def _plan_html(plan: _Plan) -> None:
    links = [(_link(chat), chat.id, False) for chat in plan.chat_rows()]
    links += [(_room_link(room), room.id, True) for room in plan.room_rows()]
    for link, chat_id, room in links:
        plan.result.chats += 1
        plan.files.append(
            _File(
                link.href,
                lambda lk=link, c=chat_id, r=room: html.render_chat(
                    lk, plan.counted(plan.store.turn_raws(c, room=r))
                ),  # type: ignore[misc]
            )
        )
    plan.files.append(
        _File(
            "search-index.js",
            lambda: html.render_search_index(
                (lk, plan.store.turn_raws(c, room=r)) for lk, c, r in links
            ),
        )
    )
    plan.files.append(_File("index.html", lambda: html.render_index(lk for lk, _, _ in links)))


def _selected_characters(plan: _Plan) -> list[StoredCharacter]:
    """The characters of the selected chats and group chats (or the selected characters)."""
    if plan.chats is not None:
        ids = {chat.character_id for chat in plan.chat_rows()}
        known = set(plan.store.known_character_ids())
        for room in plan.room_rows():
            ids.update(c for c, _ in room.characters if c in known)
        return list(plan.store.characters(sorted(ids)))
    return list(plan.store.characters(plan.characters))


def _dump_histories(plan: _Plan, character: StoredCharacter) -> Iterator[cai_dump.History]:
    account = plan.store.account()
    user = (account.name or account.username) if account is not None else "You"
    for chat in plan.store.chats(character_ids=[character.id]):
        if plan.chats is not None and chat.id not in plan.chats:
            continue
        plan.result.chats += 1
        turns = plan.counted(plan.store.turn_raws(chat.id))
        yield chat.id, cai_dump.v2_messages(turns, character.name, user)
    if plan.chats is not None:
        return
    for history in plan.store.v1_histories(character.id):
        plan.result.chats += 1
        messages = plan.store.v1_messages(history.id)
        yield history.id, cai_dump.v1_messages(messages, character.name, user)


def _plan_cai_dump(plan: _Plan) -> None:
    for character in _selected_characters(plan):
        stem = f"{safe_name(character.name, fallback=character.id[:12])} {character.id[:8]}"
        plan.files.append(
            _File(
                stem + ".cai-dump.json",
                lambda ch=character: cai_dump.render_character(ch, _dump_histories(plan, ch)),  # type: ignore[misc]
            )
        )


def _png(plan: _Plan, character: StoredCharacter) -> bytes:
    avatar = plan.store.avatar(character.avatar_file_name)
    try:
        return card.png_card(character, avatar)
    except (ValueError, OSError) as exc:  # Pillow could not read the avatar.
        plan.result.warnings.append(f"{character.name}: avatar unreadable ({exc}); plain tile used")
        return card.png_card(character, None)


def _plan_card(plan: _Plan) -> None:
    for character in _selected_characters(plan):
        stem = f"{safe_name(character.name, fallback=character.id[:12])} {character.id[:8]}"
        plan.files += [
            _File(stem + ".card.json", lambda ch=character: [encode(card.card_v2(ch)) + b"\n"]),  # type: ignore[misc]
            _File(stem + ".card.v3.json", lambda ch=character: [encode(card.card_v3(ch)) + b"\n"]),  # type: ignore[misc]
            _File(stem + ".png", lambda ch=character: [_png(plan, ch)]),  # type: ignore[misc]
        ]


_PLANNERS: dict[str, Callable[[_Plan], None]] = {
    "native": _plan_native,
    "sillytavern": _plan_sillytavern,
    "ooba": _plan_ooba,
    "cai-dump": _plan_cai_dump,
    "markdown": _plan_markdown,
    "html": _plan_html,
    "card": _plan_card,
}


def _targets(plan: _Plan, out: Path) -> list[tuple[Path, _File]]:
    if len(plan.files) == 1 and out.suffix and plan.files[0].relative.endswith(out.suffix):
        return [(out, plan.files[0])]
    return [(out / item.relative, item) for item in plan.files]


def export(
    store: Store,
    format: str,
    out: str | Path,
    *,
    characters: Iterable[str] | None = None,
    chats: Iterable[str] | None = None,
    force: bool = False,
) -> ExportResult:
    """Export chats (or characters, for ``card``/``cai-dump``) of ``store`` to ``out``.

    ``characters`` / ``chats`` select (ids; default everything). Raises ValidationError
    for an unknown format, CharacterNotFound / ChatNotFound for ids the archive lacks,
    OutputExists when a file is there already (before writing anything; pass ``force``),
    ArchiveWriteError when the file system refuses. Every file is complete or absent.
    """
    if format not in _PLANNERS:
        raise ValidationError(
            f"unknown export format {format!r}; choose one of: {', '.join(FORMATS)}"
        )
    if characters is not None and chats is not None:
        raise ValidationError("select characters or chats, not both")
    plan = _Plan(
        store, None if characters is None else list(characters), None, ExportResult(format)
    )
    if chats is not None:
        # Chat and room ids come from one space (UUIDs): each id names one or the other.
        chosen = list(dict.fromkeys(chats))
        plan.rooms = [chat_id for chat_id in chosen if store.is_room(chat_id)]
        plan.chats = [chat_id for chat_id in chosen if chat_id not in plan.rooms]
    _PLANNERS[format](plan)
    targets = _targets(plan, Path(out))
    if not force:
        for path, _ in targets:
            if path.exists():
                raise OutputExists("already exists (force, or --force, replaces it)", path=path)
    for path, item in targets:
        plan.result.bytes += write_atomic(path, item.produce(), force=force)
        plan.result.files.append(path)
    return plan.result
