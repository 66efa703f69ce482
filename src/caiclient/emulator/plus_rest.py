"""The Django REST app of ``plus.character.ai`` / ``beta.character.ai``.

Both hosts serve the same app, so every area registers its Django routes under each of
:data:`PREFIXES`. The account routes (``/chat/user/`` …) live in :mod:`.account`.
"""

from __future__ import annotations

__all__ = ["PREFIXES"]

PREFIXES = ("/plus", "/beta")
