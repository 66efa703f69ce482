"""The rules of one chat-socket exchange, as state machines fed with parsed frames. No I/O.

Each request the client sends on the chat socket (create a chat, send a message,
regenerate, edit, pin, select) gets one exchange object. The I/O driver hands it every
frame routed to the request (:meth:`Exchange.handle`) and follows the :class:`Step` it
answers:

- ``SKIP``: nothing for us (our own echo, another turn, a frame after the end);
- ``PROGRESS``: the reply grew (a streaming caller takes a chunk with :meth:`Reply.take`);
- ``DONE``: the exchange is complete; :attr:`Exchange.result` holds what it produced;
- ``FAIL``: the server refused; :attr:`Exchange.error` is the typed error. The exchange is
  not over: the driver's policy decides (raise, or wait and send again).

What the rules are for is in docs/protocol.md §8.4–§8.7 (streaming semantics, per-command
sequences, what other clients rely on); the failure decisions (re-send, recover, wait) are
the pure policies of :mod:`caiclient.protocol.retry`.
"""

from __future__ import annotations

import enum
from typing import Generic, TypeVar

import msgspec

from ..errors import CaiError, CharacterNotFound, ChatNotFound
from ..models import Chat, Turn
from . import neo
from .stream import ReplyAccumulator, ReplyChunk

__all__ = [
    "DONE",
    "FAIL",
    "PROGRESS",
    "SKIP",
    "Acknowledged",
    "CreateChat",
    "Exchange",
    "Located",
    "Reply",
    "Step",
    "TurnAdded",
    "TurnChange",
    "frame_error",
    "locate_reply",
    "merged",
]

R = TypeVar("R")


class Step(enum.Enum):
    SKIP = "skip"
    PROGRESS = "progress"
    DONE = "done"
    FAIL = "fail"


# The members as module constants for the reply path, which reads them for every frame: on
# Python 3.11 each ``Step.X`` goes through the enum metaclass's ``__getattr__`` (4x slower).
SKIP, PROGRESS, DONE, FAIL = Step.SKIP, Step.PROGRESS, Step.DONE, Step.FAIL


def frame_error(event: neo.Event) -> CaiError | None:
    """The error an event stands for while any exchange waits, or None for other events."""
    if isinstance(event, (neo.ErrorFrame, neo.FilterFrame)):
        return neo.error_from_frame(event)
    if isinstance(event, neo.Malformed):
        return neo.error_from_malformed(event)
    return None


class Exchange(Generic[R]):
    """Base of every exchange: the outcome, and the refusal rule they share."""

    #: Whether the request makes the server generate text (and so can be aborted).
    generates = False

    def __init__(self) -> None:
        self.result: R | None = None
        self.error: CaiError | None = None
        self.done = False

    @property
    def started(self) -> bool:
        """Whether the answer has begun (until then a tighter first-frame deadline may apply)."""
        return True

    @property
    def recoverable(self) -> bool:
        """Whether what a drop cut off can be read back from the history (then the driver
        looks for it and hands it to :meth:`recovered`)."""
        return False

    def recovered(self, turn: Turn) -> Step:
        """End with ``turn``, read back from the history after a drop."""
        return self._finish(turn)  # type: ignore[arg-type]  # Turn exchanges override it

    def handle(self, event: neo.Event) -> Step:
        """Take one frame routed to this request; say what it meant."""
        if self.done:
            return SKIP  # Frames after the end change nothing.
        step = self._handle(event)  # The exchange's own frames first: the common case.
        if step is not SKIP:
            return step
        error = frame_error(event)
        return SKIP if error is None else self._fail(error)

    def _handle(self, event: neo.Event) -> Step:  # pragma: no cover - overridden
        raise NotImplementedError

    def _finish(self, result: R) -> Step:
        self.result = result
        self.done = True
        return DONE

    def _fail(self, error: CaiError) -> Step:
        self.error = error
        return FAIL


