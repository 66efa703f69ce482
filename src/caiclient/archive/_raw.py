"""The service's own JSON of each archived object, cut out of the bodies a call received.

The client's models keep only the fields they know; the archive keeps everything the
service sent (``raw``). A sync call runs inside ``AsyncClient.capture_raw()``, which hands
out the exact body of every REST answer; this module splits those bodies into the objects
the archive stores, by the envelope each listing uses (docs/protocol.md §4.1, §4.5, §6.2,
§7.3, §9, §10.1):

- ``{"user": {...}}`` (the account), ``{"character": {...}}``, ``{"chat": {...}}``: one object;
- ``{"personas"|"chats"|"turns"|"histories"|"messages"|"rooms": [...]}``: one per item, matched
  to the client's models by id, never by position (the client may sort or filter).

``msgspec.Raw`` keeps each object's bytes exactly as they arrived, except that an object
spread over several lines is put on one (whitespace only: JSON-lines exports need one line
per object; a raw newline can only be whitespace, as strings escape theirs). A V1
history's ``raw`` leaves out its ``messages`` member: those are stored, each with its own
``raw``, as the history's messages. An object no body holds gets None (the archive then
keeps the model's JSON): that happens only with a client that does not hand its bodies out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec

from .. import RawBody

__all__ = ["KINDS", "Kind", "raws_for", "single"]

_Members = dict[str, msgspec.Raw]
_members = msgspec.json.Decoder(_Members).decode
_items = msgspec.json.Decoder(list[msgspec.Raw]).decode
_encode = msgspec.json.Encoder().encode


class _TurnKey(msgspec.Struct):
    turn_id: str = ""


class _TurnId(msgspec.Struct):
    turn_key: _TurnKey = msgspec.field(default_factory=_TurnKey)


class _ExternalId(msgspec.Struct):
    external_id: str = ""


class _ChatId(msgspec.Struct):
    chat_id: str = ""


class _Id(msgspec.Struct):
    id: str = ""


class _Uuid(msgspec.Struct):
    uuid: str = ""


def _key(struct: type[Any], get: Callable[[Any], str]) -> Callable[[bytes], str]:
    decode = msgspec.json.Decoder(struct).decode

    def key(raw: bytes) -> str:
        try:
            return get(decode(raw))
        except msgspec.ValidationError:
            return ""

    return key


class Kind:
    """One kind of object: the envelope member that holds it and how its id is read."""

    def __init__(
        self, member: str, key: Callable[[bytes], str], *, drop: tuple[str, ...] = ()
    ) -> None:
        self.member = member
        self.key = key
        self.drop = drop


KINDS = {
    "turn": Kind("turns", _key(_TurnId, lambda t: t.turn_key.turn_id)),
    "chat": Kind("chats", _key(_ChatId, lambda c: c.chat_id)),
    "persona": Kind("personas", _key(_ExternalId, lambda p: p.external_id)),
    "v1_history": Kind("histories", _key(_ExternalId, lambda h: h.external_id), drop=("messages",)),
    "v1_message": Kind("messages", _key(_Uuid, lambda m: m.uuid)),
    "room": Kind("rooms", _key(_Id, lambda r: r.id)),
}


def _one_line(raw: bytes) -> bytes:
    return msgspec.json.format(raw, indent=-1) if b"\n" in raw or b"\r" in raw else raw


def _without(raw: bytes, drop: tuple[str, ...]) -> bytes:
    """The object ``raw`` without the members ``drop``, every other member byte for byte."""
    if not drop:
        return _one_line(raw)
    members = _members(raw)
    for name in drop:
        members.pop(name, None)
    return _one_line(_encode(members))


def _index(bodies: Iterable[RawBody], kind: Kind) -> dict[str, bytes]:
    """id → raw object, over every body that has the kind's list member."""
    found: dict[str, bytes] = {}
    for body in bodies:
        try:
            listed = _members(body.body).get(kind.member)
            items = [] if listed is None else _items(listed)
        except msgspec.DecodeError:
            continue  # not an object with that list (another call's body)
        for item in items:
            raw = bytes(item)
            key = kind.key(raw)
            if key:
                found[key] = _without(raw, kind.drop)
    return found


def raws_for(bodies: Sequence[RawBody], kind: str, ids: Iterable[str]) -> list[bytes | None]:
    """The service's JSON of the objects with ``ids`` (in that order), None where none of
    ``bodies`` holds one."""
    index = _index(bodies, KINDS[kind])
    return [index.get(i) for i in ids]


def single(bodies: Sequence[RawBody], member: str) -> bytes | None:
    """The object under ``member`` of the last body that has one (``{"user": {...}}``)."""
    for body in reversed(bodies):
        try:
            raw = _members(body.body).get(member)
        except msgspec.DecodeError:
            continue
        if raw is not None and bytes(raw).lstrip().startswith(b"{"):
            return _one_line(bytes(raw))
    return None
