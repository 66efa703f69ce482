"""Tier 1: the retry policy is pure, so it is tested without a clock."""

from __future__ import annotations

import random

import pytest

from caiclient import AuthError, Disconnected, RateLimited, ServerError, Timeout
from caiclient.protocol.retry import Backoff, http_retry_delay


def test_backoff_grows_caps_and_stops() -> None:
    delays = list(Backoff(initial=1, factor=2, max_delay=5, jitter=0, attempts=5).delays())
    assert delays == [1, 2, 4, 5, 5]


def test_backoff_jitter_stays_in_range_and_is_seeded() -> None:
    policy = Backoff(initial=1, factor=2, max_delay=8, jitter=0.5, attempts=50)
    first = list(policy.delays(random.Random(7)))
    assert first == list(policy.delays(random.Random(7)))
    for n, delay in enumerate(first):
        ceiling = min(2**n, 8)
        assert ceiling * 0.5 <= delay <= ceiling
    assert len(set(first)) > 10  # jitter really varies


def test_fresh_iterator_resets_and_endless_is_possible() -> None:
    policy = Backoff(initial=0.5, jitter=0, attempts=None)
    endless = policy.delays()
    assert [next(endless) for _ in range(3)] == [0.5, 1.0, 2.0]
    assert next(policy.delays()) == 0.5


@pytest.mark.parametrize(
    "kwargs", [{"initial": -1}, {"factor": 0.5}, {"jitter": 2}, {"attempts": -1}]
)
def test_backoff_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_http_retry_decisions() -> None:
    def decide(error: Exception, idempotent: bool = True) -> float | None:
        return http_retry_delay(error, idempotent=idempotent, planned=0.4, max_retry_after=30)  # type: ignore[arg-type]

    assert decide(RateLimited("x", retry_after=3)) == 3
    assert decide(RateLimited("x", retry_after=3), idempotent=False) == 3
    assert decide(RateLimited("x", retry_after=120)) is None  # over the cap: give up
    assert decide(RateLimited("x")) == 0.4
    assert decide(ServerError("bad gateway", status=502)) == 0.4
    assert decide(ServerError("bad gateway", status=502), idempotent=False) is None
    assert decide(ServerError("oops", status=500)) is None
    assert decide(Timeout("slow")) == 0.4
    assert decide(Disconnected("gone"), idempotent=False) is None
    assert decide(AuthError("no")) is None
