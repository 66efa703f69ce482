"""Legacy Chat V1 (plus/beta ``/chat/history/…``, ``/chat/streaming/``). No I/O.

Request builders, parsers of the history and message bodies, and the streaming side:
:class:`StreamDecoder` splits the newline-delimited JSON body into lines as bytes arrive,
:class:`ReplyStream` turns the cumulative snapshots into deltas and in-band errors into
exceptions (docs/protocol.md §10.2, §2.4.3).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec

from ..endpoints import Endpoints
from ..errors import (
    CaiError,
    CharacterNotFound,
    Filtered,
    HistoryNotFound,
    LoginRequired,
    ProtocolError,
    ServerError,
)
from ..models import V1Chunk, V1History, V1Message
from .http import Request, check_refusal, decode

__all__ = [
    "HISTORIES_NUMBER",
    "MAX_LINE_BYTES",
    "ReplyStream",
    "StreamDecoder",
    "StreamLine",
    "continue_history",
    "create_history",
    "delete_messages",
    "histories",
    "messages_page",
    "parse_delete",
    "parse_histories",
    "parse_history",
    "parse_messages_page",
    "plain_text_error",
    "streaming",
]

HISTORIES_NUMBER = 50
"""How many histories ``histories`` asks for (docs/protocol.md §10.1: clients send 50)."""

MAX_LINE_BYTES = 8 << 20
"""A streamed line longer than this is a broken stream, not a reply."""


# --- requests ----------------------------------------------------------------------------


def create_history(endpoints: Endpoints, character_id: str) -> Request:
    body = {"character_external_id": character_id, "history_external_id": None}
    return Request("POST", f"{endpoints.plus}/chat/history/create/", json=body, idempotent=False)


def continue_history(
    endpoints: Endpoints, character_id: str, history_id: str | None = None
) -> Request:
    body = {"character_external_id": character_id, "history_external_id": history_id}
    # Only reads, so it is safe to resend.
    return Request("POST", f"{endpoints.plus}/chat/history/continue/", json=body, idempotent=True)


def histories(endpoints: Endpoints, character_id: str, number: int = HISTORIES_NUMBER) -> Request:
    # PC's path; K0/K1 used ``histories_v2/`` with the same body (docs/protocol.md §10.1).
    body = {"external_id": character_id, "number": number}
    url = f"{endpoints.plus}/chat/character/histories/"
    return Request("POST", url, json=body, idempotent=True)


def messages_page(endpoints: Endpoints, history_id: str, page_num: int | None = None) -> Request:
    params = {"history_external_id": history_id}
    if page_num is not None:
        params["page_num"] = str(page_num)
    return Request("GET", f"{endpoints.plus}/chat/history/msgs/user/", params=params)


def delete_messages(endpoints: Endpoints, history_id: str, uuids: Iterable[str]) -> Request:
    body = {"history_id": history_id, "uuids_to_delete": list(uuids), "regenerating": False}
    return Request(
        "POST", f"{endpoints.plus}/chat/history/msgs/delete/", json=body, idempotent=True
    )


def streaming(
    endpoints: Endpoints,
    history: V1History,
    *,
    text: str | None = None,
    parent_msg_uuid: str | None = None,
    primary_msg_uuid: str | None = None,
) -> Request:
    """``POST /chat/streaming/``: a new message (``text``) or, with ``parent_msg_uuid`` and
    no text, another reply to that user message (docs/protocol.md §10.2)."""
    body: dict[str, Any] = {
        "history_external_id": history.external_id,
        "character_external_id": history.character_id or None,
        "tgt": history.tgt,
        "ranking_method": "random",
        "staging": False,
        "model_server_address": None,
        "override_prefix": None,
        "override_rank": None,
        "rank_candidates": None,
        "filter_candidates": None,
        "prefix_limit": None,
        "prefix_token_limit": None,
        "livetune_coeff": None,
        "stream_params": None,
        "enable_tti": None,
        "initial_timeout": None,
        "insert_beginning": None,
        "translate_candidates": None,
        "stream_every_n_steps": 16,
        "chunks_to_pad": 8,
        "is_proactive": False,
        "image_rel_path": "",
        "image_description": "",
        "image_description_type": "",
        "image_origin_type": "",
        "voice_enabled": False,
        "parent_msg_uuid": parent_msg_uuid,
        "primary_msg_uuid": primary_msg_uuid,
        "seen_msg_uuids": [],
        "retry_last_user_msg_uuid": None,
        "num_candidates": 1,
        "give_room_introductions": True,
        "mock_response": False,
    }
    if text is not None:
        body["text"] = text
    return Request("POST", f"{endpoints.plus}/chat/streaming/", json=body, idempotent=False)


# --- wire shapes -------------------------------------------------------------------------


class _WireParticipantName(msgspec.Struct):
    name: str = ""


class _WireSrcChar(msgspec.Struct):
    participant: _WireParticipantName | None = None
    avatar_file_name: str | None = None


class _WireMessage(msgspec.Struct, kw_only=True, rename={"src_name": "src__name"}):
    id: int | str
    uuid: str
    text: str = ""
    src: str | None = None
    tgt: str | None = None
    src_name: str | None = None
    src__is_human: bool | None = None
    src__user__username: str | None = None
    is_alternative: bool | None = False
    deleted: bool | None = None
    image_rel_path: str | None = None


class _WireUser(msgspec.Struct):
    username: str = ""


class _WireParticipant(msgspec.Struct):
    user: _WireUser | None = None
    is_human: bool | None = None
    name: str | None = None


class _WireHistory(msgspec.Struct, kw_only=True):
    external_id: str
    title: str | None = None
    participants: list[_WireParticipant] | None = None
    created: datetime | None = None
    last_interaction: datetime | None = None
    messages: list[_WireMessage] | None = None
    msgs: list[_WireMessage] | None = None


class _HistoriesBody(msgspec.Struct):
    histories: list[_WireHistory] | None = None


class _MessagesBody(msgspec.Struct):
    messages: list[_WireMessage] | None = None
    next_page: int | None = None
    has_more: bool = False


def _message(wire: _WireMessage) -> V1Message:
    # The one place where integer message ids become strings.
    is_human = bool(wire.src__is_human)
    return V1Message(
        id=str(wire.id),
        uuid=wire.uuid,
        text=wire.text,
        src=wire.src or wire.src__user__username or "",
        tgt=wire.tgt or "",
        src_name=wire.src_name or "",
        is_human=is_human,
        is_alternative=bool(wire.is_alternative),
        deleted=bool(wire.deleted),
        image_rel_path=wire.image_rel_path or "",
    )


_NO_HISTORY = ("there is no history", "no such history", "history not found")


def plain_text_error(body: bytes) -> CaiError | None:
    """The error a plain-text (non-JSON) body stands for (docs/protocol.md §2.4.4), else None.

    The live server answers some V1 calls with text, with HTTP 404 or even 200.
    """
    head = body.lstrip()[:1]
    if not head or head in (b"{", b"["):
        return None
    text = body[:300].decode("utf-8", "replace").strip()
    lowered = text.lower()
    if lowered.startswith("no character found"):
        return CharacterNotFound(text)
    if any(marker in lowered for marker in _NO_HISTORY):
        return HistoryNotFound(text)
    return ProtocolError(f"unexpected non-JSON response: {text[:100]!r}")


def _check(body: bytes, what: str) -> None:
    """Raise what a 2xx body reports instead of data: plain text or an in-band refusal."""
    error = plain_text_error(body)
    if error is not None:
        raise error
    check_refusal(body, what)


def _history(wire: _WireHistory, character_id: str) -> V1History:
    tgt = character_name = ""
    for participant in wire.participants or []:
        if not participant.is_human and participant.user is not None:
            tgt, character_name = participant.user.username, participant.name or ""
            break
    messages = [_message(m) for m in (wire.messages or wire.msgs or [])]
    if not tgt:
        # histories() carries no participants: the character's messages name it.
        bot = next((m for m in messages if not m.is_human and m.src), None)
        tgt = bot.src if bot else next((m.tgt for m in messages if m.is_human and m.tgt), "")
        character_name = bot.src_name if bot else ""
    return V1History(
        external_id=wire.external_id,
        character_id=character_id,
        tgt=tgt,
        title=wire.title or "",
        character_name=character_name,
        created=wire.created,
        last_interaction=wire.last_interaction,
        messages=messages,
    )


def parse_history(body: bytes, character_id: str) -> V1History:
    """``/chat/history/create/`` or ``/continue/`` → :class:`V1History` (``tgt`` from the
    non-human participant)."""
    _check(body, "/chat/history/")
    return _history(decode(body, _WireHistory, "/chat/history/"), character_id)


def parse_histories(body: bytes, character_id: str) -> list[V1History]:
    """``/chat/character/histories/`` → histories as the server ordered them."""
    _check(body, "/chat/character/histories/")
    wire = decode(body, _HistoriesBody, "/chat/character/histories/")
    return [_history(h, character_id) for h in wire.histories or []]


def parse_messages_page(body: bytes) -> tuple[list[V1Message], int | None, bool]:
    """One page of ``/chat/history/msgs/user/``: messages, ``next_page``, ``has_more``."""
    _check(body, "/chat/history/msgs/user/")
    page = decode(body, _MessagesBody, "/chat/history/msgs/user/")
    return [_message(m) for m in page.messages or []], page.next_page, page.has_more


def parse_delete(body: bytes) -> None:
    """``/chat/history/msgs/delete/`` answers ``{"status": "OK"}``."""
    _check(body, "/chat/history/msgs/delete/")


# --- streaming ---------------------------------------------------------------------------


class _Reply(msgspec.Struct):
    text: str = ""
    uuid: str = ""
    id: int | str | None = None
    image_rel_path: str | None = None


class StreamLine(msgspec.Struct, kw_only=True):
    """One line of a ``/chat/streaming/`` body: a reply snapshot or an in-band error."""

    replies: list[_Reply] | None = None
    src_char: _WireSrcChar | None = None
    is_final_chunk: bool | None = False
    last_user_msg_id: int | str | None = None
    last_user_msg_uuid: str | None = None
    abort: bool | None = False
    force_login: bool | None = False
    error: Any = None
    status: Any = None


_LINE_DECODER = msgspec.json.Decoder(StreamLine)


class StreamDecoder:
    """Newline-delimited JSON in, parsed lines out, whatever the chunking of the bytes.

    Lines are split on the byte ``\\n``, which never occurs inside a multi-byte UTF-8
    sequence, so a character cut between two chunks is simply completed by the next one.
    Blank lines are skipped; a final line without a newline is returned by :meth:`close`.
    """

    __slots__ = ("_buffer", "_scanned")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scanned = 0  # Bytes of the buffer already known to hold no newline.

    def feed(self, data: bytes) -> list[StreamLine]:
        """Take the next bytes; return the lines they complete (maybe none)."""
        buffer = self._buffer
        buffer += data
        lines: list[StreamLine] = []
        start = 0
        while True:
            end = buffer.find(b"\n", max(start, self._scanned))
            if end < 0:
                break
            line = self._parse(bytes(buffer[start:end]))
            if line is not None:
                lines.append(line)
            start = end + 1
        del buffer[:start]
        self._scanned = len(buffer)
        if len(buffer) > MAX_LINE_BYTES:
            raise ProtocolError(f"a streamed line exceeds {MAX_LINE_BYTES} bytes")
        return lines

    def close(self) -> list[StreamLine]:
        """The body has ended: return its last line if it had no trailing newline."""
        rest, self._buffer, self._scanned = bytes(self._buffer), bytearray(), 0
        line = self._parse(rest)
        return [] if line is None else [line]

    @staticmethod
    def _parse(raw: bytes) -> StreamLine | None:
        if not raw.strip():
            return None
        try:
            return _LINE_DECODER.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ProtocolError(f"unexpected /chat/streaming/ line: {exc}") from None


class ReplyStream:
    """Follow one reply through its cumulative snapshots (``replies[0]``).

    :meth:`feed` returns the chunk to deliver (None if nothing is new) and raises the
    in-band errors: ``force_login`` → :class:`LoginRequired`, ``abort`` (the output filter
    found no eligible candidate) → :class:`Filtered`, ``error``/``status`` → ServerError.
    ``src``/``is_alternative`` describe the reply for the :class:`V1Message` built.
    """

    __slots__ = ("_is_alternative", "_src", "_text", "final", "last")

    def __init__(self, *, src: str = "", is_alternative: bool = False) -> None:
        self._src = src
        self._is_alternative = is_alternative
        self._text = ""
        self.final = False
        self.last: V1Chunk | None = None

    def feed(self, line: StreamLine) -> V1Chunk | None:
        if self.final:
            return None
        _raise_in_band(line)
        if not line.replies:
            return None
        reply = line.replies[0]
        old, new = self._text, reply.text
        final = bool(line.is_final_chunk)
        if new.startswith(old) and len(new) == len(old) and not final:
            return None
        self._text, self.final = new, final
        rewritten = not new.startswith(old)
        participant = line.src_char.participant if line.src_char else None
        message = V1Message(
            id="" if reply.id is None else str(reply.id),
            uuid=reply.uuid,
            text=new,
            src=self._src,
            src_name=participant.name if participant else "",
            is_alternative=self._is_alternative,
            image_rel_path=reply.image_rel_path or "",
            reply_to=line.last_user_msg_uuid,
        )
        delta = "" if rewritten else new[len(old) :]
        self.last = V1Chunk(
            delta=delta, text=new, final=final, message=message, rewritten=rewritten
        )
        return self.last

    def end(self) -> V1Chunk | None:
        """The body ended. A stream whose last snapshot lacked ``is_final_chunk`` is taken
        as complete (its last snapshot is the reply); returns that final chunk, or None when
        the final chunk was already delivered. No snapshot at all is a ProtocolError."""
        if self.final:
            return None
        if self.last is None:
            raise ProtocolError("the /chat/streaming/ response held no reply")
        self.final = True
        self.last = msgspec.structs.replace(self.last, delta="", final=True, rewritten=False)
        return self.last


def _raise_in_band(line: StreamLine) -> None:
    if line.force_login:
        raise LoginRequired("this guest account must log in to send more messages")
    if line.abort:
        comment = line.error if isinstance(line.error, str) and line.error else "aborted"
        raise Filtered(comment)
    if line.error is not None:
        text = str(line.error)
        raise ServerError(f"/chat/streaming/ failed: {text}", status=200, body=text)
    if isinstance(line.status, str) and line.status.lower().startswith("error"):
        raise ServerError(f"/chat/streaming/ failed: {line.status}", status=200, body=line.status)
