"""One generating answer of the bridge: a send or a swipe, with its ``n`` choices.

The engine (engine.py) decides what to do; a :class:`Generation` does it through the
client's ``chats.stream`` / ``chats.stream_regenerate`` and yields the answer as batches of
events: everything that arrived from c.ai while the HTTP layer was busy goes out as one
batch (one write to the client; the client's stream coalesces those frames), and the last
delta travels with its choice's finish.

A client that goes away is handled here (docs/bridge.md, "Disconnects"):

- streaming: the generation is stopped at once (leaving the client's stream sends
  ``abort_generation``); if a frame had said which turn it is, the candidate c.ai kept is
  then read back, so the mirror holds its text and what the client was shown (else the
  chat's history is read on the next request); it is never replayed;
- not streaming: the client saw nothing, so the reply is read to its end and kept for the
  client's retry (openai-python retries a request that timed out).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Iterable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

import msgspec

from ..errors import CaiError, ProtocolError
from ..models import Turn
from ..protocol.stream import ReplyChunk
from . import reconcile as rc
from .wire import ChatRequest, Truncator

if TYPE_CHECKING:
    from .engine import Engine, _Job

__all__ = [
    "Delta",
    "Done",
    "Event",
    "Finish",
    "Generation",
    "Sink",
    "keys_of",
    "piece_of",
    "settle",
    "with_candidate",
]

T = TypeVar("T")
log = logging.getLogger("caiclient.bridge")
ops = logging.getLogger("caiclient.bridge.ops")

# How long a stopped generation may take to appear in the chat's history.
SETTLE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Delta:
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class Finish:
    index: int
    reason: str
    text: str


@dataclass(frozen=True, slots=True)
class Done:
    """The answer is complete. Resume the iterator once more after delivering it."""


Event = Delta | Finish | Done


class Sink(Protocol):
    """Where an answer's events go (the HTTP layer's response)."""

    async def send(self, batch: list[Event]) -> None:
        """Deliver a batch of events that are ready together (one write to the client).
        Returns once a batch ending with Done was delivered; raises ConnectionError if
        the client has gone."""


def keys_of(text: str) -> tuple[str, ...]:
    return (rc.digest(rc.normalise(text)),)


@dataclass
class _Outcome:
    """What a generation produced so far."""

    generated: list[str] = field(default_factory=list)
    aborted: bool = False
    settled: bool = True  # The mirror is known to match the chat.


class Generation:
    """Send ``text`` (``rc.Generate``) or regenerate the turn at ``job.anchor``
    (``rc.Regenerate``), ``req.n`` times, the first being the send or swipe and the others
    swipes of it."""

    def __init__(
        self,
        engine: Engine,
        req: ChatRequest,
        job: _Job,
        action: rc.Generate | rc.Regenerate,
        text: str,
    ) -> None:
        self.engine = engine
        self.req = req
        self.job = job
        self.action = action
        self.text = text
        # A send adds the user's turn, then the reply.
        self.reply_at = len(job.turns) + 1 if isinstance(action, rc.Generate) else job.anchor
        self.outcome = _Outcome()

    @property
    def turn_id(self) -> str | None:
        turns = self.job.turns
        return turns[self.reply_at].turn_id if self.reply_at < len(turns) else None

    def choices(self, sink: Sink) -> Awaitable[None]:
        """Every choice, one after another, as batches of events (no Done)."""
        return self._choice(0, sink) if self.req.n == 1 else self._choices(sink)

    async def _choices(self, sink: Sink) -> None:
        for index in range(self.req.n):
            await self._choice(index, sink)
        if self.req.n > 1:
            await self.engine._select(
                self.job, self.job.turns[self.reply_at], self.outcome.generated[0]
            )

    def _open(self, index: int, *, coalesce: bool = False) -> AsyncIterator[ReplyChunk]:
        client, job, timeout = self.engine.client, self.job, self.engine.config.timeout
        if index == 0 and isinstance(self.action, rc.Generate):
            ops.info("stream chat=%s", job.record.chat_id)
            return client.chats.stream(job.chat, self.text, timeout=timeout, coalesce=coalesce)
        mturn = job.turns[self.reply_at]
        ops.info("regenerate chat=%s turn=%s", job.record.chat_id, mturn.turn_id)
        return client.chats.stream_regenerate(job.handle(mturn), timeout=timeout, coalesce=coalesce)

    async def _choice(self, index: int, sink: Sink) -> None:
        """Stream one choice. Each batch holds one Delta of all the text that arrived
        together; the last one also holds the Finish. A client that goes away (the
        request cancelled, or the sink's ConnectionError) interrupts it: a streaming one
        stops the generation at once, a non-streaming one has it read to its end."""
        cut = Truncator(self.req.stop, self.req.max_chars)
        run = _Run(self, index, cut, time.monotonic())
        if not self.req.stream:
            await self._buffered(run, sink)
            return
        # Read in this task: the client's stream coalesces the frames that came together.
        stream = cast(AsyncGenerator[ReplyChunk, None], self._open(index, coalesce=True))
        try:
            async with aclosing(stream):  # (Leaving it early sends abort_generation.)
                async for chunk in stream:
                    batch = run.batch([chunk])
                    if batch:
                        await sink.send(batch)
        except (asyncio.CancelledError, ConnectionError):
            if run.final is None:  # (Otherwise it is complete and recorded.)
                await settle(self._stopped(run))
            raise
        if run.final is None:
            raise ProtocolError("the reply ended without a final frame")

    async def _buffered(self, run: _Run, sink: Sink) -> None:
        """A non-streaming choice: read by a task of its own, so that a client that goes
        away does not cut the read off (its retry gets the reply)."""
        upstream = _Upstream(self._open(run.index))
        try:
            while (chunks := await upstream.next()) is not None:
                batch = run.batch(chunks)
                if batch:
                    await sink.send(batch)
        except (asyncio.CancelledError, ConnectionError):
            if run.final is None:
                await settle(self._finish_unseen(run, upstream))
            raise
        finally:
            upstream.close()
        if run.final is None:
            raise ProtocolError("the reply ended without a final frame")

    def _finished(self, index: int, final: ReplyChunk, cut: Truncator) -> Finish:
        candidate = final.turn.primary
        assert candidate is not None
        self._record(index, final.turn, cut.shown)
        reason = "content_filter" if candidate.safety_truncated else cut.finish or "stop"
        return Finish(index, reason, cut.shown)

    def _record(self, index: int, turn: Turn, shown: str, stored: str | None = None) -> None:
        """Put the reply's candidate into the mirror: the keys of its text (what c.ai
        keeps: ``stored`` when it was read back) and of what the client was shown."""
        candidate = turn.primary
        assert candidate is not None
        text = candidate.raw_content if stored is None else stored
        keys = keys_of(text)
        if shown != text:
            keys = tuple(dict.fromkeys((*keys, *keys_of(shown))))
        job = self.job
        action = self.action
        if index == 0 and isinstance(action, rc.Generate):
            # The message's key as the dialogue has it (what the front end sends again), and
            # if the text sent differs (a preamble before it), that text's (what c.ai keeps).
            sent = (action.key,) if action.key else keys_of(action.text)
            if self.text != action.text:
                sent = (*sent, *keys_of(self.text))
            job.turns.append(rc.MTurn(None, True, (rc.MCandidate("", sent),)))
            new = rc.MCandidate(candidate.candidate_id, keys)
            job.turns.append(rc.MTurn(turn.turn_id, False, (new,), candidate.candidate_id))
        else:
            job.turns[self.reply_at] = with_candidate(
                job.turns[self.reply_at], candidate.candidate_id, keys
            )
        job.fresh = False
        self.outcome.generated.append(candidate.candidate_id)

    # --- the client went away -----------------------------------------------------------------

    async def _finish_unseen(self, run: _Run, upstream: _Upstream) -> None:
        """A non-streaming client went away: it saw nothing, so the reply is read to its
        end and kept for its retry."""
        final = await upstream.finish()
        if final is not None and final.turn.primary is not None:
            self._record(run.index, final.turn, run.cut.shown)
        else:
            self.outcome.settled = False

    async def _stopped(self, run: _Run) -> None:
        """A streaming client went away mid-choice and the generation was stopped: the
        mirror gets the candidate c.ai kept (and what the client was shown)."""
        last = run.last
        if last is None or last.turn.primary is None:
            self.outcome.settled = False  # Nothing known: the history is read next time.
            return
        if last.final:
            self._record(run.index, last.turn, run.cut.shown)  # It was complete after all.
            return
        self.outcome.aborted = True
        log.info("the client went away mid-stream; the generation was stopped")
        stored = await self._stored_text(last.turn)
        self.outcome.settled = stored is not None
        self._record(run.index, last.turn, run.cut.shown, stored)

    async def _stored_text(self, turn: Turn) -> str | None:
        """The text c.ai kept of a stopped candidate, once its history shows it (None if
        it does not within SETTLE_SECONDS)."""
        client, job = self.engine.client, self.job
        candidate = turn.primary
        assert candidate is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        pause = 0.01
        while True:
            ops.info("history chat=%s (stopped reply)", job.record.chat_id)
            async for page in client.chats.iter_history(
                job.chat, all_candidates=True, timeout=SETTLE_SECONDS
            ):
                for stored in page:
                    if stored.turn_id == turn.turn_id:
                        for c in stored.candidates:
                            if c.candidate_id == candidate.candidate_id:
                                return c.raw_content
                break
            if loop.time() + pause > deadline:
                log.warning("a stopped reply did not appear in the chat's history")
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.25)


def with_candidate(mturn: rc.MTurn, candidate_id: str, keys: Iterable[str]) -> rc.MTurn:
    """``mturn`` with a new candidate, first and primary."""
    new = rc.MCandidate(candidate_id, tuple(dict.fromkeys(keys)))
    rest = tuple(c for c in mturn.candidates if c.candidate_id != candidate_id)
    return msgspec.structs.replace(mturn, candidates=(new, *rest), primary=candidate_id)


async def settle(work: Awaitable[T]) -> T:
    """Finish ``work`` even if the request is cancelled meanwhile (again): bookkeeping of
    a reply must complete before the conversation's lock is let go. ``work`` has its own
    deadline; a cancellation received on the way is raised once it is done."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


