"""Media models: voices (the multimodal API's camelCase objects, docs/protocol.md §11.2)."""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = ["Voice", "VoiceCreator"]


class VoiceCreator(msgspec.Struct, frozen=True, kw_only=True):
    """Who made a voice: ``source`` is ``"user"`` (or another origin such as ``"system"``)."""

    id: str = ""
    source: str = ""
    username: str = ""


class Voice(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A text-to-speech voice.

    ``visibility`` is ``"public"`` or ``"private"``; ``internal_status`` is ``"draft"`` until
    the voice is published, then ``"active"``.
    """

    id: str
    name: str = ""
    description: str = ""
    gender: str = "neutral"
    visibility: str = "private"
    creator_info: VoiceCreator = VoiceCreator()
    audio_source_type: str = ""
    preview_text: str = ""
    preview_audio_uri: str = msgspec.field(default="", name="previewAudioURI")
    backend_provider: str = ""
    backend_id: str = ""
    internal_status: str = ""
    last_update_time: datetime | None = None

    @property
    def creator_id(self) -> str:
        """The creator's user id (a digit string; empty for built-in voices)."""
        return self.creator_info.id

    @property
    def creator_username(self) -> str:
        return self.creator_info.username

    @property
    def is_public(self) -> bool:
        return self.visibility == "public"

    @property
    def is_draft(self) -> bool:
        return self.internal_status == "draft"
