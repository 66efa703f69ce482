"""The media area (docs/protocol.md §11): voices, TTS replay, voice overrides, images, the CDN.

State in :mod:`.store`; routes in :mod:`.voices` and :mod:`.images`; multipart forms in
:mod:`.forms`; the synthesised audio and pictures in :mod:`.files`.
"""

from __future__ import annotations

from aiohttp import web

from ..state import STATE
from . import images, voices
from .store import MEDIA, MediaStore

__all__ = ["MEDIA", "MediaStore", "register"]


def register(app: web.Application) -> None:
    """Create the media store and add every media route to ``app``."""
    app[MEDIA] = MediaStore(app[STATE].store)
    voices.add_routes(app)
    images.add_routes(app)