class CreateChat(Exchange[tuple[Chat, "Turn | None"]]):
    """``create_chat``: the chat, then (when asked for) the greeting turn, final in one frame."""

    def __init__(self, *, with_greeting: bool) -> None:
        super().__init__()
        self.with_greeting = with_greeting
        self.chat: Chat | None = None

    def _handle(self, event: neo.Event) -> Step:
        if isinstance(event, neo.ChatCreated):
            self.chat = event.chat
            return PROGRESS if self.with_greeting else self._finish((event.chat, None))
        chat = self.chat
        if (
            chat is not None
            and isinstance(event, (neo.AddTurn, neo.UpdateTurn))
            and event.turn.is_final
        ):
            return self._finish((chat, event.turn))
        return SKIP

    def _fail(self, error: CaiError) -> Step:
        # Before the chat exists, "not found" can only be about the character.
        if isinstance(error, ChatNotFound):
            error = CharacterNotFound(str(error))
        return super()._fail(error)


class Located(enum.Enum):
    """Where a history page shows a message whose reply was cut off by a drop."""

    NOT_RECEIVED = "not received"  # The message is not there: the server never got it.
    PENDING = "pending"  # It is there, its reply is not complete yet.
    REPLIED = "replied"  # It is there with its complete reply.


def locate_reply(turns: list[Turn], turn_id: str) -> tuple[Located, Turn | None]:
    """Find the user's turn ``turn_id`` in a history page (newest first) and the character's
    reply right after it (docs/reliability.md, in-flight recovery)."""
    for index, turn in enumerate(turns):
        if turn.turn_key.turn_id == turn_id:
            newer = turns[index - 1] if index > 0 else None
            if newer is not None and not newer.author.is_human and newer.is_final:
                return Located.REPLIED, newer
            return Located.PENDING, None
    return Located.NOT_RECEIVED, None


_TURN_EVENTS = (neo.AddTurn, neo.UpdateTurn)


class Reply(Exchange[Turn]):
    """A generation, in one of three forms:

    - ``own_turn_id``: ``create_and_generate_turn``, the reply to the message whose turn id
      we chose (its echo is skipped by that id, not by ``is_human``, which the service may
      omit);
    - ``base``: ``generate_turn_candidate``, a swipe of that turn: only its frames count, and
      the exchange locks onto the candidate it adds (the first one ``base`` did not have,
      else the primary: whether frames carry the older candidates is uncertain, §15.7); the
      result keeps the older candidates;
    - neither: a character's new turn in a group chat (``generate_turn``, §9): the first
      character turn routed to the request.

    Text the server shortens is delivered as a rewrite (:class:`ReplyChunk.rewritten`).
    """

    generates = True

    def __init__(self, *, own_turn_id: str | None = None, base: Turn | None = None) -> None:
        super().__init__()
        if own_turn_id is not None and base is not None:
            raise ValueError("a Reply takes at most one of own_turn_id or base")
        self.own_turn_id = own_turn_id
        self.base = base
        self.accumulator = ReplyAccumulator()
        self._known = {c.candidate_id for c in base.candidates} if base is not None else None

    @property
    def recoverable(self) -> bool:
        """Whether a reply cut off by a drop can be found in the history: for a message
        whose turn id we chose, and for a new character turn once its first frame told us
        its id; not for a regeneration, whose new candidate id is the server's."""
        if self.base is not None:
            return False
        return self.own_turn_id is not None or self.started

    @property
    def reply_turn_id(self) -> str | None:
        """The id of the reply's turn, once its first frame has arrived."""
        turn = self.accumulator.turn
        return turn.turn_id if turn is not None else None

    @property
    def started(self) -> bool:
        """Whether the reply's first frame has arrived."""
        return self.accumulator.turn is not None

    def handle(self, event: neo.Event) -> Step:
        # The turn frames in this one call: the loop every reply runs per frame.
        if self.done or not isinstance(event, _TURN_EVENTS):
            return super().handle(event)  # After the end, nothing; an error frame fails.
        turn = event.turn
        base = self.base
        if base is None:
            own = self.own_turn_id
            if turn.turn_key.turn_id == own:
                return SKIP  # The echo of our own message.
            if own is None and self._not_ours(turn):
                return SKIP
        elif turn.turn_key.turn_id != base.turn_id:
            return SKIP
        elif self.accumulator.candidate_id is None:
            self.accumulator = ReplyAccumulator(candidate_id=self._new_candidate(turn))
        accumulator = self.accumulator
        if not accumulator.update(turn):
            return SKIP
        return self._finish(self._complete()) if accumulator.final else PROGRESS

    def _handle(self, event: neo.Event) -> Step:
        return SKIP  # Turn frames are taken by handle; other frames mean nothing to a reply.

    def _not_ours(self, turn: Turn) -> bool:
        """A new character turn: a user's turn, or another turn than the one followed."""
        followed = self.reply_turn_id
        return turn.is_human if followed is None else turn.turn_id != followed

    def _new_candidate(self, turn: Turn) -> str | None:
        known = self._known or set()
        for candidate in turn.candidates:
            if candidate.candidate_id not in known:
                return candidate.candidate_id
        primary = turn.primary
        return primary.candidate_id if primary is not None else None

    def _complete(self) -> Turn:
        turn = self.accumulator.turn
        assert turn is not None  # final implies a frame was taken
        return turn if self.base is None else merged(turn, self.base)

    def take(self) -> ReplyChunk | None:
        """The new part of the reply since the last take (a streaming caller's chunk); the
        final chunk's ``turn`` is :attr:`result`."""
        chunk = self.accumulator.take()
        if chunk is not None and chunk.final and self.base is not None:
            chunk = ReplyChunk(
                delta=chunk.delta,
                text=chunk.text,
                final=True,
                turn=self._complete(),
                rewritten=chunk.rewritten,
            )
        return chunk

    def recovered(self, turn: Turn) -> Step:
        """End with ``turn``, the complete reply read back from the history after a drop."""
        self.accumulator.adopt(turn)
        return self._finish(self._complete())


