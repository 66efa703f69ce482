from __future__ import annotations

import re
from typing import Literal

from .._core import ClientCore
from .._media_input import MediaSource, read_media
from .._validate import check_bool, check_id, check_text
from ..errors import CharacterNotFound, NotFound, ValidationError, VoiceNotFound
from ..models import Turn, Voice
from ..protocol import media
from ..protocol.http import Request

__all__ = ["AsyncVoicesAPI"]

_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_VISIBILITY = {True: "public", False: "private"}
DEFAULT_PREVIEW = "Good day! Here to make life a little less complicated."


def _voice_id(voice: object) -> str:
    """The id of a :class:`Voice` or of a voice id string."""
    if isinstance(voice, Voice):
        return voice.id
    if isinstance(voice, str):
        return check_id(voice, "voice")
    raise ValidationError(f"voice must be a Voice or a voice id, got {type(voice).__name__}")


def _voice_selector(voice: object) -> tuple[str, str | None]:
    """``(voiceId, voiceQuery)`` for tts: a Voice or a UUID is an id, other text a name."""
    if voice is None:
        return "", None
    if isinstance(voice, Voice):
        return voice.id, None
    if isinstance(voice, str):
        text = check_text(voice, "voice").strip()
        return (text, None) if _UUID.fullmatch(text) else ("", text)
    raise ValidationError(
        f"voice must be a Voice, a voice id or a name, got {type(voice).__name__}"
    )


def _check_name(name: object) -> str:
    text = check_text(name, "name").strip()
    if not 3 <= len(text) <= 20:
        raise ValidationError(f"name must be 3 to 20 characters, got {len(text)}")
    return text


