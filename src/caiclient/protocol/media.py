"""Media requests and responses: voices, TTS replay, voice overrides, images (docs/protocol.md §11).

No I/O. Voices and replay live on neo's multimodal API (camelCase JSON); overrides, image
upload and generation on the Django app (``plus``); pictures on the CDN.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote, urlsplit

import msgspec

from ..endpoints import Endpoints
from ..errors import ProtocolError
from ..models import Voice
from .http import Request, check_refusal, decode

__all__ = [
    "ZERO_TIME",
    "avatar_options",
    "cdn_url",
    "clear_voice_override",
    "create_voice",
    "delete_voice",
    "generate_image",
    "get_voice",
    "get_voice_override",
    "list_voices",
    "parse_avatar_options",
    "parse_generated_image",
    "parse_replay_url",
    "parse_success",
    "parse_upload",
    "parse_voice",
    "parse_voice_override",
    "parse_voices",
    "replay",
    "search_voices",
    "set_voice_override",
    "sniff_audio",
    "sniff_image",
    "update_voice",
    "upload_image",
]

ZERO_TIME = "0001-01-01T00:00:00Z"
"""``lastUpdateTime`` as the web client sends it in a voice edit: "unset" (§2.2)."""

_MULTIMODAL = "/multimodal/api/v1"
_encode = msgspec.json.Encoder().encode


def _voices(endpoints: Endpoints) -> str:
    return f"{endpoints.neo}{_MULTIMODAL}/voices"


# ---- magic bytes ---------------------------------------------------------------------------


def sniff_image(data: bytes) -> str | None:
    """The MIME type of a PNG, JPEG, GIF or WebP image by its first bytes; None otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def sniff_audio(data: bytes) -> str | None:
    """The MIME type of an MP3, WAV, Ogg, FLAC or MP4 audio file by its first bytes."""
    if data.startswith(b"ID3") or (len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data.startswith(b"OggS"):
        return "audio/ogg"
    if data.startswith(b"fLaC"):
        return "audio/flac"
    if len(data) >= 8 and data[4:8] == b"ftyp":
        return "audio/mp4"
    return None


# ---- voices --------------------------------------------------------------------------------


def get_voice(endpoints: Endpoints, voice_id: str) -> Request:
    return Request("GET", f"{_voices(endpoints)}/{voice_id}")


def search_voices(
    endpoints: Endpoints, *, query: str | None = None, creator: str | None = None
) -> Request:
    """``GET /voices/search`` by name/description (``query``) and/or creator username."""
    params: dict[str, str] = {}
    if query is not None:
        params["query"] = query
    if creator is not None:
        params["creatorInfo.username"] = creator
    return Request("GET", f"{_voices(endpoints)}/search", params=params)


def list_voices(endpoints: Endpoints, which: Literal["user", "system", "featured"]) -> Request:
    """``GET /voices/user`` (your own), ``/voices/system`` or ``/voices/featured``."""
    return Request("GET", f"{_voices(endpoints)}/{which}")


def create_voice(
    endpoints: Endpoints,
    *,
    audio: bytes,
    content_type: str,
    name: str,
    description: str,
    preview_text: str,
    gender: str = "neutral",
) -> Request:
    """``POST /voices/``: the sample (part ``file``) and a private draft voice (part ``json``)."""
    meta = {
        "voice": {
            "name": name,
            "description": description,
            "gender": gender,
            "visibility": "private",
            "previewText": preview_text,
            "audioSourceType": "file",
        }
    }
    parts = (
        ("file", "input.mp3", content_type, audio),
        ("json", None, None, _encode(meta)),
    )
    return Request("POST", f"{_voices(endpoints)}/", multipart=parts)


def update_voice(
    endpoints: Endpoints,
    voice: Voice,
    *,
    name: str,
    description: str,
    visibility: str,
    preview_text: str,
) -> Request:
    """``PUT /voices/{id}`` with the whole voice, edited, as the web client sends it."""
    body = {
        "voice": {
            "id": voice.id,
            "name": name,
            "description": description,
            "gender": voice.gender or "neutral",
            "visibility": visibility,
            "creatorInfo": {
                "id": voice.creator_info.id,
                "source": voice.creator_info.source or "user",
                "username": voice.creator_info.username,
            },
            "audioSourceType": voice.audio_source_type or "file",
            "previewText": preview_text,
            "previewAudioURI": voice.preview_audio_uri,
            "backendProvider": voice.backend_provider or "cai",
            "backendId": voice.backend_id or voice.id,
            "internalStatus": "draft",
            "lastUpdateTime": ZERO_TIME,
        }
    }
    return Request("PUT", f"{_voices(endpoints)}/{voice.id}", json=body)


def delete_voice(endpoints: Endpoints, voice_id: str) -> Request:
    return Request("DELETE", f"{_voices(endpoints)}/{voice_id}")


def replay(
    endpoints: Endpoints,
    *,
    chat_id: str,
    turn_id: str,
    candidate_id: str,
    voice_id: str = "",
    voice_query: str | None = None,
) -> Request:
    """``POST /memo/replay``: speak one candidate in a voice (by id, or by name when
    ``voice_id`` is empty and ``voice_query`` is given)."""
    body: dict[str, Any] = {
        "candidateId": candidate_id,
        "roomId": chat_id,
        "turnId": turn_id,
        "voiceId": voice_id,
    }
    if voice_query is not None:
        body["voiceQuery"] = voice_query
    # Replaying the same candidate again only costs a second URL: safe to retry.
    return Request("POST", f"{endpoints.neo}{_MULTIMODAL}/memo/replay", json=body, idempotent=True)


class _VoiceBody(msgspec.Struct):
    voice: Voice


class _VoicesBody(msgspec.Struct):
    voices: list[Voice] | None = None


class _ReplayBody(msgspec.Struct, rename="camel"):
    replay_url: str = ""


def parse_voice(body: bytes) -> Voice:
    """``{"voice": {...}}`` → :class:`Voice`."""
    return decode(body, _VoiceBody, "voice").voice


def parse_voices(body: bytes) -> list[Voice]:
    """``{"voices": [...]}``; a missing or null list means none."""
    return decode(body, _VoicesBody, "voices").voices or []


def parse_replay_url(body: bytes) -> str:
    """``{"replayUrl": "https://…"}`` → the URL of the audio file."""
    url = decode(body, _ReplayBody, "memo/replay").replay_url
    if urlsplit(url).scheme not in ("http", "https"):
        raise ProtocolError(f"memo/replay returned no usable replayUrl: {url!r}")
    return url


# ---- per-character voice override (plus) ---------------------------------------------------


def _override(endpoints: Endpoints, character_id: str) -> str:
    return f"{endpoints.plus}/chat/character/{character_id}/voice_override"


def set_voice_override(endpoints: Endpoints, character_id: str, voice_id: str) -> Request:
    url = f"{_override(endpoints, character_id)}/update/"
    return Request("POST", url, json={"voice_id": voice_id}, idempotent=True)


def clear_voice_override(endpoints: Endpoints, character_id: str) -> Request:
    return Request("POST", f"{_override(endpoints, character_id)}/delete/", idempotent=True)


def get_voice_override(endpoints: Endpoints, character_id: str) -> Request:
    return Request("GET", f"{_override(endpoints, character_id)}/")


class _Envelope(msgspec.Struct):
    """The values the Django app's media answers carry (their failures: check_refusal)."""

    voice_id: str | None = None
    value: str | None = None
    image_rel_path: str | None = None


def _envelope(body: bytes, what: str) -> _Envelope:
    """The decoded body, once :func:`~caiclient.protocol.http.check_refusal` found no
    in-band failure in it (docs/protocol.md §2.4.2)."""
    check_refusal(body, what, object_expected=True)
    return decode(body, _Envelope, what)


def parse_success(body: bytes, what: str) -> None:
    """``{"success": true}`` (or any body without a failure marker)."""
    _envelope(body, what)


def parse_voice_override(body: bytes) -> str | None:
    """``{"voice_id": id | null}`` → the voice id, or None when there is no override."""
    return _envelope(body, "voice_override").voice_id or None


# ---- images --------------------------------------------------------------------------------


def upload_image(endpoints: Endpoints, data: bytes, filename: str, content_type: str) -> Request:
    """``POST /chat/upload-image/`` multipart, field ``image``."""
    parts = (("image", filename, content_type, data),)
    return Request("POST", f"{endpoints.plus}/chat/upload-image/", multipart=parts)


def avatar_options(endpoints: Endpoints, prompt: str, count: int) -> Request:
    body = {"prompt": prompt, "num_candidates": count, "model_version": "v1"}
    return Request("POST", f"{endpoints.plus}/chat/character/generate-avatar-options", json=body)


def generate_image(endpoints: Endpoints, prompt: str) -> Request:
    body = {"image_description": prompt}
    return Request("POST", f"{endpoints.plus}/chat/generate-image/", json=body)


def cdn_url(endpoints: Endpoints, rel_path: str, *, size: int = 400, bucket: str = "user") -> str:
    """The CDN URL of an image: ``{cdn}/i/{size}/static/{bucket}/{rel_path}``.

    ``bucket`` is ``"user"`` for uploads and ``"avatars"`` for avatar file names.
    """
    return f"{endpoints.cdn}/i/{size}/static/{bucket}/{quote(rel_path.lstrip('/'), safe='/')}"


def parse_upload(body: bytes) -> str:
    """``{"status": "OK", "value": "<rel path>"}`` → the rel path."""
    value = _envelope(body, "upload-image").value
    if not value:
        raise ProtocolError("upload-image returned no path")
    return value


class _Option(msgspec.Struct):
    url: str | None = None
    prompt: str | None = None


class _OptionsBody(msgspec.Struct):
    result: list[_Option] | None = None


def parse_avatar_options(body: bytes) -> list[str]:
    """``{"result": [{"prompt", "url"}, …]}`` → the image URLs (entries without one dropped)."""
    _envelope(body, "generate-avatar-options")
    options = decode(body, _OptionsBody, "generate-avatar-options").result or []
    return [option.url for option in options if option.url]


def parse_generated_image(body: bytes) -> str:
    """``{"image_rel_path": "<URL>"}`` → the URL."""
    url = _envelope(body, "generate-image").image_rel_path
    if not url:
        raise ProtocolError("generate-image returned no image")
    return url
