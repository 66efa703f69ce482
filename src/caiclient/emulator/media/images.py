"""Image upload, avatar upload, image generation and the image CDN (docs/protocol.md §11.1).

Uploads keep their bytes (and type: no conversion to WebP); generated pictures are
one-colour WebP files whose colour comes from the prompt. The CDN serves every stored image
and the seed characters' avatars under both ``static/user/`` and ``static/avatars/``, at any
size (no resizing).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from .._http import DJANGO_PREFIXES, ApiError, authenticate, json_response, read_json
from .._util import new_id
from ..state import STATE
from ..store import User
from ..trpc import TrpcCall, TrpcError, add_procedure
from .files import IMAGE_TYPES, colour_for, sniff_image, solid_webp
from .forms import FormError, origin, read_form
from .store import MEDIA, ImageRecord, MediaStore

__all__ = ["MAX_CANDIDATES", "MAX_IMAGE_BYTES", "add_routes"]

MAX_IMAGE_BYTES = 5 * 1024 * 1024
"""Largest image accepted by uploads (the live limit is unknown)."""

MAX_CANDIDATES = 8
_MAX_PROMPT = 1000
_NOT_AN_IMAGE = (
    "Upload a valid image. The file you uploaded was either not an image or a corrupted image."
)
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.DOTALL)


def _media(request: web.Request) -> MediaStore:
    return request.app[MEDIA]


def _upload_rel(content_type: str) -> str:
    """``uploaded/YYYY/MM/DD/<uuid>.<ext>``, the shape of live upload paths."""
    day = datetime.now(timezone.utc).strftime("%Y/%m/%d")
    return f"uploaded/{day}/{new_id()}.{IMAGE_TYPES[content_type]}"


def _store_upload(media: MediaStore, user: User, data: bytes, kind: str) -> str | None:
    """Store an uploaded image and return its rel path; None when it is not an image."""
    content_type = sniff_image(data)
    if content_type is None:
        return None
    rel = _upload_rel(content_type)
    image = ImageRecord(rel=rel, owner_id=user.id, kind=kind, content_type=content_type, data=data)
    media.save_image(image)
    return rel


def _generated(media: MediaStore, seed: str) -> str:
    """Store (idempotently) the picture generated for ``seed``; return its rel path."""
    key = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]
    rel = f"temp-images/{key}.webp"
    if rel not in media.images:
        data = solid_webp(colour_for(seed))
        image = ImageRecord(
            rel=rel, owner_id="", kind="generated", content_type="image/webp", data=data
        )
        media.save_image(image)
    return rel


def _cdn_url(request: web.Request, rel: str) -> str:
    return f"{origin(request)}/cdn/i/400/static/user/{rel}"


# ---- plus: upload and generation ---------------------------------------------------------


async def upload_image(request: web.Request) -> web.Response:
    """``POST /chat/upload-image/`` multipart ``image`` → ``{"status": "OK", "value": rel}``."""
    user = authenticate(request)
    try:
        form = await read_form(request, max_part_bytes=MAX_IMAGE_BYTES)
    except FormError as exc:
        if exc.too_large:
            raise ApiError(
                400, {"error": f"Image too large: the limit is {MAX_IMAGE_BYTES} bytes"}
            ) from None
        raise ApiError(400, {"error": f"Invalid upload: {exc.reason}"}) from None
    part = form.get("image")
    if part is None:
        raise ApiError(400, {"error": "No image: send the file in a multipart field named image"})
    rel = _store_upload(_media(request), user, part.data, "user")
    if rel is None:
        raise ApiError(400, {"error": _NOT_AN_IMAGE})
    return json_response({"status": "OK", "value": rel})


def _prompt(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, {"error": "prompt is required"})
    if len(value) > _MAX_PROMPT:
        raise ApiError(400, {"error": f"prompt must be at most {_MAX_PROMPT} characters"})
    return value


async def avatar_options(request: web.Request) -> web.Response:
    """``POST /chat/character/generate-avatar-options`` → ``{"result": [{"prompt", "url"}]}``."""
    authenticate(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, {"error": "Expected a JSON object"})
    prompt = _prompt(body.get("prompt"))
    count = body.get("num_candidates", 4)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_CANDIDATES:
        raise ApiError(400, {"error": f"num_candidates must be 1 to {MAX_CANDIDATES}"})
    media = _media(request)
    result = [
        {"prompt": prompt, "url": _cdn_url(request, _generated(media, f"{prompt}\n{i}"))}
        for i in range(count)
    ]
    return json_response({"result": result})


async def generate_image(request: web.Request) -> web.Response:
    """``POST /chat/generate-image/`` ``{"image_description"}`` → ``{"image_rel_path": URL}``."""
    authenticate(request)
    body = await read_json(request)
    prompt = _prompt(body.get("image_description") if isinstance(body, dict) else None)
    rel = _generated(_media(request), f"{prompt}\nimage")
    return json_response({"image_rel_path": _cdn_url(request, rel)})


# ---- tRPC user.uploadAvatar --------------------------------------------------------------


async def upload_avatar(call: TrpcCall) -> str:
    """``{"imageDataUrl": "data:<mime>;base64,…"}`` → the avatar's file name."""
    if call.user is None:
        raise TrpcError("UNAUTHORIZED", 401)
    value = call.input.get("imageDataUrl") if isinstance(call.input, dict) else None
    match = _DATA_URL.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise TrpcError("imageDataUrl must be a data:<type>;base64,<data> URL")
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise TrpcError("imageDataUrl holds malformed base64") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise TrpcError(f"Image too large: the limit is {MAX_IMAGE_BYTES} bytes")
    rel = _store_upload(call.request.app[MEDIA], call.user, data, "avatar")
    if rel is None:
        raise TrpcError(_NOT_AN_IMAGE)
    return rel


# ---- the CDN -------------------------------------------------------------------------------


def _image_response(content_type: str, data: bytes) -> web.Response:
    headers = {"Cache-Control": "public, max-age=31536000"}
    return web.Response(body=data, content_type=content_type, headers=headers)


def _seed_avatar(request: web.Request, name: str) -> bytes | None:
    for character in request.app[STATE].store.characters.values():
        if character.avatar_file_name == name:
            return solid_webp(colour_for(character.id))
    return None


async def cdn_image(request: web.Request) -> web.Response:
    """``GET /cdn/i/{size}/static/{user|avatars}/{rel}`` (``?webp=…&anim=…`` ignored)."""
    rel = request.match_info["rel"]
    image = _media(request).images.get(rel)
    if image is not None:
        return _image_response(image.content_type, image.data)
    seed = _seed_avatar(request, rel) if request.match_info["bucket"] == "avatars" else None
    if seed is not None:
        return _image_response("image/webp", seed)
    return web.Response(status=404, text="Not Found")


def add_routes(app: web.Application) -> None:
    """Add the image routes and the ``user.uploadAvatar`` tRPC procedure to ``app``."""
    add_procedure(app, "user.uploadAvatar", upload_avatar)
    for prefix in DJANGO_PREFIXES:
        app.router.add_post(f"{prefix}/chat/upload-image/", upload_image)
        app.router.add_post(f"{prefix}/chat/character/generate-avatar-options", avatar_options)
        app.router.add_post(f"{prefix}/chat/character/generate-avatar-options/", avatar_options)
        app.router.add_post(f"{prefix}/chat/generate-image/", generate_image)
    app.router.add_get(r"/cdn/i/{size:\d+}/static/{bucket:user|avatars}/{rel:.+}", cdn_image)
