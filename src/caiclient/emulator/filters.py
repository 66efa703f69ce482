"""Moderation of chat generations: a deterministic input filter, an output filter and an
optional per-token rate limit (docs/protocol.md §8.5, §8.6, §15.8).

Knobs (on a running emulator too)::

    emu.filters.input_phrases = ["[[self-harm]]"]      # refused with the self-harm neo_error
    emu.filters.output_phrases = ["[[unsafe-reply]]"]  # reply cut short, safety_truncated
    emu.rate_limit(generations=5, per=60)              # 6th generation in 60 s → 429
    emu.rate_limit(requests=100, per=60)               # chat REST calls too
    emu.rate_limit()                                   # off again (the default)

The default phrases never occur in normal text, so the filters only fire when a test asks.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_INPUT_PHRASES",
    "DEFAULT_OUTPUT_PHRASES",
    "Filters",
    "RateLimits",
]

DEFAULT_INPUT_PHRASES = ("[[self-harm]]",)
DEFAULT_OUTPUT_PHRASES = ("[[unsafe-reply]]",)


def _contains(text: str, phrases: list[str]) -> int:
    """The index of the earliest phrase found in ``text`` (case-insensitive), or -1."""
    lowered = text.casefold()
    found = [i for p in phrases if p and (i := lowered.find(p.casefold())) >= 0]
    return min(found) if found else -1


@dataclass
class Filters:
    """Phrases that trigger the emulated safety filters.

    ``input_phrases``: a user message (sent, added or edited) containing one is refused with
    the verbatim-capture ``neo_error`` ("Self harm message detected", 400, sub_code 101) and
    nothing is stored. ``output_phrases``: when the reply would contain one, or the user's
    message does, the reply is cut short and its final candidate has ``safety_truncated``.
    """

    input_phrases: list[str] = field(default_factory=lambda: list(DEFAULT_INPUT_PHRASES))
    output_phrases: list[str] = field(default_factory=lambda: list(DEFAULT_OUTPUT_PHRASES))

    def refuses(self, text: str) -> bool:
        """Whether the input filter refuses the user's ``text``."""
        return bool(self.input_phrases) and _contains(text, self.input_phrases) >= 0

    def truncate(self, prompt: str, reply: str) -> str | None:
        """The shortened reply when the output filter fires, else None.

        A phrase in the reply cuts it just before the phrase; a phrase only in the prompt
        keeps the first half of the reply's words. Never returns an empty string.
        """
        if not self.output_phrases:
            return None
        at = _contains(reply, self.output_phrases)
        if at >= 0:
            cut = reply[:at].rstrip()
        elif _contains(prompt, self.output_phrases) >= 0:
            words = reply.split(" ")
            cut = " ".join(words[: max(1, len(words) // 2)]).rstrip()
        else:
            return None
        return cut or "…"


@dataclass
class _Window:
    limit: int | None = None
    hits: dict[str, deque[float]] = field(default_factory=dict)

    def take(self, key: str, per: float, now: float) -> int | None:
        """Count one use by ``key``; the seconds to wait instead when over the limit."""
        if self.limit is None:
            return None
        queue = self.hits.setdefault(key, deque())
        while queue and queue[0] <= now - per:
            queue.popleft()
        if len(queue) >= self.limit:
            until = queue[0] + per if queue else now + per  # a limit of 0 allows nothing
            return max(1, math.ceil(until - now))
        queue.append(now)
        return None


@dataclass
class RateLimits:
    """Sliding-window limits per token: generations on the socket, chat REST calls.

    Off (None) by default. Over the limit, the socket answers ``neo_error`` with
    ``error_code`` 429 and ``retry_after_seconds``; REST answers HTTP 429 with ``Retry-After``.
    """

    per: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _generations: _Window = field(default_factory=_Window)
    _requests: _Window = field(default_factory=_Window)

    def configure(
        self, *, generations: int | None = None, requests: int | None = None, per: float = 60.0
    ) -> None:
        """Set both limits (None = unlimited) and the window; forgets earlier counts."""
        for name, value in (("generations", generations), ("requests", requests)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"{name} must be an integer >= 0 or None, got {value!r}")
        if isinstance(per, bool) or not isinstance(per, (int, float)) or per <= 0:
            raise ValueError(f"per must be a number of seconds > 0, got {per!r}")
        self.per = float(per)
        self._generations = _Window(generations)
        self._requests = _Window(requests)

    def generation(self, token: str) -> int | None:
        """Count a generation; None if allowed, else the seconds until the next is."""
        return self._generations.take(token, self.per, self.clock())

    def request(self, token: str) -> int | None:
        """Count a chat REST call; None if allowed, else the seconds until the next is."""
        return self._requests.take(token, self.per, self.clock())
