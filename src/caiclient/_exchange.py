"""The one I/O driver of every chat-socket request: subscribe, send, wait, feed, recover.

A :class:`SocketCall` runs one exchange of :mod:`caiclient.protocol.generation` on the
socket: it takes the chat's lock, registers the request's inbox and sends its frame, feeds
every frame to the exchange until it is done, and follows the pure failure policies of
:mod:`caiclient.protocol.retry` (recover the reply from the history, wait out a rate limit,
send again, raise). :meth:`SocketCall.result` gives the exchange's result;
:meth:`SocketCall.chunks` streams a reply. Leaving before the end (cancellation, an early
exit from a stream) tells the server to stop generating (``abort_generation``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Generic, TypeVar

from ._core import ClientCore
from ._deadline import Deadline
from ._locks import KeyedLocks, Lease
from ._socket import Inbox, ReconnectingSocket
from .errors import (
    CaiError,
    ChatNotFound,
    ClientClosed,
    Disconnected,
    ServerError,
    TransportError,
)
from .models import Chat, Turn
from .protocol import chats as chats_proto
from .protocol import neo
from .protocol.generation import DONE, FAIL, PROGRESS, SKIP, Exchange, Located, Reply, Step
from .protocol.generation import locate_reply as locate_reply_in
from .protocol.retry import Raise, Recover, Wait, after_recovery, after_send_failure
from .protocol.stream import ReplyChunk

__all__ = ["Frame", "Locate", "Prepare", "ReplyLocator", "SocketCall"]

log = logging.getLogger("caiclient.chats")

R = TypeVar("R")

# What a step returns on (module constants: a tuple built per call would live in every
# waiting call's frame).
_ANY_STEP = (DONE, FAIL, PROGRESS)
_FINAL_STEP = (DONE, FAIL)

Locate = Callable[[Deadline], Awaitable[tuple[Located, "Turn | None"]]]
"""Reads the history and says where the request's message and its reply are."""

Frame = bytes | Callable[[str], bytes]
"""The request's frame, or what builds it from the account's id (looked up once per client,
within the call's deadline)."""

Prepare = Callable[[Deadline], Awaitable[None]]
"""Runs before the frame is sent (e.g. the rooms socket subscribes to the room)."""


