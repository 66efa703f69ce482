"""Tier 1: the retry policy is pure, so it is tested without a clock."""

from __future__ import annotations

import random
from typing import Any

import pytest

from caiclient import (
    AuthError,
    BlockedError,
    CaiError,
    Disconnected,
    DuplicateRequest,
    Filtered,
    ProtocolError,
    RateLimited,
    ServerError,
    Timeout,
    TransportError,
)
from caiclient.protocol.retry import (
    MAX_RATE_LIMIT_WAITS,
    MAX_RESENDS,
    RATE_LIMIT_FLOOR,
    Backoff,
    Raise,
    Recover,
    Resend,
    Verdict,
    Wait,
    after_recovery,
    after_send_failure,
    http_retry_delay,
    reconnect_verdict,
)


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


def test_retry_after_zero_is_not_an_immediate_retry() -> None:
    # Defect 17: "Retry-After: 0" was retried three times with no pause.
    wait = http_retry_delay(
        RateLimited("x", retry_after=0), idempotent=True, planned=0.3, max_retry_after=30
    )
    assert wait == 0.3


@pytest.mark.parametrize(
    ("given", "kept"),
    [(float("inf"), 86400.0), (-5, 0.0), (float("nan"), None), (2.5, 2.5), (None, None)],
)
def test_rate_limited_keeps_only_a_usable_retry_after(
    given: float | None, kept: float | None
) -> None:
    # Defect 17: RateLimited.retry_after could be inf.
    assert RateLimited("x", retry_after=given).retry_after == kept


@pytest.mark.parametrize(
    ("error", "final"),
    [
        (AuthError("bad token"), True),
        (BlockedError("cloudflare"), True),
        (Disconnected("closed"), False),
        (Timeout("slow"), False),
        (TransportError("refused"), False),
        (ProtocolError("junk"), True),
    ],
)
def test_reconnect_verdict(error: CaiError, final: bool) -> None:
    verdict = reconnect_verdict(error)
    assert (verdict is error) if final else (verdict is None)


def _after(error: CaiError, **kwargs: Any) -> Verdict:
    args: dict[str, Any] = {
        "recoverable": True,
        "resent": False,
        "delivered": False,
        "waits": 0,
        "rate_limit_wait": 0.0,
        "left": 30.0,
    }
    args.update(kwargs)
    return after_send_failure(error, **args)


@pytest.mark.parametrize(
    ("error", "kwargs", "expected"),
    [
        # A drop: the reply is looked up in the history, when it can be found there.
        (Disconnected("cut"), {}, Recover()),
        (Disconnected("cut", code=1011), {}, Recover()),
        (Disconnected("cut"), {"recoverable": False}, "raise itself"),
        # A 1009 close is never answered by sending the same frame again (defect 6).
        (Disconnected("too big", code=1009), {}, "raise ServerError"),
        # "already exists" after a re-send: the first one arrived; its reply is coming.
        (DuplicateRequest("create_and_generate_turn already exists"), {"resent": True}, Recover()),
        (DuplicateRequest("create_and_generate_turn already exists"), {}, "raise itself"),
        # Rate limits are waited out only when allowed, before any text, within bounds.
        (RateLimited("slow", retry_after=2), {}, "raise itself"),
        (RateLimited("slow", retry_after=2), {"rate_limit_wait": 5}, Wait(2.0)),
        (RateLimited("slow", retry_after=0), {"rate_limit_wait": 5}, Wait(1.0)),
        (RateLimited("slow", retry_after=-3), {"rate_limit_wait": 5}, Wait(1.0)),
        (RateLimited("slow", retry_after=9), {"rate_limit_wait": 5}, "raise itself"),
        (RateLimited("slow"), {"rate_limit_wait": 5}, "raise itself"),
        (RateLimited("slow", retry_after=2), {"rate_limit_wait": 5, "left": 1.5}, "raise itself"),
        (
            RateLimited("slow", retry_after=2),
            {"rate_limit_wait": 5, "delivered": True},
            "raise itself",
        ),
        (RateLimited("slow", retry_after=2), {"rate_limit_wait": 5, "waits": 3}, "raise itself"),
        # Anything else is the caller's to see.
        (Filtered("no"), {}, "raise itself"),
        (ServerError("boom", status=500), {}, "raise itself"),
        (Timeout("late"), {}, "raise itself"),
    ],
)
def test_after_send_failure(error: CaiError, kwargs: dict[str, Any], expected: object) -> None:
    verdict = _after(error, **kwargs)
    if expected == "raise itself":
        assert verdict == Raise(error)
    elif expected == "raise ServerError":
        assert isinstance(verdict, Raise) and type(verdict.error) is ServerError
        assert verdict.error.status == 1009
    else:
        assert verdict == expected


def test_after_recovery_resends_a_lost_message_a_bounded_number_of_times() -> None:
    assert [after_recovery(resends=n) for n in range(MAX_RESENDS)] == [Resend()] * MAX_RESENDS
    verdict = after_recovery(resends=MAX_RESENDS)
    assert isinstance(verdict, Raise) and isinstance(verdict.error, Disconnected)


def test_rate_limit_floor_and_cap_are_sane() -> None:
    assert RATE_LIMIT_FLOOR >= 0.5
    assert 1 <= MAX_RATE_LIMIT_WAITS <= 10