class _Run:
    """One choice being streamed: the events its chunks make, and what came last."""

    __slots__ = ("cut", "final", "generation", "index", "last", "started")

    def __init__(self, generation: Generation, index: int, cut: Truncator, started: float):
        self.generation = generation
        self.index = index
        self.cut = cut
        self.started = started
        self.last: ReplyChunk | None = None
        self.final: ReplyChunk | None = None

    def batch(self, chunks: list[ReplyChunk]) -> list[Event]:
        """The events of chunks that arrived together: one Delta of their text, and the
        choice's Finish after the final one."""
        cut = self.cut
        self.last = chunks[-1]
        piece = "".join([piece_of(chunk, cut) for chunk in chunks])
        if chunks[-1].final:
            self.final = chunks[-1]
            piece += cut.flush()
        metrics = self.generation.engine.metrics
        batch: list[Event] = []
        if piece:
            if len(piece) == len(cut.shown):
                metrics.first_delta(time.monotonic() - self.started)
            batch.append(Delta(self.index, piece))
        if self.final is not None:
            metrics.generation(time.monotonic() - self.started)
            batch.append(self.generation._finished(self.index, self.final, cut))
        return batch


_END = None


class _Upstream:
    """A reply stream read by a task of its own, for a non-streaming request: a client that
    goes away (the request cancelled) does not cut the read off at an arbitrary point, and
    :meth:`finish` waits for the rest. :meth:`next` returns every chunk that has arrived."""

    def __init__(self, stream: AsyncIterator[ReplyChunk]) -> None:
        self._loop = asyncio.get_running_loop()
        self._items: deque[ReplyChunk | BaseException | None] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._latest: ReplyChunk | None = None
        self._task = self._loop.create_task(self._read(stream))

    def _put(self, item: ReplyChunk | BaseException | None) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _read(self, stream: AsyncIterator[ReplyChunk]) -> None:
        try:
            async with aclosing(cast(AsyncGenerator[ReplyChunk, None], stream)) as chunks:
                async for chunk in chunks:
                    self._latest = chunk
                    self._put(chunk)
        except (CaiError, ValueError) as exc:
            self._put(exc)
        self._put(_END)

    async def _wait(self) -> None:
        while not self._items:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def next(self) -> list[ReplyChunk] | None:
        """The chunks that arrived since the last call (at least one); None at the end.
        Raises the stream's error once the chunks before it were returned."""
        await self._wait()
        items = self._items
        chunks: list[ReplyChunk] = []
        while items and isinstance(items[0], ReplyChunk):
            chunks.append(cast(ReplyChunk, items.popleft()))
        if chunks:
            return chunks
        item = items[0]
        if item is _END:
            return None
        items.popleft()
        raise cast(BaseException, item)

    async def finish(self) -> ReplyChunk | None:
        """The final chunk, once the stream ended (None if it failed or had none)."""
        await asyncio.wait({self._task})
        latest = self._latest
        return latest if latest is not None and latest.final else None

    def close(self) -> None:
        self._task.cancel()


def piece_of(chunk: ReplyChunk, cut: Truncator) -> str:
    """The text of ``chunk`` to show. A rewrite (rare; output filtering) cannot be taken
    back over SSE: only text extending what was shown goes out (docs/bridge.md, the reconcile
    rules)."""
    if not chunk.rewritten:
        return cut.feed(chunk.delta)
    shown = cut.shown
    if chunk.text.startswith(shown):
        return cut.feed(chunk.text[len(shown) :])
    log.info("the reply was rewritten after part of it was sent; the rest is not shown")
    return ""
