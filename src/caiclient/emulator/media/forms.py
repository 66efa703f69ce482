"""HTTP helpers of the media area: multipart forms with a size limit, absolute URLs."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import BodyPartReader, web

from ..state import STATE

__all__ = ["FormError", "FormPart", "origin", "read_form"]

_MAX_PARTS = 8
_DRAIN_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FormPart:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


class FormError(Exception):
    """The body is not a usable multipart form; ``too_large`` when a part passed the limit."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large


def origin(request: web.Request) -> str:
    """The emulator's own ``http://host:port``, for absolute URLs in responses (never the
    request's ``Host``)."""
    return request.app[STATE].origin()


async def _read_part(part: BodyPartReader, limit: int) -> bytes:
    # read_chunk, not read(): read() would apply aiohttp's 1 MiB body limit instead of ours.
    data = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise FormError(f"{part.name or 'a part'} is larger than {limit} bytes", too_large=True)
    return bytes(data)


async def _drain(request: web.Request) -> None:
    """Read and drop what the client is still sending, so it sees our answer, not a reset."""
    seen = 0
    while seen < _DRAIN_LIMIT and (chunk := await request.content.readany()):
        seen += len(chunk)


async def read_form(request: web.Request, *, max_part_bytes: int) -> dict[str, FormPart]:
    """The parts of a ``multipart/form-data`` body by field name (the first of each name).

    Raises FormError for another content type, a malformed body or a part over the limit.
    """
    if not request.content_type.startswith("multipart/"):
        raise FormError(f"expected multipart/form-data, got {request.content_type or 'nothing'}")
    parts: dict[str, FormPart] = {}
    try:
        reader = await request.multipart()
        for _ in range(_MAX_PARTS):
            part = await reader.next()
            if part is None:
                return parts
            if not isinstance(part, BodyPartReader):
                raise FormError("nested multipart bodies are not supported")
            data = await _read_part(part, max_part_bytes)
            content_type = part.headers.get("Content-Type")
            parts.setdefault(
                part.name or "", FormPart(part.name or "", part.filename, content_type, data)
            )
        raise FormError(f"more than {_MAX_PARTS} parts")
    except FormError as exc:
        if exc.too_large:
            await _drain(request)
        raise
    except (ValueError, AssertionError, web.HTTPException) as exc:
        raise FormError(f"malformed multipart body: {exc}") from None
