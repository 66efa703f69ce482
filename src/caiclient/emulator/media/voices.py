"""Voices, per-character voice overrides and TTS replay (docs/protocol.md §11.2, §11.3).

The multimodal API lives under ``/neo/multimodal/api/v1``; its errors are neo_error bodies
(one of the shapes §11.2/§11.3 list). Replay and preview audio is served under
``/cdn/audio/`` without a token, as a signed storage URL would be.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from .._http import (
    DJANGO_PREFIXES,
    ApiError,
    authenticate,
    json_response,
    neo_error,
    read_json,
)
from .._util import decode_json, new_id, now_iso
from ..account.store import ACCOUNT
from ..chat.store import CHAT
from ..state import STATE
from ..store import User
from .files import silent_mp3, sniff_audio
from .forms import FormError, origin, read_form
from .store import MEDIA, MediaStore, VoiceRecord, voice_payload

__all__ = ["MAX_AUDIO_BYTES", "add_routes", "overrides_of"]

MAX_AUDIO_BYTES = 10 * 1024 * 1024
"""Largest voice sample accepted (the live limit is unknown)."""

API = "/neo/multimodal/api/v1"
_VISIBILITIES = ("public", "private")


def _voice_not_found() -> ApiError:
    return neo_error(404, "Voice not found")


def _media(request: web.Request) -> MediaStore:
    return request.app[MEDIA]


def _render(request: web.Request, voice: VoiceRecord) -> dict[str, Any]:
    return voice_payload(_media(request), voice, origin(request))


def _voices_response(request: web.Request, voices: list[VoiceRecord]) -> web.Response:
    return json_response({"voices": [_render(request, v) for v in voices]})


# ---- reading voices -----------------------------------------------------------------------


async def get_voice(request: web.Request) -> web.Response:
    """``GET /voices/{id}`` → ``{"voice"}``; another user's private voice is "not found"."""
    user = authenticate(request)
    voice = _media(request).voice_for(user, request.match_info["voice_id"])
    if voice is None:
        raise _voice_not_found()
    return json_response({"voice": _render(request, voice)})


def _matches(media: MediaStore, voice: VoiceRecord, query: Any) -> bool:
    text = query.get("query", "").strip().lower()
    if text and text not in f"{voice.name}\n{voice.description}".lower():
        return False
    name = query.get("characterName", "").strip().lower()
    if name and name not in voice.name.lower():
        return False
    creator = query.get("creatorInfo.username", "").strip().lower()
    return not creator or media.creator_name(voice).lower() == creator


async def search_voices(request: web.Request) -> web.Response:
    """``GET /voices/search?query=|characterName=|creatorInfo.username=`` (all ANDed)."""
    user = authenticate(request)
    media = _media(request)
    keys = ("query", "characterName", "creatorInfo.username")
    if not any(request.query.get(k, "").strip() for k in keys):
        return _voices_response(request, [])
    found = [v for v in media.visible_voices(user) if _matches(media, v, request.query)]
    return _voices_response(request, found)


async def user_voices(request: web.Request) -> web.Response:
    user = authenticate(request)
    mine = [v for v in _media(request).voices.values() if v.owner_id == user.id]
    return _voices_response(request, mine)


async def system_voices(request: web.Request) -> web.Response:
    authenticate(request)
    system = [v for v in _media(request).voices.values() if v.source == "system"]
    return _voices_response(request, system)


async def featured_voices(request: web.Request) -> web.Response:
    authenticate(request)
    featured = [v for v in _media(request).voices.values() if v.featured]
    return _voices_response(request, featured)


# ---- creating and editing -----------------------------------------------------------------


def _str_field(fields: dict[str, Any], key: str, default: str) -> str:
    value = fields.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise neo_error(400, f"Invalid voice: {key} must be a string")
    return value


def _apply(fields: Any, voice: VoiceRecord) -> None:
    """Copy the editable fields of a wire voice into ``voice``, checking each."""
    if not isinstance(fields, dict):
        raise neo_error(400, 'Invalid voice: expected {"voice": {...}}')
    name = _str_field(fields, "name", voice.name).strip()
    if not 3 <= len(name) <= 20:
        raise neo_error(400, "Invalid voice: name must be 3 to 20 characters")
    description = _str_field(fields, "description", voice.description)
    if len(description) > 120:
        raise neo_error(400, "Invalid voice: description must be at most 120 characters")
    visibility = _str_field(fields, "visibility", voice.visibility).lower()
    if visibility not in _VISIBILITIES:
        raise neo_error(400, "Invalid voice: visibility must be public or private")
    preview = _str_field(fields, "previewText", voice.preview_text)
    if len(preview) > 500:
        raise neo_error(400, "Invalid voice: previewText must be at most 500 characters")
    voice.name, voice.description, voice.visibility = name, description, visibility
    voice.gender = _str_field(fields, "gender", voice.gender) or "neutral"
    voice.preview_text = preview


