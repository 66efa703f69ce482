from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from .._core import ClientCore
from .._validate import check_id, check_timeout
from ..errors import PersonaNotFound, Timeout, ValidationError
from ..models import Settings, User
from ..protocol import account as proto

__all__ = ["AccountAPI", "check_settings_changes", "patch_settings", "remaining"]

USERNAME_LIMITS = (2, 20)
NAME_LIMITS = (2, 50)
BIO_MAX = 500


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` (loop time); raises Timeout once it has passed."""
    left = deadline - asyncio.get_running_loop().time()
    if left <= 0:
        raise Timeout("no answer within the deadline")
    return left


def _check_length(value: object, what: str, low: int, high: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a str, got {type(value).__name__}")
    if not low <= len(value) <= high:
        raise ValidationError(f"{what} must have {low}-{high} characters, got {len(value)}")
    if low and not value.strip():
        raise ValidationError(f"{what} is only whitespace")
    return value


class _SettingsChanges(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What :meth:`AccountAPI.update_settings` accepts: the fields of :class:`Settings`."""

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
    deadline: float,
) -> Settings:
    """Read the whole settings object, apply ``changes`` (or what ``changes(current)``
    returns) and post it back, as the web client does; return what the server saved.
    Keys this library does not know are sent back as they were read."""
    body = await core.call(proto.settings(core.endpoints), timeout=remaining(deadline))
    raw, current = proto.parse_settings(body)
    if callable(changes):
        changes = changes(current)
    request = proto.update_settings(core.endpoints, proto.apply_settings(raw, changes))
    body = await core.call(request, timeout=remaining(deadline))
    return proto.parse_updated_settings(body, not_found=PersonaNotFound)


class AccountAPI:
    """The account behind the token (``client.account``): profile, settings, follows."""

    def __init__(self, core: ClientCore) -> None:
        self._core = core

    async def me(self, *, timeout: float | None = None) -> User:
        """The token's account, fresh from the server.

        Raises AuthError for a bad token, BlockedError when Cloudflare refuses the request.
        Safe to cancel.
        """
        check_timeout(timeout)
        return await self._core.user(timeout=timeout, refresh=True)

    async def update(
        self,
        *,
        username: str | None = None,
        name: str | None = None,
        bio: str | None = None,
        avatar_rel_path: str | None = None,
        timeout: float | None = None,
    ) -> User:
        """Change your profile; arguments left as None keep their current value.

        ``username`` 2–20 characters, ``name`` 2–50, ``bio`` at most 500 (checked before
        sending). ``avatar_rel_path`` is an uploaded image's path (``""`` = default avatar).
        Returns the updated account. Raises ValidationError, ServerError when the server
        refuses (e.g. "Username is already taken"). Cancelling may leave the change applied.
        """
        if username is not None:
            _check_length(username, "username", *USERNAME_LIMITS)
        if name is not None:
            _check_length(name, "name", *NAME_LIMITS)
        if bio is not None:
            _check_length(bio, "bio", 0, BIO_MAX)
        if avatar_rel_path is not None and not isinstance(avatar_rel_path, str):
            raise ValidationError("avatar_rel_path must be a str ('' for the default avatar)")
        if all(v is None for v in (username, name, bio, avatar_rel_path)):
            raise ValidationError("nothing to update: pass username, name, bio or avatar_rel_path")
        check_timeout(timeout)
        core = self._core
        deadline = core.deadline(timeout)
        current = await core.user(timeout=remaining(deadline), refresh=True)
        request = proto.update_user(
            core.endpoints,
            username=current.username if username is None else username,
            name=current.name if name is None else name,
            bio=(current.bio or "") if bio is None else bio,
            avatar_rel_path=(
                (current.avatar_file_name or "") if avatar_rel_path is None else avatar_rel_path
            ),
        )
        body = await core.call(request, timeout=remaining(deadline))
        proto.check_status(body, "profile update")
        return await core.user(timeout=remaining(deadline), refresh=True)

    async def settings(self, *, timeout: float | None = None) -> Settings:
        """Your settings: default persona, per-character persona and voice overrides, ….

        Safe to cancel.
        """
        check_timeout(timeout)
        body = await self._core.call(proto.settings(self._core.endpoints), timeout=timeout)
        return proto.parse_settings(body)[1]

    async def update_settings(
        self, settings: Settings | None = None, /, *, timeout: float | None = None, **changes: Any
    ) -> Settings:
        """Change settings: pass a whole :class:`Settings` and/or fields as keywords, e.g.
        ``update_settings(proactive_dm_opted_out=True)`` (keywords win over ``settings``).

        The current settings object is read, changed and written back whole, so settings
        this library does not know are kept. Returns the settings the server saved. Raises
        ValidationError for unknown fields or wrong types (nothing sent), PersonaNotFound
        when a persona id is not one of yours. Cancelling may leave the change applied.
        """
        if settings is not None and not isinstance(settings, Settings):
            raise ValidationError(f"settings must be a Settings, got {type(settings).__name__}")
        merged = msgspec.structs.asdict(settings) if settings is not None else {}
        merged.update(changes)
        if not merged:
            raise ValidationError("nothing to update: pass a Settings or field=value keywords")
        checked = check_settings_changes(merged)
        check_timeout(timeout)
        return await patch_settings(self._core, checked, self._core.deadline(timeout))

    async def followers(self, *, timeout: float | None = None) -> list[str]:
        """Usernames of the users who follow you. Safe to cancel."""
        check_timeout(timeout)
        body = await self._core.call(proto.followers(self._core.endpoints), timeout=timeout)
        return proto.parse_usernames(body, "followers")

    async def following(self, *, timeout: float | None = None) -> list[str]:
        """Usernames of the users you follow. Safe to cancel."""
        check_timeout(timeout)
        body = await self._core.call(proto.following(self._core.endpoints), timeout=timeout)
        return proto.parse_usernames(body, "following")
