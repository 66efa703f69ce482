from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from .._core import ClientCore
from .._validate import check_id, check_text, check_timeout
from ..errors import CharacterNotFound, HistoryNotFound, NotFound, ProtocolError, ValidationError
from ..models import V1Chunk, V1History, V1Message
from ..protocol import http
from ..protocol import v1 as v1_proto

__all__ = ["AsyncV1API"]


def _check_history(value: object) -> V1History:
    if not isinstance(value, V1History):
        hint = (
            " (get one from client.v1.create/continue_/histories)" if isinstance(value, str) else ""
        )
        raise ValidationError(f"history must be a V1History, got {type(value).__name__}{hint}")
    check_id(value.external_id, "history.external_id")
    if not value.tgt:  # It is then looked up by character and history id.
        check_id(value.character_id, "history.character_id")
    return value


def _history_id(value: object) -> str:
    if isinstance(value, V1History):
        return value.external_id
    return check_id(value, "history")


def _message_uuid(value: object, what: str = "message") -> str:
    if isinstance(value, V1Message):
        return check_id(value.uuid, f"{what}.uuid")
    return check_id(value, what)


class AsyncV1API:
    """Legacy Chat V1 over HTTP (``client.v1``): histories, messages, streamed replies.

    Chat V1 is the pre-2024 chat system (docs/protocol.md §10); the live service retired the old
    beta site, so these calls mainly serve old accounts and the emulator.
    """

    def __init__(self, core: ClientCore) -> None:
        self._core = core

    async def _call(
        self, request: http.Request, timeout: float | None, not_found: type[NotFound]
    ) -> bytes:
        try:
            return await self._core.call(request, timeout=timeout, not_found=not_found)
        except NotFound as exc:
            # A 404 is plain text; its wording says which object was missing (§2.4.4).
            error = v1_proto.plain_text_error(str(exc).encode())
            if isinstance(error, NotFound) and type(error) is not type(exc):
                raise error from None
            raise

    async def histories(
        self, character_id: str, *, timeout: float | None = None
    ) -> list[V1History]:
        """Your Chat V1 histories with a character, most recent first (up to 50).

        Each history carries its messages. Raises CharacterNotFound for an unknown
        character, ValidationError for a malformed id.
        """
        check_id(character_id, "character_id")
        request = v1_proto.histories(self._core.endpoints, character_id)
        body = await self._call(request, timeout, CharacterNotFound)
        return v1_proto.parse_histories(body, character_id)

    async def create(self, character_id: str, *, timeout: float | None = None) -> V1History:
        """Start a new Chat V1 history with a character; return it with the greeting.

        Raises CharacterNotFound for an unknown character. Not safe to retry blindly: a
        second call creates a second history.
        """
        check_id(character_id, "character_id")
        request = v1_proto.create_history(self._core.endpoints, character_id)
        body = await self._call(request, timeout, CharacterNotFound)
        return v1_proto.parse_history(body, character_id)

    async def continue_(
        self, character_id: str, history_id: str | None = None, *, timeout: float | None = None
    ) -> V1History:
        """Your latest history with a character (or the one with ``history_id``).

        Its ``messages`` are empty; use :meth:`messages`. Raises HistoryNotFound when there
        is none (or it is not yours), CharacterNotFound for an unknown character.
        """
        check_id(character_id, "character_id")
        if history_id is not None:
            check_id(history_id, "history_id")
        request = v1_proto.continue_history(self._core.endpoints, character_id, history_id)
        body = await self._call(request, timeout, HistoryNotFound)
        return v1_proto.parse_history(body, character_id)

    async def messages(
        self, history: V1History | str, *, timeout: float | None = None
    ) -> list[V1Message]:
        """Every message of a history, oldest first (all pages are fetched; ``timeout``
        applies to each page). Alternatives (regenerated replies) are included, marked
        ``is_alternative``. Raises HistoryNotFound."""
        history_id = _history_id(history)
        pages: list[list[V1Message]] = []
        page_num: int | None = None
        seen: set[int] = set()
        while True:
            request = v1_proto.messages_page(self._core.endpoints, history_id, page_num)
            body = await self._call(request, timeout, HistoryNotFound)
            page, next_page, has_more = v1_proto.parse_messages_page(body)
            pages.append(page)
            if not page or not has_more or next_page is None or next_page in seen:
                break
            seen.add(next_page)
            page_num = next_page
        # Page 1 holds the newest messages; each page is oldest first within itself.
        return [message for page in reversed(pages) for message in page]

    async def send(
        self,
        history: V1History,
        text: str,
        *,
        primary: V1Message | str | None = None,
        timeout: float | None = None,
    ) -> V1Message:
        """Send ``text`` and return the character's complete reply.

        ``primary`` picks which alternative of the last reply the conversation goes on
        from. Raises HistoryNotFound, LoginRequired (a guest over its message limit),
        Filtered (the output filter discarded the reply; nothing of it was kept), Timeout
        (``timeout`` bounds the whole reply).
        """
        _check_history(history)
        check_text(text)
        primary_uuid = None if primary is None else _message_uuid(primary, "primary")
        return await self._last(
            self._generate(history, timeout, text=text, primary_msg_uuid=primary_uuid)
        )

    def stream(
        self,
        history: V1History,
        text: str,
        *,
        primary: V1Message | str | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[V1Chunk]:
        """Send ``text`` and iterate over the reply as it arrives.

        Each :class:`V1Chunk` has ``delta``, ``text``, ``final`` and ``message``; the
        deltas concatenate to the final text. Arguments are checked at once. If the output
        filter aborts the reply, the chunks already yielded are followed by Filtered. To
        stop early, use ``contextlib.aclosing(client.v1.stream(...))``.
        """
        _check_history(history)
        check_text(text)
        check_timeout(timeout)
        primary_uuid = None if primary is None else _message_uuid(primary, "primary")
        return self._generate(history, timeout, text=text, primary_msg_uuid=primary_uuid)

    async def regenerate(
        self, history: V1History, message: V1Message | str, *, timeout: float | None = None
    ) -> V1Message:
        """Generate another reply (an alternative, ``is_alternative``) and return it.

        ``message`` is the user message whose reply to redo, or the reply itself (its user
        message is then found, from ``reply_to`` or by reading the history); a uuid string
        works too. Raises HistoryNotFound, LoginRequired, Filtered, Timeout.
        """
        _check_history(history)
        uuid = _message_uuid(message)
        parent = await self._user_message_of(history, message, uuid, timeout)
        return await self._last(self._generate(history, timeout, parent_msg_uuid=parent))

    async def delete(
        self,
        history: V1History | str,
        messages: Iterable[V1Message | str],
        *,
        timeout: float | None = None,
    ) -> None:
        """Delete messages (given as messages or uuids) from a history.

        Unknown uuids are ignored by the server. Raises HistoryNotFound.
        """
        history_id = _history_id(history)
        if isinstance(messages, (str, V1Message)):
            messages = [messages]
        uuids = [_message_uuid(m, "messages[]") for m in messages]
        if not uuids:
            raise ValidationError("messages is empty; nothing to delete")
        request = v1_proto.delete_messages(self._core.endpoints, history_id, uuids)
        v1_proto.parse_delete(await self._call(request, timeout, HistoryNotFound))

    # ---- internals ----

    async def _resolved(self, history: V1History, timeout: float | None) -> V1History:
        """``history`` with its ``tgt``; a history listed without messages lacks it."""
        if history.tgt:
            return history
        return await self.continue_(history.character_id, history.external_id, timeout=timeout)

    async def _user_message_of(
        self, history: V1History, message: V1Message | str, uuid: str, timeout: float | None
    ) -> str:
        if isinstance(message, V1Message):
            if message.is_human:
                return uuid
            if message.reply_to:
                return message.reply_to
        listed = await self.messages(history, timeout=timeout)
        last_human: str | None = None
        for item in listed:
            if item.is_human:
                last_human = item.uuid
            if item.uuid == uuid:
                if last_human is None:
                    raise ValidationError(f"message {uuid} answers no user message")
                return last_human
        raise ValidationError(f"message {uuid} is not in history {history.external_id}")

    async def _generate(
        self,
        history: V1History,
        timeout: float | None,
        *,
        text: str | None = None,
        parent_msg_uuid: str | None = None,
        primary_msg_uuid: str | None = None,
    ) -> AsyncIterator[V1Chunk]:
        core = self._core
        deadline = core.deadline(timeout)
        history = await self._resolved(history, deadline.left("reading the history"))
        request = v1_proto.streaming(
            core.endpoints,
            history,
            text=text,
            parent_msg_uuid=parent_msg_uuid,
            primary_msg_uuid=primary_msg_uuid,
        )
        decoder = v1_proto.StreamDecoder()
        reply = v1_proto.ReplyStream(src=history.tgt, is_alternative=parent_msg_uuid is not None)
        body = core.stream(request, deadline=deadline, not_found=HistoryNotFound)
        try:
            async for data in body:
                for line in decoder.feed(data):
                    chunk = reply.feed(line)
                    if chunk is not None:
                        yield chunk
            for line in decoder.close():
                chunk = reply.feed(line)
                if chunk is not None:
                    yield chunk
        finally:
            await body.aclose()
        last = reply.end()
        if last is not None:
            yield last

    @staticmethod
    async def _last(chunks: AsyncIterator[V1Chunk]) -> V1Message:
        last: V1Chunk | None = None
        async for chunk in chunks:
            last = chunk
        if last is None:  # pragma: no cover - _generate ends with a final chunk or raises
            raise ProtocolError("the reply ended without a final chunk")
        return last.message