def _voice_json(raw: bytes) -> Any:
    try:
        body = decode_json(raw)
    except msgspec.DecodeError:
        raise neo_error(400, "Invalid voice: the json part is not JSON") from None
    return body.get("voice") if isinstance(body, dict) else None


async def create_voice(request: web.Request) -> web.Response:
    """``POST /voices/`` multipart (``file`` + ``json``) → ``{"voice"}``, a private draft."""
    user = authenticate(request)
    try:
        form = await read_form(request, max_part_bytes=MAX_AUDIO_BYTES)
    except FormError as exc:
        if exc.too_large:
            limit = f"the limit is {MAX_AUDIO_BYTES} bytes"
            raise neo_error(400, f"Audio file too large: {limit}") from None
        raise neo_error(400, f"Invalid upload: {exc.reason}") from None
    audio, meta = form.get("file"), form.get("json")
    if audio is None or meta is None:
        raise neo_error(400, "Invalid upload: a file part and a json part are required")
    audio_type = sniff_audio(audio.data)
    if audio_type is None:
        raise neo_error(400, "Invalid upload: the file is not a supported audio file")
    voice = VoiceRecord(
        id=new_id(),
        name="",
        description="",
        owner_id=user.id,
        source="user",
        audio_type=audio_type,
        audio=audio.data,
        last_update_time=now_iso(),
    )
    _apply(_voice_json(meta.data), voice)
    _media(request).save_voice(voice)
    return json_response({"voice": _render(request, voice)})


def _owned(request: web.Request, user: User) -> VoiceRecord:
    """The voice in the path if ``user`` may change it: 404 when invisible, 403 otherwise."""
    voice = _media(request).voice_for(user, request.match_info["voice_id"])
    if voice is None:
        raise _voice_not_found()
    if voice.owner_id != user.id:
        raise neo_error(403, "Permission denied: this voice belongs to someone else")
    return voice


async def update_voice(request: web.Request) -> web.Response:
    """``PUT /voices/{id}`` ``{"voice": {...}}``: edit and publish (``internalStatus`` active)."""
    user = authenticate(request)
    voice = _owned(request, user)
    body = await read_json(request)
    fields = body.get("voice") if isinstance(body, dict) else None
    edited = msgspec.structs.replace(voice)
    _apply(fields, edited)
    edited.internal_status = "active"
    edited.last_update_time = now_iso()
    _media(request).save_voice(edited)
    return json_response({"voice": _render(request, edited)})


async def delete_voice(request: web.Request) -> web.Response:
    user = authenticate(request)
    _media(request).delete_voice(_owned(request, user))
    return json_response({})


# ---- TTS replay ---------------------------------------------------------------------------


class _ReplayBody(msgspec.Struct, rename="camel"):
    candidate_id: str
    room_id: str
    turn_id: str
    voice_id: str | None = None
    voice_query: str | None = None


def _by_name(media: MediaStore, user: User, query: str) -> VoiceRecord | None:
    wanted = query.strip().lower()
    visible = list(media.visible_voices(user))
    exact = [v for v in visible if v.name.lower() == wanted]
    partial = [v for v in visible if wanted in v.name.lower()]
    found = exact or partial
    return found[0] if found else None


def _replay_voice(
    request: web.Request, user: User, body: _ReplayBody, character_id: str
) -> VoiceRecord:
    """``voiceId``, else ``voiceQuery`` by name, else the user's override for the character,
    else the first system voice."""
    media = _media(request)
    if body.voice_id:
        voice = media.voice_for(user, body.voice_id)
    elif body.voice_query and body.voice_query.strip():
        voice = _by_name(media, user, body.voice_query)
    else:
        override = overrides_of(request, user).get(character_id, "")
        voice = media.voice_for(user, override) or next(iter(media.voices.values()))
    if voice is None:
        raise _voice_not_found()
    return voice


async def replay(request: web.Request) -> web.Response:
    """``POST /memo/replay`` → ``{"replayUrl"}`` of an MP3 the emulator serves."""
    user = authenticate(request)
    try:
        body = msgspec.convert(await read_json(request), _ReplayBody)
    except msgspec.ValidationError as exc:
        raise neo_error(400, f"Invalid request: {exc}") from None
    if not (body.candidate_id and body.room_id and body.turn_id):
        raise neo_error(400, "Invalid request: candidateId, roomId and turnId are required")
    store = request.app[CHAT]
    chat = store.chat_for(user, body.room_id)
    if chat is None:
        raise neo_error(404, "Chat not found")
    turn = store.turn(chat, body.turn_id)
    if turn is None:
        raise neo_error(404, "Turn not found")
    if all(c.candidate_id != body.candidate_id for c in turn.candidates):
        raise neo_error(404, "Turn candidate not found")
    voice = _replay_voice(request, user, body, chat.chat.character_id)
    record = _media(request).add_replay(body.candidate_id, voice.id)
    return json_response({"replayUrl": f"{origin(request)}/cdn/audio/replay/{record.key}.mp3"})


