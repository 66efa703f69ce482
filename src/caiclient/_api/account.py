from __future__ import annotations

from typing import Any

import msgspec

from .._core import ClientCore
from .._settings import check_settings_changes, patch_settings
from ..errors import ValidationError
from ..models import Settings, User
from ..protocol import account as proto
from ..protocol.http import check_refusal

__all__ = ["AsyncAccountAPI"]

USERNAME_LIMITS = (2, 20)
NAME_LIMITS = (2, 50)
BIO_MAX = 500


def _check_length(value: object, what: str, low: int, high: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a str, got {type(value).__name__}")
    if not low <= len(value) <= high:
        raise ValidationError(f"{what} must have {low}-{high} characters, got {len(value)}")
    if low and not value.strip():
        raise ValidationError(f"{what} is only whitespace")
    return value


class AsyncAccountAPI:
    """The account behind the token (``client.account``): profile, settings, follows."""

    def __init__(self, core: ClientCore) -> None:
        self._core = core

    async def me(self, *, timeout: float | None = None) -> User:
        """The token's account, fresh from the server.

        Raises AuthError for a bad token, BlockedError when Cloudflare refuses the request.
        Safe to cancel.
        """
        return await self._core.user(self._core.deadline(timeout), refresh=True)

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
        core = self._core
        deadline = core.deadline(timeout)
        current = await core.user(deadline, refresh=True)
        request = proto.update_user(
            core.endpoints,
            username=current.username if username is None else username,
            name=current.name if name is None else name,
            bio=(current.bio or "") if bio is None else bio,
            avatar_rel_path=(
                (current.avatar_file_name or "") if avatar_rel_path is None else avatar_rel_path
            ),
        )
        body = await core.call(request, deadline=deadline)
        check_refusal(body, "profile update", object_expected=True)
        return await core.user(deadline, refresh=True)

    async def settings(self, *, timeout: float | None = None) -> Settings:
        """Your settings: default persona, per-character persona and voice overrides, ….

        Safe to cancel.
        """
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
        return await patch_settings(self._core, checked, self._core.deadline(timeout))

    async def followers(self, *, timeout: float | None = None) -> list[str]:
        """Usernames of the users who follow you. Safe to cancel."""
        body = await self._core.call(proto.followers(self._core.endpoints), timeout=timeout)
        return proto.parse_usernames(body, "followers")

    async def following(self, *, timeout: float | None = None) -> list[str]:
        """Usernames of the users you follow. Safe to cancel."""
        body = await self._core.call(proto.following(self._core.endpoints), timeout=timeout)
        return proto.parse_usernames(body, "following")
