"""State of the media area: voices, per-character voice overrides, TTS replays, images.

Records are written through the core store's persistence (kinds ``media_voice``,
``media_voice_override``, ``media_replay``, ``media_image``); the seed voices are code.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
from aiohttp import web

from ..store import Store, User

__all__ = [
    "MEDIA",
    "SEED_VOICES",
    "ImageRecord",
    "MediaStore",
    "OverrideRecord",
    "ReplayRecord",
    "VoiceRecord",
    "voice_id_for",
    "voice_payload",
]

_VOICE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "caiclient-emulator/voices")
_SEED_TIME = "2024-06-01T12:00:00.000000Z"


def voice_id_for(name: str) -> str:
    """The deterministic UUID of a seed voice (live voice ids are UUIDs)."""
    return str(uuid.uuid5(_VOICE_NAMESPACE, name))


class VoiceRecord(msgspec.Struct, kw_only=True):
    id: str
    name: str
    description: str
    owner_id: str  # "" for system voices
    source: str  # "user" or "system"
    visibility: str = "private"
    gender: str = "neutral"
    preview_text: str = ""
    internal_status: str = "draft"
    last_update_time: str = _SEED_TIME
    audio_type: str = ""
    audio: bytes = b""
    featured: bool = False


class OverrideRecord(msgspec.Struct, kw_only=True):
    user_id: str
    character_id: str
    voice_id: str


class ReplayRecord(msgspec.Struct, kw_only=True):
    key: str
    candidate_id: str
    voice_id: str


class ImageRecord(msgspec.Struct, kw_only=True):
    rel: str
    owner_id: str  # "" for generated images
    kind: str  # "user", "avatar" or "generated"
    content_type: str
    data: bytes


def _seed(name: str, description: str, preview: str, *, featured: bool = False) -> VoiceRecord:
    return VoiceRecord(
        id=voice_id_for(name),
        name=name,
        description=description,
        owner_id="",
        source="system",
        visibility="public",
        preview_text=preview,
        internal_status="active",
        featured=featured,
    )


SEED_VOICES: tuple[VoiceRecord, ...] = (
    _seed("Narrator", "A calm, even storyteller.", "Once upon a time…", featured=True),
    _seed("Bright Guide", "Warm and upbeat.", "Good day! Let's get started.", featured=True),
    _seed("Deep Captain", "Low, steady and commanding.", "All hands on deck."),
    _seed("Soft Whisper", "Quiet and close.", "Can you keep a secret?"),
)


class MediaStore:
    """Voices, overrides, replays and images, indexed for the handlers."""

    def __init__(self, core: Store) -> None:
        self.core = core
        persist = core.persist
        self.voices: dict[str, VoiceRecord] = {v.id: v for v in SEED_VOICES}
        self.voices.update(persist.load("media_voice", VoiceRecord))
        self.overrides: dict[str, dict[str, str]] = {}
        for rec in persist.load("media_voice_override", OverrideRecord).values():
            self.overrides.setdefault(rec.user_id, {})[rec.character_id] = rec.voice_id
        self.replays: dict[str, ReplayRecord] = persist.load("media_replay", ReplayRecord)
        self.images: dict[str, ImageRecord] = persist.load("media_image", ImageRecord)

    # ---- voices --------------------------------------------------------------------------
    @staticmethod
    def visible(user: User, voice: VoiceRecord) -> bool:
        """Public voices are everyone's; a private one exists only for its owner."""
        return voice.visibility == "public" or voice.owner_id == user.id

    def voice_for(self, user: User, voice_id: str) -> VoiceRecord | None:
        voice = self.voices.get(voice_id)
        return voice if voice is not None and self.visible(user, voice) else None

    def visible_voices(self, user: User) -> Iterator[VoiceRecord]:
        return (v for v in self.voices.values() if self.visible(user, v))

    def creator_name(self, voice: VoiceRecord) -> str:
        owner = self.core.users_by_id.get(voice.owner_id)
        return owner.username if owner is not None else ""

    def save_voice(self, voice: VoiceRecord) -> None:
        self.voices[voice.id] = voice
        self.core.persist.put("media_voice", voice.id, voice)

    def delete_voice(self, voice: VoiceRecord) -> None:
        del self.voices[voice.id]
        self.core.persist.delete("media_voice", voice.id)

    # ---- overrides -----------------------------------------------------------------------
    def voice_overrides(self, user_id: str) -> dict[str, str]:
        """``{character_id: voice_id}`` of one user: what settings call ``voiceOverrides``."""
        return dict(self.overrides.get(user_id, {}))

    def set_override(self, user: User, character_id: str, voice_id: str) -> None:
        self.overrides.setdefault(user.id, {})[character_id] = voice_id
        record = OverrideRecord(user_id=user.id, character_id=character_id, voice_id=voice_id)
        self.core.persist.put("media_voice_override", f"{user.id}/{character_id}", record)

    def clear_override(self, user: User, character_id: str) -> None:
        self.overrides.get(user.id, {}).pop(character_id, None)
        self.core.persist.delete("media_voice_override", f"{user.id}/{character_id}")

    # ---- replays -------------------------------------------------------------------------
    def add_replay(self, candidate_id: str, voice_id: str) -> ReplayRecord:
        """The replay of a candidate in a voice; the same pair always gets the same key."""
        key = hashlib.sha256(f"{candidate_id}:{voice_id}".encode()).hexdigest()[:32]
        record = self.replays.get(key)
        if record is None:
            record = ReplayRecord(key=key, candidate_id=candidate_id, voice_id=voice_id)
            self.replays[key] = record
            self.core.persist.put("media_replay", key, record)
        return record

    # ---- images --------------------------------------------------------------------------
    def save_image(self, image: ImageRecord) -> None:
        self.images[image.rel] = image
        self.core.persist.put("media_image", image.rel, image)


MEDIA = web.AppKey("caiclient_emulator_media", MediaStore)


def voice_payload(media: MediaStore, voice: VoiceRecord, origin: str) -> dict[str, Any]:
    """The voice object exactly as docs/protocol.md §11.2 spells it (camelCase keys)."""
    return {
        "id": voice.id,
        "name": voice.name,
        "description": voice.description,
        "gender": voice.gender,
        "visibility": voice.visibility,
        "creatorInfo": {
            "id": voice.owner_id,
            "source": voice.source,
            "username": media.creator_name(voice),
        },
        "audioSourceType": "file",
        "previewText": voice.preview_text,
        "previewAudioURI": f"{origin}/cdn/audio/voices/{voice.id}.mp3",
        "backendProvider": "cai",
        "backendId": voice.id,
        "internalStatus": voice.internal_status,
        "lastUpdateTime": voice.last_update_time,
    }