class SocketCall(Generic[R]):
    """One request on the chat socket, from its frame to its exchange's end.

    ``lock`` serialises the requests of one chat (None: no lock); ``locate`` makes a reply
    cut off by a drop recoverable from the history (None: a drop raises Disconnected);
    ``socket`` is the socket to use (default: the chat socket; group chats pass theirs).
    """

    def __init__(
        self,
        core: ClientCore,
        exchange: Exchange[R],
        frame: Frame,
        request_id: str,
        timeout: float | None,
        lock: tuple[KeyedLocks, str] | None = None,
        locate: Locate | None = None,
        socket: ReconnectingSocket | None = None,
        prepare: Prepare | None = None,
    ) -> None:
        self._core = core
        self._socket: ReconnectingSocket = socket if socket is not None else core.socket
        self.exchange = exchange
        self._build = frame
        self._frame = b""
        self._prepare = prepare
        self.request_id = request_id
        self._timeout = timeout
        # (Kept unpacked: the tuple would be one more object per waiting call for the
        # garbage collector to walk; thousands may wait.)
        self._locks: KeyedLocks | None = None if lock is None else lock[0]
        self._lock_key = "" if lock is None else lock[1]
        self._locate = locate
        self._lease: Lease | None = None
        self._inbox: Inbox | None = None
        self._sent = False
        self._resends = 0
        self._waits = 0
        self._abandon_timer: asyncio.TimerHandle | None = None
        self.deadline: Deadline | None = None
        self._first: Deadline | None = None

    # --- the two ways to run it ---------------------------------------------------------------

    async def result(self) -> R:
        """Run the exchange to its end and return its result."""
        # (As ``async with self``, one object lighter: thousands may wait for their chat.)
        await self.__aenter__()
        try:
            await self.step(progress=False)
        except (asyncio.CancelledError, GeneratorExit):
            self._stopped()
            raise
        finally:
            self._release()
        assert self.exchange.result is not None  # DONE sets it
        return self.exchange.result

    async def chunks(self, coalesce: bool = False) -> AsyncIterator[ReplyChunk]:
        """Run a reply and yield its chunks as they come; the last one is final. With
        ``coalesce``, the frames already received when a chunk is due make one chunk."""
        exchange = self.exchange
        assert isinstance(exchange, Reply)
        async with self:
            while True:
                step = await self.step()
                if coalesce:  # What else has arrived joins this chunk; nothing is waited for.
                    while step is not DONE and (more := await self.step(drain=True)) is not SKIP:
                        step = more
                chunk = exchange.take()
                if chunk is not None:
                    self._guard_abandonment()
                    yield chunk
                if step is DONE:
                    return

    # --- setting up and tearing down ----------------------------------------------------------

    async def __aenter__(self) -> SocketCall[R]:
        core = self._core
        self.deadline = deadline = core.deadline(self._timeout)
        self._first = deadline.sooner(core.options.first_chunk_timeout)
        build = self._build
        if isinstance(build, bytes):
            self._frame = build
        else:
            self._frame = build((await core.user(deadline)).id)
        if self._prepare is not None:
            await self._prepare(deadline)
        if self._locks is not None:
            self._lease = await self._locks.acquire(self._lock_key, deadline)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and issubclass(exc_type, (asyncio.CancelledError, GeneratorExit)):
            self._stopped()
        self._release()

    def _stopped(self) -> None:
        """The caller left before the end: a generation in progress is aborted."""
        if self._sent and self.exchange.generates and not self.exchange.done:
            self._abort()

    def _abort(self) -> None:
        """Tell the server to stop the generation nobody waits for any more (§8.5)."""
        self._socket.send_soon(neo.abort_generation(request_id=self.request_id))
        self._core.counts["aborted_generations"] += 1
        log.info("request %s left before its end; asked the server to stop", self.request_id)

    def _release(self) -> None:
        if self._abandon_timer is not None:
            self._abandon_timer.cancel()
            self._abandon_timer = None
        self._close_inbox()
        if self._lease is not None:
            self._lease.release()

    def _guard_abandonment(self) -> None:
        """A stream suspended at a chunk may never be resumed (the consumer broke out and
        kept the iterator): at the call's deadline, stop it and free the chat anyway."""
        if self._abandon_timer is None and self.deadline is not None:
            self._abandon_timer = asyncio.get_running_loop().call_at(
                self.deadline.at, self._abandoned
            )

    def _abandoned(self) -> None:
        self._abandon_timer = None
        self._stopped()
        self._release()

    # --- one step -----------------------------------------------------------------------------

    async def step(self, *, progress: bool = True, drain: bool = False) -> Step:
        """Wait for the next frame that means something (``PROGRESS`` or ``DONE``; only
        ``DONE`` when ``progress`` is false: then no chunk is taken, and the frames are
        fed in one loop), handling failures by the policies; raises the error they decide on.
        With ``drain``, only the frames already received: ``SKIP`` once they run out."""
        exchange = self.exchange
        deadline, first = self.deadline, self._first
        assert deadline is not None and first is not None
        handle = exchange.handle
        wanted = _ANY_STEP if progress else _FINAL_STEP
        while True:
            try:
                inbox = self._inbox or await self._send()
                while True:  # The frames of one inbox: the loop every reply runs per frame.
                    if drain and not inbox.pending:
                        return SKIP
                    step = handle(
                        await inbox.next(
                            deadline if first is deadline or exchange.started else first
                        )
                    )
                    if step in wanted:
                        break
            except CaiError as exc:
                await self._failed(exc)
            else:
                if step is not FAIL:
                    return step
                assert exchange.error is not None
                await self._failed(exchange.error)
            if exchange.done:
                return DONE

    async def _send(self) -> Inbox:
        assert self.deadline is not None
        inbox = await self._socket.register(self.request_id, self.deadline)
        self._inbox = inbox
        await inbox.send(self._frame)
        self._sent = True
        inbox.generating = self.exchange.generates
        return inbox

    def _close_inbox(self) -> None:
        inbox, self._inbox = self._inbox, None
        if inbox is not None:
            self._socket.unregister(inbox)

    async def _failed(self, error: CaiError) -> None:
        """Follow the policy for ``error``: return to go on (re-sent or recovered), or raise."""
        self._close_inbox()
        exchange = self.exchange
        assert self.deadline is not None
        verdict = after_send_failure(
            error,
            recoverable=exchange.recoverable and self._locate is not None,
            resent=self._resends > 0,
            delivered=isinstance(exchange, Reply) and exchange.started,
            waits=self._waits,
            rate_limit_wait=self._core.options.rate_limit_wait,
            left=self.deadline.remaining(),
        )
        if isinstance(verdict, Raise):
            if verdict.error is error:
                raise error
            raise verdict.error from error
        if isinstance(verdict, Wait):
            self._waits += 1
            log.info("rate limited; waiting %.1f s as the server asked", verdict.seconds)
            await asyncio.sleep(verdict.seconds)
            return
        assert isinstance(verdict, Recover)
        log.info("request %s failed (%s); recovering its reply", self.request_id, error)
        await self._recover(exchange)

    async def _recover(self, exchange: Exchange[R]) -> None:
        """Read the history until the reply is there (done), the message is known lost
        (send it again), or the deadline passes (Disconnected)."""
        core, deadline, locate = self._core, self.deadline, self._locate
        assert deadline is not None and locate is not None
        pause = 0.05
        while True:
            if core.closed:
                raise ClientClosed("the client was closed")
            if deadline.expired:
                raise Disconnected(
                    "the connection dropped during the reply and the reply could not be "
                    "recovered in time; it may still appear in the chat's history"
                )
            try:
                located, turn = await locate(deadline)
            except (TransportError, ServerError) as exc:
                log.info("recovery: history not readable yet (%s)", exc)
            else:
                if located is Located.REPLIED and turn is not None:
                    exchange.recovered(turn)
                    core.counts["recovered_replies"] += 1
                    return
                if located is Located.NOT_RECEIVED:
                    self._resend()
                    return
            await asyncio.sleep(min(pause, max(0.0, deadline.remaining())))
            pause = min(pause * 2, 1.0)

    def _resend(self) -> None:
        verdict = after_recovery(resends=self._resends)
        if isinstance(verdict, Raise):
            raise verdict.error
        self._resends += 1
        self._core.counts["resent_messages"] += 1
        log.info("request %s never reached the server; sending it again", self.request_id)


class ReplyLocator:
    """The ``locate`` of a send: where the history shows the message ``turn_id`` and its
    reply (after a drop). (A class with slots, not a partial: one object per waiting send.)"""

    __slots__ = ("_chat", "_core", "_turn_id")

    def __init__(self, core: ClientCore, chat: Chat, turn_id: str) -> None:
        self._core = core
        self._chat = chat
        self._turn_id = turn_id

    async def __call__(self, deadline: Deadline) -> tuple[Located, Turn | None]:
        core = self._core
        request = chats_proto.turns_page(core.endpoints, self._chat.chat_id)
        body = await core.call(request, deadline=deadline, not_found=ChatNotFound)
        return locate_reply_in(chats_proto.parse_turns_page(body)[0], self._turn_id)
