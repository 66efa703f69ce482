"""Legacy Chat V1 models: histories, messages and streamed reply chunks."""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = ["V1Chunk", "V1History", "V1Message"]


class V1Message(msgspec.Struct, frozen=True, kw_only=True):
    """One message of a Chat V1 history (docs/protocol.md §10.1).

    ``id`` is the server's integer id as a digit string. ``src``/``tgt`` are the internal
    usernames of sender and receiver; ``src_name`` the sender's display name.
    ``reply_to`` is the uuid of the user message a reply answers; only replies returned by
    ``send``/``stream``/``regenerate`` know it (listings do not carry it).
    """

    id: str
    uuid: str
    text: str = ""
    src: str = ""
    tgt: str = ""
    src_name: str = ""
    is_human: bool = False
    is_alternative: bool = False
    deleted: bool = False
    image_rel_path: str = ""
    reply_to: str | None = None


class V1History(msgspec.Struct, frozen=True, kw_only=True):
    """A Chat V1 conversation ("history") with one character.

    ``tgt`` is the character's internal participant username that ``/chat/streaming/``
    needs; ``messages`` holds what the server sent along (the greeting after ``create``,
    the listed messages from ``histories``; empty after ``continue_``).
    """

    external_id: str
    character_id: str = ""
    tgt: str = ""
    title: str = ""
    character_name: str = ""
    created: datetime | None = None
    last_interaction: datetime | None = None
    messages: list[V1Message] = msgspec.field(default_factory=list)

    @property
    def history_id(self) -> str:
        """The history's ``external_id`` (``history_external_id`` on the wire)."""
        return self.external_id


class V1Chunk(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a streamed Chat V1 reply.

    ``delta`` is the text added since the previous chunk, ``text`` the reply so far,
    ``final`` whether it is complete, ``message`` the reply as a message (its text is
    ``text``). If the server rewrites text it already sent, ``delta`` is empty and
    ``rewritten`` is True.
    """

    delta: str
    text: str
    final: bool
    message: V1Message
    rewritten: bool = False
