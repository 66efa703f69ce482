"""Read-modify-write of the settings object, shared by ``client.account`` and
``client.personas`` (the default persona and per-character personas live in settings)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from ._core import ClientCore
from ._deadline import Deadline
from ._validate import check_id
from .errors import PersonaNotFound, ValidationError
from .models import Settings
from .protocol import account as proto

__all__ = ["check_settings_changes", "patch_settings"]


class _SettingsChanges(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What :meth:`AsyncAccountAPI.update_settings` accepts: the fields of :class:`Settings`."""

    default_persona_id: str | msgspec.UnsetType | None = msgspec.UNSET
    voice_overrides: dict[str, str] | msgspec.UnsetType = msgspec.UNSET
    persona_overrides: dict[str, str] | msgspec.UnsetType = msgspec.UNSET
    voice_overrides_migrated: bool | msgspec.UnsetType = msgspec.UNSET
    proactive_dm_opted_out: bool | msgspec.UnsetType = msgspec.UNSET
    banned_words: list[str] | msgspec.UnsetType = msgspec.UNSET


def check_settings_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """The changes, checked: known :class:`Settings` fields with values of the right types."""
    try:
        parsed = msgspec.convert(changes, _SettingsChanges)
    except msgspec.ValidationError as exc:
        raise ValidationError(f"invalid settings change: {exc}") from None
    checked = {
        name: value
        for name in parsed.__struct_fields__
        if not isinstance(value := getattr(parsed, name), msgspec.UnsetType)
    }
    if checked.get("default_persona_id") is not None:
        check_id(checked["default_persona_id"], "default_persona_id")
    for name in ("voice_overrides", "persona_overrides"):
        for key, value in checked.get(name, {}).items():
            check_id(key, f"{name} character id")
            check_id(value, f"{name} value")
    return checked


async def patch_settings(
    core: ClientCore,
    changes: Mapping[str, Any] | Callable[[Settings], Mapping[str, Any]],
    deadline: Deadline,
) -> Settings:
    """Read the whole settings object, apply ``changes`` (or what ``changes(current)``
    returns) and post it back, as the web client does; return what the server saved.
    Keys this library does not know are sent back as they were read."""
    body = await core.call(proto.settings(core.endpoints), deadline=deadline)
    raw, current = proto.parse_settings(body)
    if callable(changes):
        changes = changes(current)
    request = proto.update_settings(core.endpoints, proto.apply_settings(raw, changes))
    body = await core.call(request, deadline=deadline)
    return proto.parse_updated_settings(body, not_found=PersonaNotFound)