class TurnAdded(Exchange[Turn]):
    """``create_turn`` in a group chat (§9): done when the turn with our id is pushed. Its
    id is ours, so after a drop the history says whether it arrived."""

    def __init__(self, turn_id: str) -> None:
        super().__init__()
        self.turn_id = turn_id

    @property
    def recoverable(self) -> bool:
        return True

    def _handle(self, event: neo.Event) -> Step:
        if isinstance(event, (neo.AddTurn, neo.UpdateTurn)) and event.turn.turn_id == self.turn_id:
            return self._finish(event.turn)
        return SKIP


class TurnChange(Exchange[Turn]):
    """``edit_turn_candidate`` and ``set_turn_pin``: the one ``update_turn`` of that turn,
    merged with the candidates the caller's turn already had."""

    def __init__(self, turn: Turn) -> None:
        super().__init__()
        self.turn = turn

    def _handle(self, event: neo.Event) -> Step:
        if isinstance(event, neo.UpdateTurn) and event.turn.turn_id == self.turn.turn_id:
            return self._finish(merged(event.turn, self.turn))
        return SKIP


class Acknowledged(Exchange[bool]):
    """A request answered by one frame of a kind: ``ok`` for ``update_primary_candidate``,
    ``remove_turns_response`` for ``remove_turns``."""

    def __init__(self, answer: type[neo.Event] = neo.Ok) -> None:
        super().__init__()
        self.answer = answer

    def _handle(self, event: neo.Event) -> Step:
        return self._finish(True) if isinstance(event, self.answer) else SKIP


def merged(new: Turn, known: Turn) -> Turn:
    """``new`` (a frame's turn) plus the candidates of ``known`` it does not carry."""
    have = {c.candidate_id for c in new.candidates}
    extra = [c for c in known.candidates if c.candidate_id not in have]
    if not extra:
        return new
    return msgspec.structs.replace(new, candidates=[*new.candidates, *extra])