def _check_length(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ValidationError(f"{what} must be a str of at most {limit} characters")
    return value


def _voice_error(exc: NotFound) -> NotFound:
    """A not-found about a voice as VoiceNotFound; others unchanged."""
    return VoiceNotFound(str(exc)) if "voice" in str(exc).lower() else exc


class AsyncVoicesAPI:
    """Voices and text-to-speech (``client.voices``).

    Every call is safe to cancel; a cancelled :meth:`create` may leave a private draft voice.
    """

    def __init__(self, core: ClientCore) -> None:
        self._core = core

    async def get(self, voice_id: str, *, timeout: float | None = None) -> Voice:
        """The voice with this id.

        Raises VoiceNotFound for an unknown voice or another user's private one.
        """
        check_id(voice_id, "voice_id")
        request = media.get_voice(self._core.endpoints, voice_id)
        body = await self._core.call(request, timeout=timeout, not_found=VoiceNotFound)
        return media.parse_voice(body)

    async def search(
        self, query: str | None = None, *, creator: str | None = None, timeout: float | None = None
    ) -> list[Voice]:
        """Voices you can use whose name or description contains ``query`` and/or that were
        made by the user called ``creator``; give at least one. An empty list when none match.
        """
        if query is None and creator is None:
            raise ValidationError("give a query, a creator username, or both")
        if query is not None:
            check_text(query, "query")
        if creator is not None:
            check_text(creator, "creator")
        request = media.search_voices(self._core.endpoints, query=query, creator=creator)
        return media.parse_voices(await self._core.call(request, timeout=timeout))

    async def mine(self, *, timeout: float | None = None) -> list[Voice]:
        """The voices you created (drafts and published, private and public)."""
        return await self._list("user", timeout)

    async def system(self, *, timeout: float | None = None) -> list[Voice]:
        """The service's built-in voices."""
        return await self._list("system", timeout)

    async def featured(self, *, timeout: float | None = None) -> list[Voice]:
        """The voices the service currently features."""
        return await self._list("featured", timeout)

    async def _list(
        self, which: Literal["user", "system", "featured"], timeout: float | None
    ) -> list[Voice]:
        request = media.list_voices(self._core.endpoints, which)
        return media.parse_voices(await self._core.call(request, timeout=timeout))

    async def create(
        self,
        audio: MediaSource,
        *,
        name: str,
        description: str = "",
        public: bool = False,
        preview_text: str = DEFAULT_PREVIEW,
        timeout: float | None = None,
    ) -> Voice:
        """Create a voice from an audio sample (a path or bytes) and publish it.

        Like the web client this uploads a draft, then saves it with its visibility; returns
        the published voice. ``name`` must be 3–20 characters, ``description`` at most 120.
        ``timeout`` applies to each of the two requests. Raises ValidationError (before any
        I/O) for a missing, empty or non-audio file, ServerError when the service refuses it.
        """
        name = _check_name(name)
        _check_length(description, "description", 120)
        _check_length(preview_text, "preview_text", 500)
        visibility = _VISIBILITY[check_bool(public, "public")]
        data, content_type = await read_media(
            audio, "audio", media.sniff_audio, "MP3, WAV, Ogg, FLAC or MP4 audio"
        )
        request = media.create_voice(
            self._core.endpoints,
            audio=data,
            content_type=content_type,
            name=name,
            description=description,
            preview_text=preview_text,
        )
        draft = media.parse_voice(await self._core.call(request, timeout=timeout))
        return await self._save(draft, name, description, visibility, preview_text, timeout)

    async def update(
        self,
        voice: Voice | str,
        *,
        name: str | None = None,
        description: str | None = None,
        public: bool | None = None,
        preview_text: str | None = None,
        timeout: float | None = None,
    ) -> Voice:
        """Change your voice's name, description, visibility or preview text; return it.

        Fields left as None keep their value. A voice given by id is fetched first. Raises
        VoiceNotFound, or AuthError when the voice is someone else's (public) voice.
        """
        voice_id = _voice_id(voice)
        if name is not None:
            name = _check_name(name)
        if description is not None:
            _check_length(description, "description", 120)
        if preview_text is not None:
            _check_length(preview_text, "preview_text", 500)
        if public is not None:
            check_bool(public, "public")
        current = voice if isinstance(voice, Voice) else await self.get(voice_id, timeout=timeout)
        return await self._save(
            current,
            name if name is not None else current.name,
            description if description is not None else current.description,
            _VISIBILITY[public] if public is not None else current.visibility,
            preview_text if preview_text is not None else current.preview_text,
            timeout,
        )

    async def _save(
        self,
        voice: Voice,
        name: str,
        description: str,
        visibility: str,
        preview_text: str,
        timeout: float | None,
    ) -> Voice:
        request = media.update_voice(
            self._core.endpoints,
            voice,
            name=name,
            description=description,
            visibility=visibility,
            preview_text=preview_text,
        )
        body = await self._core.call(request, timeout=timeout, not_found=VoiceNotFound)
        return media.parse_voice(body)

    async def delete(self, voice: Voice | str, *, timeout: float | None = None) -> None:
        """Delete one of your voices. Raises VoiceNotFound, or AuthError for another user's."""
        voice_id = _voice_id(voice)
        request = media.delete_voice(self._core.endpoints, voice_id)
        await self._core.call(request, timeout=timeout, not_found=VoiceNotFound)

    async def tts(
        self,
        turn: Turn,
        voice: Voice | str | None = None,
        *,
        candidate_id: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """Have a turn spoken; return the URL of the MP3.

        ``voice`` is a :class:`Voice`, a voice id, or a voice's name (the service picks the
        best match); None lets the service choose (your override for the character, else a
        default). The turn's primary candidate is spoken unless ``candidate_id`` names
        another. Raises VoiceNotFound, ChatNotFound or TurnNotFound.
        """
        if not isinstance(turn, Turn):
            raise ValidationError(f"turn must be a Turn, got {type(turn).__name__}")
        check_id(turn.chat_id, "turn.chat_id")
        check_id(turn.turn_id, "turn.turn_id")
        if candidate_id is None:
            primary = turn.primary
            if primary is None:
                raise ValidationError("the turn has no candidate to speak; pass candidate_id")
            candidate_id = primary.candidate_id
        check_id(candidate_id, "candidate_id")
        voice_id, voice_query = _voice_selector(voice)
        request = media.replay(
            self._core.endpoints,
            chat_id=turn.chat_id,
            turn_id=turn.turn_id,
            candidate_id=candidate_id,
            voice_id=voice_id,
            voice_query=voice_query,
        )
        try:
            body = await self._core.call(request, timeout=timeout)
        except NotFound as exc:
            raise _voice_error(exc) from None
        return media.parse_replay_url(body)

    async def tts_bytes(
        self,
        turn: Turn,
        voice: Voice | str | None = None,
        *,
        candidate_id: str | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """Like :meth:`tts`, but download the MP3 and return its bytes.

        ``timeout`` applies to each of the two requests.
        """
        url = await self.tts(turn, voice, candidate_id=candidate_id, timeout=timeout)
        return await self._core.fetch(url, timeout=timeout)

    async def set_for_character(
        self, character_id: str, voice: Voice | str, *, timeout: float | None = None
    ) -> None:
        """Make ``voice`` (a Voice or a voice id) the voice of a character, for you only.

        It shows in your settings' voice overrides. Raises CharacterNotFound or VoiceNotFound.
        """
        check_id(character_id, "character_id")
        voice_id = _voice_id(voice)
        request = media.set_voice_override(self._core.endpoints, character_id, voice_id)
        await self._override_call(request, timeout, "voice_override/update")

    async def clear_for_character(self, character_id: str, *, timeout: float | None = None) -> None:
        """Remove your voice override of a character (a no-op when there is none).

        Raises CharacterNotFound.
        """
        check_id(character_id, "character_id")
        request = media.clear_voice_override(self._core.endpoints, character_id)
        await self._override_call(request, timeout, "voice_override/delete")

    async def for_character(self, character_id: str, *, timeout: float | None = None) -> str | None:
        """The id of your voice override of a character, or None. Raises CharacterNotFound."""
        check_id(character_id, "character_id")
        request = media.get_voice_override(self._core.endpoints, character_id)
        body = await self._override_call(request, timeout, None)
        return media.parse_voice_override(body)

    async def _override_call(
        self, request: Request, timeout: float | None, what: str | None
    ) -> bytes:
        try:
            body = await self._core.call(request, timeout=timeout, not_found=CharacterNotFound)
        except NotFound as exc:
            raise _voice_error(exc) from None
        if what is not None:
            media.parse_success(body, what)
        return body
