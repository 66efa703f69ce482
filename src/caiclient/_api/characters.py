"""The ``client.characters`` namespace (docs/protocol.md §6)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._core import ClientCore
from .._validate import check_bool, check_id, check_text
from ..endpoints import Endpoints
from ..errors import (
    CaiError,
    CharacterNotFound,
    NotFound,
    ProtocolError,
    ServerError,
    ValidationError,
)
from ..models import Character, CharacterShort, avatar_url_for
from ..protocol import characters as proto
from ..protocol.http import Request, check_refusal

__all__ = ["AsyncCharactersAPI"]

log = logging.getLogger("caiclient.characters")

# Server-side limits (docs/protocol.md §6.3); ``title`` may also be empty.
_LIMITS = {
    "name": (3, 20),
    "greeting": (3, 4096),
    "title": (3, 50),
    "description": (0, 500),
    "definition": (0, 32000),
}
_VISIBILITIES = ("PUBLIC", "UNLISTED", "PRIVATE")
_MAX_QUERY = 200

# Search routes, newest first (docs/protocol.md §6.6, §15.3).
_SEARCH_ROUTES: tuple[tuple[str, Callable[[Endpoints, str], Request]], ...] = (
    ("neo /search/v1/character", proto.search),
    ("tRPC search.search", proto.search_trpc),
    ("plus /chat/characters/search/", proto.search_legacy),
)


# --- argument checks (before any I/O) ----------------------------------------------------------


def _ref_id(value: object, what: str = "character") -> str:
    if isinstance(value, (Character, CharacterShort)):
        return value.id
    return check_id(value, what)


def _check_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a str, got {type(value).__name__}")
    return value


def _check_length(value: object, what: str) -> str:
    text = _check_str(value, what)
    low, high = _LIMITS[what]
    if what == "title" and text == "":
        return text
    if not low <= len(text) <= high:
        span = f"at most {high}" if low == 0 else f"{low}–{high}"
        hint = " (or empty)" if what == "title" else ""
        raise ValidationError(f"{what} must have {span} characters{hint}, got {len(text)}")
    return text


def _check_visibility(value: object) -> str:
    if not isinstance(value, str) or value.upper() not in _VISIBILITIES:
        raise ValidationError(
            f"visibility must be one of {', '.join(_VISIBILITIES)}, got {value!r}"
        )
    return value.upper()


def _check_categories(value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError("categories must be a list of str")
    items = list(value)
    if not all(isinstance(item, str) for item in items):
        raise ValidationError("categories must be a list of str")
    return items


_CHECKS: dict[str, Callable[[object], Any]] = {
    "name": lambda v: _check_length(v, "name"),
    "greeting": lambda v: _check_length(v, "greeting"),
    "title": lambda v: _check_length(v, "title"),
    "description": lambda v: _check_length(v, "description"),
    "definition": lambda v: _check_length(v, "definition"),
    "visibility": _check_visibility,
    "copyable": lambda v: check_bool(v, "copyable"),
    "avatar_rel_path": lambda v: _check_str(v, "avatar_rel_path"),
    "default_voice_id": lambda v: _check_str(v, "default_voice_id"),
    "categories": _check_categories,
    "img_gen_enabled": lambda v: check_bool(v, "img_gen_enabled"),
    "base_img_prompt": lambda v: _check_str(v, "base_img_prompt"),
    "strip_img_prompt_from_msg": lambda v: check_bool(v, "strip_img_prompt_from_msg"),
}


def _checked(fields: Mapping[str, object]) -> dict[str, Any]:
    return {key: _CHECKS[key](value) for key, value in fields.items()}


def _editable(character: Character) -> dict[str, Any]:
    """The update body that keeps ``character`` as it is. ``definition`` is left out when we
    were not shown it, so an update can never blank it by accident."""
    body: dict[str, Any] = {
        "name": character.name,
        "title": character.title,
        "greeting": character.greeting,
        "description": character.description,
        "visibility": character.visibility,
        "copyable": character.copyable,
        "identifier": character.identifier or f"id:{uuid.uuid4()}",
        "avatar_rel_path": character.avatar_file_name or "",
        "default_voice_id": character.default_voice_id or "",
        "voice_id": character.voice_id or "",
        "img_gen_enabled": character.img_gen_enabled,
        "base_img_prompt": character.base_img_prompt,
        "strip_img_prompt_from_msg": character.strip_img_prompt_from_msg,
    }
    if character.definition is not None:
        body["definition"] = character.definition
    return body


def _falls_back(exc: CaiError) -> bool:
    """Whether a route's failure means "try an older generation": the route is gone (404),
    broken (5xx) or answers in a shape we do not know. Never for auth, rate limits, blocks."""
    if isinstance(exc, (NotFound, ProtocolError)):
        return True
    return isinstance(exc, ServerError) and exc.status is not None and exc.status >= 500


class AsyncCharactersAPI:
    """Characters: info, search, discovery, your own (``client.characters``)."""

    def __init__(self, core: ClientCore) -> None:
        self._core = core
        # Index of the newest search route that has not answered 404 (a route that is gone).
        self._search_route = 0

    # --- info -----------------------------------------------------------------------------------

    async def info(
        self, character: Character | CharacterShort | str, *, timeout: float | None = None
    ) -> Character:
        """The full character.

        Asks neo ``get_character_info``; only if that route is gone (HTTP 404), failing (5xx)
        or unintelligible, asks the legacy plus ``/chat/character/info/``. The definition is
        included when the server shows it (to the creator, or for copyable characters).
        Raises CharacterNotFound for unknown characters and others' private ones.
        """
        character_id = _ref_id(character)
        core = self._core
        try:
            body = await core.call(
                proto.info(core.endpoints, character_id),
                timeout=timeout,
                not_found=CharacterNotFound,
            )
        except (NotFound, ServerError, ProtocolError) as exc:
            if not _falls_back(exc):
                raise
            log.debug("neo character info failed (%s); asking plus", exc)
            return await self._info_legacy(character_id, timeout)
        try:
            # A NOT_OK body (HTTP 200) is CharacterNotFound here: an answer, not a failure.
            return proto.parse_character(body)
        except ProtocolError as exc:
            log.debug("neo character info unreadable (%s); asking plus", exc)
            return await self._info_legacy(character_id, timeout)

    async def _info_legacy(self, character_id: str, timeout: float | None) -> Character:
        core = self._core
        body = await core.call(
            proto.info_legacy(core.endpoints, character_id),
            timeout=timeout,
            not_found=CharacterNotFound,
        )
        return proto.parse_character(body, "/chat/character/info/")

    # --- search ---------------------------------------------------------------------------------

    async def search(self, query: str, *, timeout: float | None = None) -> list[CharacterShort]:
        """Public characters matching ``query``, best match first.

        Tries the current route (neo ``/search/v1/character``), then tRPC ``search.search``,
        then the legacy plus search, moving on only when a route is gone (404), failing
        (5xx) or answers in an unknown shape; AuthError, RateLimited and BlockedError are
        raised at once. A route that answered 404 is skipped by later calls of this client.
        ``timeout`` applies to each attempt.
        """
        check_text(query, "query")
        if len(query) > _MAX_QUERY:
            raise ValidationError(f"query must have at most {_MAX_QUERY} characters")
        core = self._core
        error: CaiError | None = None
        for index in range(self._search_route, len(_SEARCH_ROUTES)):
            name, build = _SEARCH_ROUTES[index]
            try:
                body = await core.call(build(core.endpoints, query), timeout=timeout)
                if build is proto.search_trpc:
                    return proto.parse_trpc_search(body)
                return proto.parse_character_list(body, name)
            except (NotFound, ServerError, ProtocolError) as exc:
                if not _falls_back(exc):
                    raise
                log.debug("search via %s failed (%s); trying an older route", name, exc)
                if isinstance(exc, NotFound) and index == self._search_route:
                    self._search_route = min(index + 1, len(_SEARCH_ROUTES) - 1)
                error = exc
        raise error or ProtocolError("no search route left to try")

    # --- discovery ------------------------------------------------------------------------------

    async def _list(
        self, request: Request, what: str, timeout: float | None
    ) -> list[CharacterShort]:
        body = await self._core.call(request, timeout=timeout)
        return proto.parse_character_list(body, what)

    async def recommended(self, *, timeout: float | None = None) -> list[CharacterShort]:
        """Characters recommended for you (neo ``/recommendation/v1/user``)."""
        return await self._list(proto.recommended(self._core.endpoints), "recommended", timeout)

    async def featured(self, *, timeout: float | None = None) -> list[CharacterShort]:
        """Featured characters (neo ``/recommendation/v1/featured``)."""
        return await self._list(proto.featured(self._core.endpoints), "featured", timeout)

    async def similar(
        self, character: Character | CharacterShort | str, *, timeout: float | None = None
    ) -> list[CharacterShort]:
        """Characters similar to ``character``; raises CharacterNotFound for an unknown one."""
        character_id = _ref_id(character)
        request = proto.similar(self._core.endpoints, character_id)
        body = await self._core.call(request, timeout=timeout, not_found=CharacterNotFound)
        return proto.parse_character_list(body, "similar")

    async def categories(self, *, timeout: float | None = None) -> dict[str, list[CharacterShort]]:
        """Curated categories (``"Helpers"``, ``"Games"`` …) with their characters, in the
        server's order."""
        request = proto.curated_categories(self._core.endpoints)
        return proto.parse_categories(await self._core.call(request, timeout=timeout))

    async def mine(self, *, timeout: float | None = None) -> list[CharacterShort]:
        """The characters you created, of every visibility."""
        return await self._list(proto.mine(self._core.endpoints), "own characters", timeout)

    async def liked(self, *, timeout: float | None = None) -> list[CharacterShort]:
        """The characters you upvoted."""
        return await self._list(proto.liked(self._core.endpoints), "liked characters", timeout)

    async def recent(self, *, timeout: float | None = None) -> list[CharacterShort]:
        """The characters you have chatted with, latest activity first: also those whose
        chats are all archived, and those of legacy V1 histories (docs/protocol.md §6.5).
        Raises AuthError. Safe to cancel."""
        request = proto.recent(self._core.endpoints)
        return await self._list(request, "recent characters", timeout)

    # --- create / update ------------------------------------------------------------------------

    async def create(
        self,
        name: str,
        greeting: str,
        *,
        title: str = "",
        description: str = "",
        definition: str = "",
        visibility: str = "PRIVATE",
        copyable: bool = False,
        avatar_rel_path: str = "",
        default_voice_id: str = "",
        categories: Iterable[str] = (),
        img_gen_enabled: bool = False,
        base_img_prompt: str = "",
        timeout: float | None = None,
    ) -> Character:
        """Create a character and return it (with its new ``id``).

        Limits, checked before anything is sent (ValidationError): name 3–20 characters,
        greeting 3–4096, title empty or 3–50, description ≤ 500, definition ≤ 32000;
        visibility ``PUBLIC``, ``UNLISTED`` or ``PRIVATE`` (any case). A refusal by the
        server raises ServerError. Not safe to retry blindly: a second call creates a twin.
        """
        fields = _checked(
            {
                "name": name,
                "greeting": greeting,
                "title": title,
                "description": description,
                "definition": definition,
                "visibility": visibility,
                "copyable": copyable,
                "avatar_rel_path": avatar_rel_path,
                "default_voice_id": default_voice_id,
                "categories": categories,
                "img_gen_enabled": img_gen_enabled,
                "base_img_prompt": base_img_prompt,
            }
        )
        body = {
            **fields,
            "identifier": f"id:{uuid.uuid4()}",
            "strip_img_prompt_from_msg": False,
            "voice_id": "",
        }
        request = proto.create(self._core.endpoints, body)
        return proto.parse_saved(await self._core.call(request, timeout=timeout), "create")

    async def update(
        self,
        character: Character | CharacterShort | str,
        *,
        name: str | None = None,
        greeting: str | None = None,
        title: str | None = None,
        description: str | None = None,
        definition: str | None = None,
        visibility: str | None = None,
        copyable: bool | None = None,
        avatar_rel_path: str | None = None,
        default_voice_id: str | None = None,
        categories: Iterable[str] | None = None,
        img_gen_enabled: bool | None = None,
        base_img_prompt: str | None = None,
        strip_img_prompt_from_msg: bool | None = None,
        timeout: float | None = None,
    ) -> Character:
        """Change some fields of one of your characters and return it as saved.

        Arguments left as None keep their value; limits as in :meth:`create`. The service
        wants the whole character, so unless ``character`` is a full :class:`Character`
        it is fetched first (:meth:`info`). Raises CharacterNotFound, or ServerError when
        the character is not yours.
        """
        changes = {
            key: value
            for key, value in {
                "name": name,
                "greeting": greeting,
                "title": title,
                "description": description,
                "definition": definition,
                "visibility": visibility,
                "copyable": copyable,
                "avatar_rel_path": avatar_rel_path,
                "default_voice_id": default_voice_id,
                "categories": categories,
                "img_gen_enabled": img_gen_enabled,
                "base_img_prompt": base_img_prompt,
                "strip_img_prompt_from_msg": strip_img_prompt_from_msg,
            }.items()
            if value is not None
        }
        character_id = _ref_id(character)
        if not changes:
            raise ValidationError("nothing to update: pass at least one field to change")
        fields = _checked(changes)
        return await self._save(character, character_id, fields, False, timeout)

    async def delete(
        self, character: Character | CharacterShort | str, *, timeout: float | None = None
    ) -> None:
        """Delete (archive) one of your characters. Raises CharacterNotFound, or ServerError
        when the character is not yours."""
        character_id = _ref_id(character)
        await self._save(character, character_id, {}, True, timeout)

    async def _save(
        self,
        character: Character | CharacterShort | str,
        character_id: str,
        changes: dict[str, Any],
        archived: bool,
        timeout: float | None,
    ) -> Character:
        if not isinstance(character, Character):
            character = await self.info(character_id, timeout=timeout)
        body = {**_editable(character), **changes}
        request = proto.update(self._core.endpoints, character_id, body, archived=archived)
        answer = await self._core.call(request, timeout=timeout, not_found=CharacterNotFound)
        return proto.parse_saved(answer, "update")

    # --- votes ----------------------------------------------------------------------------------

    async def vote(
        self,
        character: Character | CharacterShort | str,
        vote: bool | None,
        *,
        timeout: float | None = None,
    ) -> None:
        """Like (True), dislike (False) or un-vote (None) a character.

        Raises CharacterNotFound for an unknown character. Safe to repeat.
        """
        character_id = _ref_id(character)
        if vote is not None and not isinstance(vote, bool):
            raise ValidationError(f"vote must be True, False or None, got {vote!r}")
        request = proto.vote(self._core.endpoints, character_id, vote)
        body = await self._core.call(request, timeout=timeout, not_found=CharacterNotFound)
        check_refusal(body, "vote", not_found=CharacterNotFound, object_expected=True)

    async def report(
        self,
        character: Character | CharacterShort | str,
        category: str,
        comments: str = "",
        *,
        timeout: float | None = None,
    ) -> str:
        """Report a character to the moderators; return the report's id.

        ``category`` is one of ``ABUSE, VIOLENCE, FALSITY, HATE, NSFW, SEX_HARASS, MINOR,
        SELF_HARM, TERROR, ILLEGAL, DRUGS, PII, IMPERSONATE, SPAM`` (checked before sending).
        Raises CharacterNotFound for an unknown character.
        """
        character_id = _ref_id(character)
        if category not in proto.REPORT_CATEGORIES:
            choices = ", ".join(sorted(proto.REPORT_CATEGORIES))
            raise ValidationError(f"category must be one of {choices}; got {category!r}")
        if not isinstance(comments, str) or len(comments) > 1000:
            raise ValidationError("comments must be a str of at most 1000 characters")
        request = proto.report(self._core.endpoints, character_id, category, comments)
        body = await self._core.call(request, timeout=timeout, not_found=CharacterNotFound)
        return proto.parse_report_id(body)

    async def my_vote(
        self, character: Character | CharacterShort | str, *, timeout: float | None = None
    ) -> bool | None:
        """Your vote on a character: True (liked), False (disliked) or None."""
        character_id = _ref_id(character)
        request = proto.voted(self._core.endpoints, character_id)
        body = await self._core.call(request, timeout=timeout, not_found=CharacterNotFound)
        return proto.parse_vote(body)

    # --- helpers without I/O --------------------------------------------------------------------

    def avatar_url(self, character: Character | CharacterShort, *, size: int = 400) -> str | None:
        """The avatar URL on this client's CDN (the emulator's own under ``Endpoints.local``);
        None when the character has no avatar."""
        if not isinstance(character, (Character, CharacterShort)):
            raise ValidationError(f"character must be a Character, got {type(character).__name__}")
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValidationError(f"size must be a positive int, got {size!r}")
        return avatar_url_for(character.avatar_file_name, cdn=self._core.endpoints.cdn, size=size)
