from __future__ import annotations

import builtins
import uuid
from typing import Any

from .._core import ClientCore
from .._deadline import Deadline
from .._settings import patch_settings
from .._validate import check_id
from ..errors import PersonaNotFound, ValidationError
from ..models import Persona, Settings
from ..protocol import account as proto
from ..protocol.http import check_refusal

__all__ = ["AsyncPersonasAPI"]

NAME_LIMITS = (3, 20)
DEFINITION_MAX = 750
# PyCharacterAI's defaults, what a persona made without them says about itself (§4.5).
DEFAULT_DESCRIPTION = "This is my persona."
DEFAULT_GREETING = "Hello! This is my persona"


def _check_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"name must be a str, got {type(value).__name__}")
    low, high = NAME_LIMITS
    if not low <= len(value) <= high or not value.strip():
        raise ValidationError(f"name must have {low}-{high} characters, got {value!r}")
    return value


def _check_str(value: object, what: str, limit: int | None = None) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a str, got {type(value).__name__}")
    if limit is not None and len(value) > limit:
        raise ValidationError(f"{what} must have at most {limit} characters, got {len(value)}")
    return value


def _persona_id(value: object) -> str:
    """The id of a Persona or of an id string."""
    return check_id(value.id if isinstance(value, Persona) else value, "persona id")


class AsyncPersonasAPI:
    """Your personas (``client.personas``): who you are in a chat.

    A persona's :attr:`~caiclient.Persona.definition` tells characters about you. The
    default persona and per-character choices live in your settings.
    """

    def __init__(self, core: ClientCore) -> None:
        self._core = core

    async def list(self, *, timeout: float | None = None) -> builtins.list[Persona]:
        """All your personas. Safe to cancel."""
        body = await self._core.call(proto.personas(self._core.endpoints), timeout=timeout)
        return proto.parse_personas(body)

    async def _fetch(self, persona_id: str, deadline: Deadline) -> tuple[dict[str, Any], Persona]:
        request = proto.persona(self._core.endpoints, persona_id)
        body = await self._core.call(request, deadline=deadline, not_found=PersonaNotFound)
        return proto.parse_persona(body, "persona", not_found=PersonaNotFound)

    async def get(self, persona_id: str, *, timeout: float | None = None) -> Persona:
        """The persona with this id. Raises PersonaNotFound when it is missing or not yours.
        Safe to cancel."""
        check_id(persona_id, "persona_id")
        return (await self._fetch(persona_id, self._core.deadline(timeout)))[1]

    async def create(
        self,
        name: str,
        definition: str = "",
        *,
        greeting: str = DEFAULT_GREETING,
        description: str = DEFAULT_DESCRIPTION,
        timeout: float | None = None,
    ) -> Persona:
        """Create a private persona called ``name`` (3–20 characters) with ``definition``
        (at most 750 characters: what characters should know about you); return it.

        Raises ValidationError before sending, ServerError when the server refuses.
        Not idempotent: cancelling may still create it.
        """
        _check_name(name)
        _check_str(definition, "definition", DEFINITION_MAX)
        _check_str(greeting, "greeting")
        _check_str(description, "description")
        request = proto.create_persona(
            self._core.endpoints,
            name=name,
            definition=definition,
            greeting=greeting,
            description=description,
            identifier=f"id:{uuid.uuid4()}",
        )
        body = await self._core.call(request, timeout=timeout)
        return proto.parse_persona(body, "persona create", not_found=PersonaNotFound)[1]

    async def update(
        self,
        persona: Persona | str,
        *,
        name: str | None = None,
        definition: str | None = None,
        greeting: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Persona:
        """Change a persona (given as a Persona or its id); None keeps a field. Returns it.

        The persona is read fresh and written back whole, so fields this library does not
        model are kept. Raises PersonaNotFound, ValidationError (nothing sent), ServerError.
        """
        persona_id = _persona_id(persona)
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = changes["title"] = _check_name(name)
        if definition is not None:
            changes["definition"] = _check_str(definition, "definition", DEFINITION_MAX)
        if greeting is not None:
            changes["greeting"] = _check_str(greeting, "greeting")
        if description is not None:
            changes["description"] = _check_str(description, "description")
        if not changes:
            raise ValidationError(
                "nothing to update: pass name, definition, greeting or description"
            )
        deadline = self._core.deadline(timeout)
        raw, _ = await self._fetch(persona_id, deadline)
        request = proto.update_persona(self._core.endpoints, raw, changes)
        body = await self._core.call(request, deadline=deadline, not_found=PersonaNotFound)
        return proto.parse_persona(body, "persona update", not_found=PersonaNotFound)[1]

    async def delete(self, persona: Persona | str, *, timeout: float | None = None) -> None:
        """Delete (archive) a persona; settings that used it fall back to no persona.

        Raises PersonaNotFound when it is missing or not yours.
        """
        persona_id = _persona_id(persona)
        deadline = self._core.deadline(timeout)
        raw, _ = await self._fetch(persona_id, deadline)
        request = proto.update_persona(self._core.endpoints, raw, {}, archived=True)
        body = await self._core.call(request, deadline=deadline, not_found=PersonaNotFound)
        check_refusal(body, "persona delete", not_found=PersonaNotFound, object_expected=True)

    async def set_default(
        self, persona: Persona | str | None, *, timeout: float | None = None
    ) -> Settings:
        """Make a persona your default in every chat (None: no default). Returns the new
        settings. Raises PersonaNotFound when it is missing or not yours."""
        persona_id = None if persona is None else _persona_id(persona)
        deadline = self._core.deadline(timeout)
        if persona_id is not None:
            await self._fetch(persona_id, deadline)  # PersonaNotFound, whatever the server
        return await patch_settings(self._core, {"default_persona_id": persona_id}, deadline)

    async def set_for_character(
        self,
        character_id: str,
        persona: Persona | str | None,
        *,
        timeout: float | None = None,
    ) -> Settings:
        """Use a persona in chats with one character (None: back to the default). Returns
        the new settings. Raises PersonaNotFound when it is missing or not yours."""
        check_id(character_id, "character_id")
        persona_id = None if persona is None else _persona_id(persona)
        core = self._core
        deadline = core.deadline(timeout)
        if persona_id is not None:
            await self._fetch(persona_id, deadline)

        def change(current: Settings) -> dict[str, Any]:
            overrides = dict(current.persona_overrides)
            if persona_id is None:
                overrides.pop(character_id, None)
            else:
                overrides[character_id] = persona_id
            return {"persona_overrides": overrides}

        return await patch_settings(core, change, deadline)
