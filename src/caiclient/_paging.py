"""Walking a cursor-paged listing: pages until the server says there are no more."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from .errors import ProtocolError

__all__ = ["cursor_pages"]

T = TypeVar("T")

Fetch = Callable[["str | None"], Awaitable[tuple[list[T], "str | None"]]]
"""Reads the page at a cursor (None: the first page): its items and the next cursor."""


async def cursor_pages(fetch: Fetch[T], what: str) -> AsyncIterator[list[T]]:
    """Yield each non-empty page of ``fetch``, until a page is empty or has no next cursor.

    A server that hands out a cursor it gave before would be read forever: that is a
    ProtocolError naming ``what``, raised instead of the repeated page.
    """
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        page, cursor = await fetch(cursor)
        if page:
            yield page
        if not page or cursor is None:
            return
        if cursor in seen:
            raise ProtocolError(
                f"the server repeated the page cursor {cursor[:32]!r} of {what}; "
                "stopping instead of reading the same pages forever"
            )
        seen.add(cursor)
