"""A local emulator of Character.AI's unofficial web API, served by a real aiohttp server.

Every live host lives under a path prefix of one origin: ``/plus``, ``/beta``, ``/neo``
(including the ``/neo/ws/`` chat socket), ``/web`` and ``/identitytoolkit``. The package
imports nothing of the client (``tests/test_emulator_layering.py`` checks it); its pytest
fixtures live in :mod:`caiclient.testing`.
"""

from __future__ import annotations

from .app import Emulator, serve
from .background import BackgroundEmulator
from .characters import SeedCharacter
from .state import Abort

__all__ = ["Abort", "BackgroundEmulator", "Emulator", "SeedCharacter", "serve"]
