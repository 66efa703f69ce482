"""When to try again and how long to wait: pure policy, no clock and no sleeping.

The I/O code asks :func:`http_retry_delay` (REST) or walks :meth:`Backoff.delays`
(reconnecting the chat socket) and just follows the answer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import CaiError, RateLimited, ServerError, Timeout, TransportError

__all__ = ["Backoff", "RetryPolicy", "http_retry_delay"]

# Gateway errors that say "try again", not "your request is wrong" (PROTOCOL.md §2.4.5).
RETRYABLE_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class Backoff:
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


@dataclass(frozen=True)
class RetryPolicy:
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
        return None if error.retry_after > max_retry_after else error.retry_after
    if not idempotent:
        return None
    if isinstance(error, (Timeout, TransportError)):
        return planned
    if isinstance(error, ServerError) and error.status in RETRYABLE_STATUSES:
        return planned
    return None
