"""The legacy Chat V1 area (PROTOCOL.md §10)."""

from __future__ import annotations

from .routes import DEFAULT_GUEST_LIMIT, FILTER_TRIGGER, PAGE_SIZE

__all__ = ["DEFAULT_GUEST_LIMIT", "FILTER_TRIGGER", "PAGE_SIZE"]
