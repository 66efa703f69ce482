from __future__ import annotations

from pathlib import PurePath
from urllib.parse import urlsplit

from .._core import ClientCore
from .._media_input import MediaSource, read_media
from .._validate import check_text
from ..errors import ValidationError
from ..protocol import media

__all__ = ["AsyncImagesAPI"]

MAX_OPTIONS = 8
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


def _check_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 4096:
        raise ValidationError(f"size must be an int from 1 to 4096 pixels, got {size!r}")
    return size


def _check_rel_path(rel_path: object) -> str:
    text = check_text(rel_path, "rel_path").strip().lstrip("/")
    if any(part in ("", ".", "..") for part in text.split("/")) or "?" in text or "#" in text:
        raise ValidationError(f"rel_path {rel_path!r} is not a CDN path like uploaded/…/x.webp")
    return text


class AsyncImagesAPI:
    """Image upload and avatar generation (``client.images``). Every call is safe to cancel."""

    def __init__(self, core: ClientCore) -> None:
        self._core = core

    async def upload(
        self,
        image: MediaSource,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """Upload a PNG, JPEG, GIF or WebP image (a path or bytes); return its path on the
        CDN (e.g. ``uploaded/2025/01/31/….webp``), usable as a character's
        ``avatar_rel_path`` and with :meth:`url`.

        ``filename`` and ``content_type`` default to the file's name and the type its
        content shows. Raises ValidationError (before any I/O) for a missing or empty file
        or one that is not an image, ServerError when the service refuses it.
        """
        if content_type is not None and (
            not isinstance(content_type, str) or not content_type.startswith("image/")
        ):
            raise ValidationError(f"content_type must be an image/… type, got {content_type!r}")
        if filename is not None:
            check_text(filename, "filename")
        data, sniffed = await read_media(
            image, "image", media.sniff_image, "a PNG, JPEG, GIF or WebP image"
        )
        if filename is None:
            name = PurePath(image).name if not isinstance(image, (bytes, bytearray)) else ""
            filename = name or f"image.{_EXTENSIONS[sniffed]}"
        request = media.upload_image(self._core.endpoints, data, filename, content_type or sniffed)
        return media.parse_upload(await self._core.call(request, timeout=timeout))

    async def avatar_options(
        self, prompt: str, *, count: int = 4, timeout: float | None = None
    ) -> list[str]:
        """Generate ``count`` (1–8) candidate avatar pictures for ``prompt``; their URLs."""
        check_text(prompt, "prompt")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_OPTIONS:
            raise ValidationError(f"count must be an int from 1 to {MAX_OPTIONS}, got {count!r}")
        request = media.avatar_options(self._core.endpoints, prompt, count)
        return media.parse_avatar_options(await self._core.call(request, timeout=timeout))

    async def generate(self, prompt: str, *, timeout: float | None = None) -> str:
        """Generate one picture for ``prompt`` (the legacy image generator); its URL."""
        check_text(prompt, "prompt")
        request = media.generate_image(self._core.endpoints, prompt)
        return media.parse_generated_image(await self._core.call(request, timeout=timeout))

    def url(self, rel_path: str, *, size: int = 400, avatar: bool = False) -> str:
        """The CDN URL of an uploaded image (``avatar=True``: of an avatar file name), scaled
        to ``size`` pixels. No I/O."""
        bucket = "avatars" if avatar else "user"
        return media.cdn_url(
            self._core.endpoints, _check_rel_path(rel_path), size=_check_size(size), bucket=bucket
        )

    async def download(self, url: str, *, timeout: float | None = None) -> bytes:
        """The bytes of an image: ``url`` is an absolute URL (from :meth:`avatar_options`,
        :meth:`url` …) or an upload's CDN path. Raises NotFound when the CDN has no such image.
        """
        check_text(url, "url")
        if urlsplit(url).scheme not in ("http", "https"):
            url = self.url(url)
        return await self._core.fetch(url, timeout=timeout)
