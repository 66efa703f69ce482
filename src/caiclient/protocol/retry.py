"""When to try again and how long to wait: pure policy, no clock and no sleeping.

The I/O code asks and follows the answer:

- :func:`http_retry_delay`: retry a failed REST call, and after how long;
- :func:`reconnect_verdict` and :meth:`Backoff.delays`: reopen the chat socket or give up;
- :func:`after_send_failure`: a generation failed on the way: recover its reply from the
  history, wait out a rate limit, or raise;
- :func:`after_recovery`: the history says the message never arrived: send it again or
  give up.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import msgspec

from ..errors import (
    AuthError,
    BlockedError,
    CaiError,
    Disconnected,
    DuplicateRequest,
    RateLimited,
    ServerError,
    Timeout,
    TransportError,
)

__all__ = [
    "MAX_RATE_LIMIT_WAITS",
    "MAX_RESENDS",
    "RATE_LIMIT_FLOOR",
    "Backoff",
    "Raise",
    "Recover",
    "Resend",
    "RetryPolicy",
    "Verdict",
    "Wait",
    "after_recovery",
    "after_send_failure",
    "http_retry_delay",
    "reconnect_verdict",
]

RATE_LIMIT_FLOOR = 1.0
"""The shortest wait after a rate limit: a ``retry_after`` of 0 or less waits this long."""

MAX_RATE_LIMIT_WAITS = 3
"""How many rate limits one generation waits out before it raises RateLimited."""

MAX_RESENDS = 3
"""How many times one message is sent again after the history showed it never arrived."""

WS_MESSAGE_TOO_BIG = 1009
"""The close code of a server that refused a frame as too large (RFC 6455 §7.4.1)."""

# Gateway errors that say "try again", not "your request is wrong" (docs/protocol.md §2.4.5).
RETRYABLE_STATUSES = frozenset({502, 503, 504})


class Backoff(msgspec.Struct, frozen=True):
    """Jittered exponential backoff: ``initial * factor**n``, capped at ``max_delay``.

    Each delay is drawn uniformly from ``[d * (1 - jitter), d]`` so that many clients that
    lost the same server do not come back in lockstep. ``attempts`` bounds the sequence
    (None: endless). A fresh iterator starts from ``initial`` again: that is the reset after
    a success.
    """

    initial: float = 0.25
    factor: float = 2.0
    max_delay: float = 10.0
    jitter: float = 0.5
    attempts: int | None = 8

    def __post_init__(self) -> None:
        if self.initial < 0 or self.factor < 1 or self.max_delay < 0:
            raise ValueError("backoff needs initial >= 0, factor >= 1 and max_delay >= 0")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction between 0 and 1")
        if self.attempts is not None and self.attempts < 0:
            raise ValueError("attempts must be >= 0 or None")

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The waits before each retry, in order."""
        rng = rng or random.Random()
        delay = self.initial
        count = 0
        while self.attempts is None or count < self.attempts:
            count += 1
            capped = min(delay, self.max_delay)
            yield capped * (1 - self.jitter * rng.random())
            delay *= self.factor


class RetryPolicy(msgspec.Struct, frozen=True):
    """How REST calls are retried. ``max_retry_after`` caps a server's ``Retry-After``."""

    backoff: Backoff = Backoff(initial=0.25, max_delay=4.0, attempts=3)
    max_retry_after: float = 30.0


def http_retry_delay(
    error: CaiError, *, idempotent: bool, planned: float, max_retry_after: float
) -> float | None:
    """Seconds to wait before retrying a REST call that failed with ``error``, or None.

    Only idempotent requests are retried after connection failures and gateway errors: a
    POST that may have reached the server is not sent twice blindly. A 429 is retried for
    any request (the server refused it, so it had no effect), after the server's
    ``Retry-After`` when given (capped), else after the backoff's ``planned`` delay.
    """
    if isinstance(error, RateLimited):
        if error.retry_after is None:
            return planned
        # The planned backoff is a floor: "Retry-After: 0" must not mean "hammer it".
        return None if error.retry_after > max_retry_after else max(error.retry_after, planned)
    if not idempotent:
        return None
    if isinstance(error, (Timeout, TransportError)):
        return planned
    if isinstance(error, ServerError) and error.status in RETRYABLE_STATUSES:
        return planned
    return None


def reconnect_verdict(error: CaiError) -> CaiError | None:
    """None when opening the chat socket may be tried again after ``error``; otherwise the
    error to raise (as websockets' ``process_exception``): a bad token or an anti-bot
    block is not fixed by retrying."""
    if isinstance(error, (AuthError, BlockedError)):
        return error
    if isinstance(error, TransportError):
        return None
    return error


class Recover(msgspec.Struct, frozen=True):
    """Read the chat's history: the reply may be there, or the message may be lost."""


class Resend(msgspec.Struct, frozen=True):
    """Send the message again with the same turn id (the server never got it)."""


class Wait(msgspec.Struct, frozen=True):
    """Wait ``seconds`` (a rate limit the caller allowed to be waited out), then send again."""

    seconds: float


class Raise(msgspec.Struct, frozen=True):
    """Give up: raise ``error``."""

    error: CaiError


Verdict = Recover | Resend | Wait | Raise


def after_send_failure(
    error: CaiError,
    *,
    recoverable: bool,
    resent: bool,
    delivered: bool,
    waits: int,
    rate_limit_wait: float,
    left: float,
) -> Verdict:
    """What to do when a generation failed with ``error`` before its final frame.

    ``recoverable``: the reply can be found in the history (a message whose turn id we
    chose; not a regeneration). ``resent``: the message was already sent again once.
    ``delivered``: part of the reply already reached the caller. ``waits``: rate limits
    waited out so far. ``rate_limit_wait``: the longest wait the caller allows (0: never
    wait). ``left``: seconds until the call's deadline.
    """
    if isinstance(error, Disconnected):
        if error.code == WS_MESSAGE_TOO_BIG:
            # Sending the same frame again would be refused again (and upload it again).
            return Raise(
                ServerError(
                    "the server refused the message as too large (WebSocket close 1009)",
                    status=WS_MESSAGE_TOO_BIG,
                )
            )
        return Recover() if recoverable else Raise(error)
    if isinstance(error, DuplicateRequest):
        # After a re-send, "already exists" means the first send did arrive.
        return Recover() if resent and recoverable else Raise(error)
    if isinstance(error, RateLimited):
        return _rate_limit_verdict(error, delivered, waits, rate_limit_wait, left)
    return Raise(error)


def _rate_limit_verdict(
    error: RateLimited, delivered: bool, waits: int, rate_limit_wait: float, left: float
) -> Verdict:
    if error.retry_after is None or delivered or waits >= MAX_RATE_LIMIT_WAITS:
        return Raise(error)
    wait = max(error.retry_after, RATE_LIMIT_FLOOR)
    if wait > rate_limit_wait or wait >= left:
        return Raise(error)
    return Wait(wait)


def after_recovery(*, resends: int) -> Resend | Raise:
    """The history shows the message never arrived: send it again, up to ``MAX_RESENDS``
    times for one call (each after the socket's reconnect backoff)."""
    if resends >= MAX_RESENDS:
        return Raise(
            Disconnected(
                f"the message was lost on the way {resends + 1} times; giving up (the "
                "connection keeps failing)"
            )
        )
    return Resend()
