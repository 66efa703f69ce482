"""Schema drift: which fields the service sends that our models do not know, and which
fields the models expect that it no longer sends. ``cai doctor --schema`` prints it.

:func:`compare` is pure (no I/O): it walks raw JSON beside the msgspec type the client
decodes it with (``msgspec.inspect``), recursively through structs, lists, dicts and
optional unions, and returns field *paths* only, never values (``chats[].turn_key.chat_id``;
``[]`` marks list items, ``{}`` the values of a dict keyed by data such as character ids).
A field is "missing" when the model requires it (it has no default) and no object at that
path carried it: decoding would fail. Optional fields no object carried are "absent" (the
models accept several spellings of some fields, so that list is informational).

:func:`check` calls the read-only endpoints the client depends on and compares each answer
with the type it is decoded into.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import msgspec.inspect as mi

from .errors import CaiError

if TYPE_CHECKING:
    from .client import AsyncClient
    from .protocol.http import Request

__all__ = ["Drift", "check", "compare"]


@dataclass(frozen=True)
class Drift:
    """One endpoint's differences. ``error`` is set instead when it could not be called."""

    endpoint: str
    new: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def clean(self) -> bool:
        return self.error is None and not self.new and not self.missing  # absent is normal


@dataclass
class _Walk:
    present: set[str] = field(default_factory=set)
    known: set[str] = field(default_factory=set)
    required: set[str] = field(default_factory=set)

    def visit(self, raw: Any, info: mi.Type, path: str) -> None:
        if isinstance(info, mi.UnionType):
            info = _member_for(raw, info)
        if isinstance(info, mi.StructType) and isinstance(raw, dict):
            self._struct(raw, info, path)
        elif isinstance(info, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
            if isinstance(raw, list):
                for item in raw:
                    self.visit(item, info.item_type, f"{path}[]")
        elif isinstance(info, mi.DictType) and isinstance(raw, dict):
            for value in raw.values():
                self.visit(value, info.value_type, f"{path}{{}}")

    def _struct(self, raw: dict[str, Any], info: mi.StructType, path: str) -> None:
        prefix = f"{path}." if path else ""
        fields = {f.encode_name: f for f in info.fields}
        self.known.update(prefix + name for name in fields)
        self.required.update(prefix + name for name, f in fields.items() if f.required)
        for key, value in raw.items():
            self.present.add(prefix + key)
            declared = fields.get(key)
            if declared is not None:
                self.visit(value, declared.type, prefix + key)


def _member_for(raw: Any, union: mi.UnionType) -> mi.Type:
    """The member of an optional/union type that a JSON value of this kind decodes into."""
    containers = (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)
    for member in union.types:
        if isinstance(raw, dict) and isinstance(member, (mi.StructType, mi.DictType)):
            return member
        if isinstance(raw, list) and isinstance(member, containers):
            return member
    return mi.AnyType()


def compare(raw: Any, type_: Any) -> tuple[list[str], list[str], list[str]]:
    """``(new, missing, absent)`` field paths of ``raw`` (decoded JSON) against ``type_``:
    sent but not modelled; required but not sent; optional and not sent."""
    walk = _Walk()
    walk.visit(raw, mi.type_info(type_), "")
    # A new field's own sub-fields are not listed: the field itself says it all.
    new = walk.present - walk.known
    unsent = walk.known - walk.present
    missing = unsent & walk.required
    return sorted(new), sorted(missing), sorted(unsent - missing)


# --- calling the read-only endpoints ----------------------------------------------------------


@dataclass(frozen=True)
class _Probe:
    name: str
    request: Callable[[Any, dict[str, str]], Request | None]
    type_: Any


def _probes() -> list[_Probe]:
    # The types are the ones the client decodes these answers into (protocol/), so drift is
    # measured against what the client really reads.
    from .protocol import account, characters, chats

    return [
        _Probe("GET plus /chat/user/", lambda e, _: account.me(e), account._UserBody),
        _Probe(
            "GET plus /chat/user/settings/",
            lambda e, _: account.settings(e),
            account._WireSettings,
        ),
        _Probe("GET plus /chat/personas/", lambda e, _: account.personas(e), account._PersonasBody),
        _Probe(
            "GET neo /recommendation/v1/featured",
            lambda e, _: characters.featured(e),
            characters._ListBody,
        ),
        _Probe("GET neo /chats/recent/", lambda e, _: chats.recent_chats(e), chats._ChatsBody),
        _Probe(
            "POST neo /character/v1/get_character_info",
            lambda e, ids: characters.info(e, ids["character"]) if "character" in ids else None,
            characters._CharacterBody,
        ),
        _Probe(
            "GET neo /turns/{chat_id}/",
            lambda e, ids: chats.turns_page(e, ids["chat"]) if "chat" in ids else None,
            chats._TurnsBody,
        ),
    ]


def _learn_ids(name: str, raw: Any, ids: dict[str, str]) -> None:
    """Ids later probes need: a character (featured, or a recent chat's) and a chat."""
    if not isinstance(raw, dict):
        return
    items = raw.get("characters") if "featured" in name else raw.get("chats")
    first = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}
    character = first.get("external_id") or first.get("character_id")
    if isinstance(character, str) and character:
        ids["character"] = character
    if isinstance(first.get("chat_id"), str):
        ids["chat"] = first["chat_id"]


async def check(client: AsyncClient, *, timeout: float | None = None) -> list[Drift]:
    """Call each read-only endpoint once and compare its answer with the client's model.

    Errors are reported per endpoint (``Drift.error``), not raised, so one refusal does not
    hide the rest; values are never kept, only field paths.
    """
    core = client._core  # This helper is part of the library: it reads raw bodies.
    ids: dict[str, str] = {}
    found: list[Drift] = []
    for probe in _probes():
        request = probe.request(core.endpoints, ids)
        if request is None:
            found.append(Drift(probe.name, error="skipped: nothing to look up"))
            continue
        try:
            raw = msgspec.json.decode(await core.call(request, timeout=timeout))
        except (CaiError, msgspec.DecodeError) as exc:
            found.append(Drift(probe.name, error=f"{type(exc).__name__}: {exc}"))
            continue
        _learn_ids(probe.name, raw, ids)
        new, missing, absent = compare(raw, probe.type_)
        found.append(Drift(probe.name, new, missing, absent))
    return found
