"""The media area: voices, TTS replay, voice overrides, images and the CDN (PROTOCOL.md §11).

Routes live in :mod:`.media_voices` and :mod:`.media_images`, state in :mod:`.media_store`,
and the synthesised audio and pictures in :mod:`.media_files`.
"""

from __future__ import annotations

from aiohttp import web

from ..state import STATE
from . import images as media_images
from . import voices as media_voices
from .store import MEDIA, MediaStore

__all__ = ["MEDIA", "MediaStore", "register"]


def register(app: web.Application) -> None:
    """Create the media store from the core store and add every media route to ``app``."""
    app[MEDIA] = MediaStore(app[STATE].store)
    media_voices.register(app)
    media_images.register(app)
