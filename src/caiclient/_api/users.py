from __future__ import annotations

from .._core import ClientCore
from ..errors import ServerError, UserNotFound, ValidationError
from ..models import PublicUser
from ..protocol import account as proto
from ..protocol.http import Request, check_refusal

__all__ = ["AsyncUsersAPI"]

USERNAME_MAX = 64
# Follower lists are paged; stop after this many pages even if the server says "more".
MAX_PAGES = 1000


def _check_username(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"username must be a str, got {type(value).__name__}")
    if not value.strip() or value != value.strip() or len(value) > USERNAME_MAX:
        raise ValidationError(f"username {value!r} is not a valid username")
    return value


class AsyncUsersAPI:
    """Other users: public profiles, following and followers (``client.users``).

    An unknown username is :class:`~caiclient.UserNotFound`. The live server answers it
    with an HTTP 500 (docs/protocol.md §15.4), so on these calls a 500 is read as "no such user".
    """

    def __init__(self, core: ClientCore) -> None:
        self._core = core

    async def _call(self, request: Request, username: str, timeout: float | None) -> bytes:
        try:
            return await self._core.call(request, timeout=timeout, not_found=UserNotFound)
        except ServerError as exc:
            if exc.status == 500:
                raise UserNotFound(f"no user named {username!r} (HTTP 500)") from None
            raise

    async def get(self, username: str, *, timeout: float | None = None) -> PublicUser:
        """The public profile of ``username``, with their public characters.

        Raises UserNotFound. Safe to cancel.
        """
        _check_username(username)
        request = proto.public_user(self._core.endpoints, username)
        body = await self._call(request, username, timeout)
        return proto.parse_public_user(body, username)

    async def follow(self, username: str, *, timeout: float | None = None) -> None:
        """Follow ``username`` (following twice is harmless).

        Raises UserNotFound, ServerError when refused (e.g. following yourself).
        """
        _check_username(username)
        body = await self._call(proto.follow(self._core.endpoints, username), username, timeout)
        check_refusal(body, "follow", not_found=UserNotFound, object_expected=True)

    async def unfollow(self, username: str, *, timeout: float | None = None) -> None:
        """Stop following ``username`` (harmless if you did not follow them).

        Raises UserNotFound, ServerError when refused.
        """
        _check_username(username)
        request = proto.unfollow(self._core.endpoints, username)
        body = await self._call(request, username, timeout)
        check_refusal(body, "unfollow", not_found=UserNotFound, object_expected=True)

    async def followers(self, username: str, *, timeout: float | None = None) -> list[str]:
        """Usernames of everyone following ``username`` (all pages). Raises UserNotFound."""
        return await self._all_pages(username, followers=True, timeout=timeout)

    async def following(self, username: str, *, timeout: float | None = None) -> list[str]:
        """Usernames of everyone ``username`` follows (all pages). Raises UserNotFound."""
        return await self._all_pages(username, followers=False, timeout=timeout)

    async def _all_pages(
        self, username: str, *, followers: bool, timeout: float | None
    ) -> list[str]:
        _check_username(username)
        deadline = self._core.deadline(timeout)
        build = proto.public_followers if followers else proto.public_following
        names: list[str] = []
        for page in range(1, MAX_PAGES + 1):
            request = build(self._core.endpoints, username, page)
            body = await self._call(request, username, deadline.left())
            batch, more = proto.parse_user_page(body)
            names.extend(batch)
            if not more or not batch:
                break
        return names
