from __future__ import annotations

from .._core import ClientCore
from .._validate import check_timeout
from ..models import User

__all__ = ["AccountAPI"]


class AccountAPI:
    """The account behind the token (``client.account``)."""

    def __init__(self, core: ClientCore) -> None:
        self._core = core

    async def me(self, *, timeout: float | None = None) -> User:
        """The token's account, fresh from the server.

        Raises AuthError for a bad token, BlockedError when Cloudflare refuses the request.
        Safe to cancel.
        """
        check_timeout(timeout)
        return await self._core.user(timeout=timeout, refresh=True)