# ---- audio files --------------------------------------------------------------------------


def _mp3(data: bytes) -> web.Response:
    headers = {"Cache-Control": "public, max-age=86400"}
    return web.Response(body=data, content_type="audio/mpeg", headers=headers)


async def replay_audio(request: web.Request) -> web.Response:
    record = _media(request).replays.get(request.match_info["key"])
    if record is None:
        return web.Response(status=404, text="Not Found")
    title = f"caiclient emulator replay: candidate {record.candidate_id} voice {record.voice_id}"
    return _mp3(silent_mp3(record.key, title=title))


async def preview_audio(request: web.Request) -> web.Response:
    voice = _media(request).voices.get(request.match_info["voice_id"])
    if voice is None:
        return web.Response(status=404, text="Not Found")
    return _mp3(silent_mp3(voice.id, title=f"caiclient emulator voice preview: {voice.name}"))


# ---- per-character override (plus) -------------------------------------------------------
# The overrides are the ``voiceOverrides`` of the user's settings (docs/protocol.md §4.4) when the
# account area runs; without it the media store keeps its own map.


def overrides_of(request: web.Request, user: User) -> dict[str, str]:
    """``{character_id: voice_id}`` of ``user``."""
    account = request.app.get(ACCOUNT)
    if account is None:
        return _media(request).voice_overrides(user.id)
    settings = account.settings.get(user.id)
    return dict(settings.voice_overrides) if settings is not None else {}


def _save_override(request: web.Request, user: User, character_id: str, voice_id: str) -> None:
    """Set (``voice_id``) or clear (``""``) the override of one character."""
    account = request.app.get(ACCOUNT)
    if account is None:
        media = _media(request)
        if voice_id:
            media.set_override(user, character_id, voice_id)
        else:
            media.clear_override(user, character_id)
        return
    settings = account.settings_of(user)
    if voice_id:
        settings.voice_overrides[character_id] = voice_id
    elif settings.voice_overrides.pop(character_id, None) is None:
        return
    account.save_settings(user, settings)


def _character(request: web.Request) -> str:
    character_id = request.match_info["character_id"]
    if character_id not in request.app[STATE].store.characters:
        raise ApiError(404, {"detail": "Not found."})
    return character_id


async def set_override(request: web.Request) -> web.Response:
    """``POST /chat/character/{id}/voice_override/update/`` ``{"voice_id"}`` → success."""
    user = authenticate(request)
    character_id = _character(request)
    body = await read_json(request)
    voice_id = body.get("voice_id") if isinstance(body, dict) else None
    if not isinstance(voice_id, str) or not voice_id:
        raise ApiError(400, {"success": False, "error": "voice_id is required"})
    if _media(request).voice_for(user, voice_id) is None:
        raise ApiError(404, {"success": False, "error": "Voice not found"})
    _save_override(request, user, character_id, voice_id)
    return json_response({"success": True})


async def clear_override(request: web.Request) -> web.Response:
    user = authenticate(request)
    _save_override(request, user, _character(request), "")
    return json_response({"success": True})


async def get_override(request: web.Request) -> web.Response:
    """``GET /chat/character/{id}/voice_override/`` → ``{"voice_id": id | null}``."""
    user = authenticate(request)
    character_id = _character(request)
    return json_response({"voice_id": overrides_of(request, user).get(character_id)})


def add_routes(app: web.Application) -> None:
    """Add the voice, replay, override and audio routes to ``app``."""
    router = app.router
    # Fixed paths before the {voice_id} pattern, which would otherwise swallow them.
    router.add_get(f"{API}/voices/search", search_voices)
    router.add_get(f"{API}/voices/user", user_voices)
    router.add_get(f"{API}/voices/system", system_voices)
    router.add_get(f"{API}/voices/featured", featured_voices)
    router.add_post(f"{API}/voices/", create_voice)
    router.add_post(f"{API}/voices", create_voice)
    router.add_get(f"{API}/voices/{{voice_id}}", get_voice)
    router.add_put(f"{API}/voices/{{voice_id}}", update_voice)
    router.add_delete(f"{API}/voices/{{voice_id}}", delete_voice)
    router.add_post(f"{API}/memo/replay", replay)
    router.add_get("/cdn/audio/replay/{key}.mp3", replay_audio)
    router.add_get("/cdn/audio/voices/{voice_id}.mp3", preview_audio)
    for prefix in DJANGO_PREFIXES:
        base = f"{prefix}/chat/character/{{character_id}}/voice_override"
        router.add_get(f"{base}/", get_override)
        router.add_post(f"{base}/update/", set_override)
        router.add_post(f"{base}/delete/", clear_override)
