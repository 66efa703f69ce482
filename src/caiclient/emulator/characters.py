"""The built-in cast: seed characters and their deterministic reply styles.

Every reply is a pure function of the character, the user's text and the 1-based number of
the user's message in the chat, so tests can predict it and runs are reproducible.
"""

from __future__ import annotations

import hashlib
import zlib
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

from ._util import b64url

__all__ = ["CAST", "SeedCharacter", "character_id", "split_cumulative"]


def character_id(name: str) -> str:
    """A stable 43-char base64url id for ``name``, shaped like a live ``external_id``."""
    return b64url(hashlib.sha256(name.encode("utf-8")).digest())[:43]


@dataclass(frozen=True, slots=True)
class SeedCharacter:
    """A character served by the emulator. ``reply`` produces its deterministic answers."""

    id: str
    name: str
    title: str
    greeting: str
    description: str
    avatar_file_name: str
    style: str

    def reply(self, text: str, turn: int) -> str:
        """The full reply to the user's ``text``, the chat's ``turn``-th user message."""
        return _RESPONDERS[self.style](text, turn)


def _stable(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _topic(text: str, default: str) -> str:
    words = text.split()
    if not words:
        return default
    snippet = " ".join(words[:6]).rstrip(".,;:!?")
    return f"“{snippet}…”" if len(words) > 6 else f"“{snippet}”"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _echo(text: str, turn: int) -> str:
    return (
        f"{text} — that is what you said, and Echo sends it straight back on turn {turn}, "
        "every word exactly as it arrived."
    )


_SHELVES = (
    "the philosophy aisle",
    "the poetry alcove",
    "the drawer of old maps",
    "the history stacks",
    "the quiet reading room by the window",
)
_THOUGHTS = (
    "Every good question is a doorway, and you have just opened one.",
    "Patience turns pages that haste would tear.",
    "The answer is rarely on the first shelf, but it is always somewhere in the building.",
    "A little silence helps an idea settle, like dust in afternoon light.",
)


def _sage(text: str, turn: int) -> str:
    h = _stable(text) + turn
    topic = _topic(text, "a quiet moment")
    return (
        f"Ah, {topic}. Let me walk you to {_SHELVES[h % len(_SHELVES)]}. "
        f"{_THOUGHTS[(h // 7) % len(_THOUGHTS)]} Shall we read a little further together?"
    )


_PIRATE_LINES = (
    "I've sailed seven seas of silicon and never heard the like!",
    "Hoist the mainsail and fetch me a cup of hot cocoa!",
    "That be worth more than a chest of gold doubloons.",
    "The parrot agrees, and the parrot is never wrong.",
    "Mark it on the map with a big red X!",
)


def _captain(text: str, turn: int) -> str:
    line = _PIRATE_LINES[(_stable(text) + turn) % len(_PIRATE_LINES)]
    topic = _topic(text, "nothing at all")
    return (
        f"Arr, {topic}, says ye? {line} That be the {_ordinal(turn)} thing ye've told me, "
        "matey, and Captain Byte never forgets a word."
    )


_STAR_FACTS = (
    "Did you know a day on Venus is longer than its year?",
    "Light from the Sun takes about eight minutes to reach us.",
    "Saturn would float in a bathtub big enough to hold it.",
    "There are more stars in the universe than grains of sand on every beach.",
    "Neutron stars spin hundreds of times every second.",
)


def _nova(text: str, turn: int) -> str:
    fact = _STAR_FACTS[(_stable(text) + 2 * turn) % len(_STAR_FACTS)]
    topic = _topic(text, "the night sky")
    return (
        f"Ooh, {topic}! That makes me think of the stars. {fact} "
        "Keep looking up, and tell me more whenever you like!"
    )


_RESPONDERS: dict[str, Callable[[str, int], str]] = {
    "echo": _echo,
    "sage": _sage,
    "captain": _captain,
    "nova": _nova,
}


def _seed(name: str, title: str, greeting: str, description: str, style: str) -> SeedCharacter:
    return SeedCharacter(
        id=character_id(name),
        name=name,
        title=title,
        greeting=greeting,
        description=description,
        avatar_file_name=f"emulator/{style}.webp",
        style=style,
    )


CAST: tuple[SeedCharacter, ...] = (
    _seed(
        "Echo",
        "Repeats what you say",
        "Hello! I'm Echo. Say anything and I'll say it right back.",
        "A test character: every reply starts with your message, word for word.",
        "echo",
    ),
    _seed(
        "Sage",
        "A calm librarian",
        "Welcome to the library. Take your time; what would you like to read about today?",
        "A soft-spoken librarian who finds a shelf for every question.",
        "sage",
    ),
    _seed(
        "Captain Byte",
        "Pirate captain of the good ship Overflow",
        "Ahoy there! Welcome aboard the Overflow. What brings ye to my deck?",
        "A cheerful pirate who sails the seven seas of silicon.",
        "captain",
    ),
    _seed(
        "Nova",
        "An enthusiastic astronomer",
        "Hi! I'm Nova. Want to talk about the stars tonight?",
        "An astronomer who relates everything you say to the night sky.",
        "nova",
    ),
)


def split_cumulative(text: str, n: int) -> list[str]:
    """Split ``text`` into ``n`` strictly growing, non-empty prefixes, the last being ``text``.

    Cuts land on word boundaries near even intervals where possible, otherwise mid-word.
    Returns fewer than ``n`` pieces only when ``text`` has fewer than ``n`` characters.
    """
    length = len(text)
    n = min(n, length)
    if n <= 1:
        return [text]
    bounds = [i for i, ch in enumerate(text) if ch == " " and i > 0]
    cuts: list[int] = []
    prev = 0
    for k in range(1, n):
        lo, hi = prev + 1, length - (n - k)
        prev = _nearest(bounds, round(k * length / n), lo, hi)
        cuts.append(prev)
    return [text[:c] for c in cuts] + [text]


def _nearest(bounds: list[int], target: int, lo: int, hi: int) -> int:
    """The word boundary in ``[lo, hi]`` closest to ``target``, or ``target`` clamped."""
    i = bisect_left(bounds, target)
    options = [b for b in bounds[max(i - 1, 0) : i + 1] if lo <= b <= hi]
    if options:
        return min(options, key=lambda b: abs(b - target))
    return min(max(target, lo), hi)
