"""A local emulator of Character.AI's unofficial web API, served by a real aiohttp server.

Every live host lives under a path prefix of one origin: ``/plus``, ``/beta``, ``/neo``
(including the ``/neo/ws/`` chat socket), ``/web`` and ``/identitytoolkit``.
"""

from __future__ import annotations

from .app import Emulator, serve
from .characters.cast import SeedCharacter

__all__ = ["Emulator", "SeedCharacter", "serve"]
