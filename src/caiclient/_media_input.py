"""Reading a media argument (a path or bytes) and checking it by its magic bytes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from .errors import ValidationError

__all__ = ["MediaSource", "read_media"]

MediaSource = str | os.PathLike[str] | bytes


def _read_file(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise ValidationError(f"{what} file {str(path)!r} does not exist or is not a file")
    return path.read_bytes()


async def read_media(
    source: object, what: str, sniff: Callable[[bytes], str | None], kinds: str
) -> tuple[bytes, str]:
    """The bytes and sniffed MIME type of ``source``; ValidationError unless it is a
    non-empty file of one of ``kinds``. Files are read in a thread."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        label = what
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        data = await asyncio.to_thread(_read_file, path, what)
        label = f"{what} file {str(path)!r}"
    else:
        raise ValidationError(f"{what} must be a path or bytes, got {type(source).__name__}")
    if not data:
        raise ValidationError(f"{label} is empty")
    content_type = sniff(data)
    if content_type is None:
        raise ValidationError(f"{label} does not look like {kinds}")
    return data, content_type
