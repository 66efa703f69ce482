"""``card``: a character as Character Card V2 and V3 JSON and as a PNG card (docs/archive.md).

Mapping from c.ai: ``name``, ``description``, ``greeting → first_mes``, ``definition →
mes_example`` (empty when the service did not show it), ``title → creator_notes``,
``scenario``/``personality`` empty; ``extensions.cai`` keeps the c.ai fields (id, title,
visibility, creator, …). The PNG is the avatar (converted to PNG with Pillow when it is
not one; a plain tile when the archive has none) with two ``tEXt`` chunks before ``IEND``:
``chara`` = base64 of the V2 JSON and ``ccv3`` = base64 of the V3 JSON.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import msgspec

from .._rows import StoredCharacter
from ._turns import encode

__all__ = ["PNG_MAGIC", "card_v2", "card_v3", "png_card", "png_text_chunks"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _fields(character: StoredCharacter) -> dict[str, Any]:
    info: dict[str, Any] = msgspec.json.decode(character.info) if character.info else {}
    name = info.get("name") or character.name
    cai = {
        "external_id": character.id,
        "title": info.get("title", ""),
        "visibility": info.get("visibility"),
        "copyable": info.get("copyable"),
        "creator": info.get("creator_username"),
        "creator_id": info.get("creator_id"),
        "avatar_file_name": character.avatar_file_name,
        "definition_visible": info.get("definition") is not None,
        "num_interactions": info.get("num_interactions"),
    }
    return {
        "name": name,
        "description": info.get("description", ""),
        "personality": "",
        "scenario": "",
        "first_mes": info.get("greeting", ""),
        "mes_example": info.get("definition") or "",
        "creator_notes": info.get("title", ""),
        "system_prompt": "",
        "post_history_instructions": "",
        "alternate_greetings": [],
        "tags": [],
        "creator": info.get("creator_username") or "",
        "character_version": "",
        "extensions": {"cai": cai},
        "_updated": info.get("updated"),
    }


def card_v2(character: StoredCharacter) -> dict[str, Any]:
    data = _fields(character)
    data.pop("_updated")
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": data}


def card_v3(character: StoredCharacter) -> dict[str, Any]:
    data = _fields(character)
    updated = data.pop("_updated")
    data.update(
        nickname="",
        creator_notes_multilingual={},
        source=[f"cai:{character.id}"],
        group_only_greetings=[],
        assets=[{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
        creation_date=None,
        modification_date=_unix(updated),
    )
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": data}


def _unix(iso: str | None) -> int | None:
    if not iso:
        return None
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _chunks(png: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, data) of each chunk; ValueError if ``png`` is not a well-formed PNG."""
    if not png.startswith(PNG_MAGIC):
        raise ValueError("not a PNG")
    at = len(PNG_MAGIC)
    while at + 8 <= len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind = png[at + 4 : at + 8]
        data = png[at + 8 : at + 8 + length]
        if len(data) != length:
            raise ValueError("truncated PNG chunk")
        yield kind, data
        at += 12 + length
        if kind == b"IEND":
            return
    raise ValueError("PNG without IEND")


def png_text_chunks(png: bytes) -> dict[str, bytes]:
    """The ``tEXt`` chunks of a PNG, keyword → value (what a card reader looks at)."""
    found = {}
    for kind, data in _chunks(png):
        if kind == b"tEXt" and b"\x00" in data:
            keyword, value = data.split(b"\x00", 1)
            found[keyword.decode("latin-1")] = value
    return found


def _blank_png(size: int = 256) -> bytes:
    """A plain grey tile, for characters whose avatar the archive does not have."""
    row = b"\x00" + b"\xb0\xb0\xb8" * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        PNG_MAGIC
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(row * size, 9))
        + _chunk(b"IEND", b"")
    )


def as_png(image: bytes | None) -> bytes:
    """The avatar as PNG bytes (Pillow converts other formats; imported only then)."""
    if not image:
        return _blank_png()
    if image.startswith(PNG_MAGIC):
        return image
    from PIL import Image  # Heavy: only card exports of non-PNG avatars need it.

    with Image.open(io.BytesIO(image)) as picture:
        out = io.BytesIO()
        picture.convert("RGBA").save(out, format="PNG")
        return out.getvalue()


def png_card(character: StoredCharacter, avatar: bytes | None) -> bytes:
    """The PNG card: the avatar with ``chara`` (V2) and ``ccv3`` (V3) chunks before IEND.

    Existing ``chara``/``ccv3`` chunks of the image are replaced. Raises ValueError if the
    avatar cannot be read as an image.
    """
    png = as_png(avatar)
    texts = [
        _chunk(b"tEXt", b"chara\x00" + base64.b64encode(encode(card_v2(character)))),
        _chunk(b"tEXt", b"ccv3\x00" + base64.b64encode(encode(card_v3(character)))),
    ]
    out = [PNG_MAGIC]
    for kind, data in _chunks(png):
        if kind == b"tEXt" and data.split(b"\x00", 1)[0] in (b"chara", b"ccv3"):
            continue
        if kind == b"IEND":
            out += texts
        out.append(_chunk(kind, data))
    return b"".join(out)
