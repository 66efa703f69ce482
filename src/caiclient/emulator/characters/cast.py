"""The built-in cast: seed characters and their deterministic reply styles.

Every reply is a pure function of the character, the user's text and the 1-based number of
the user's message in the chat, so tests can predict it and runs are reproducible.
"""

from __future__ import annotations

import hashlib
import uuid
import zlib
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

from .._util import b64url

__all__ = [
    "CAST",
    "CAST_CREATOR_ID",
    "CAST_CREATOR_USERNAME",
    "GENERIC_STYLE",
    "SeedCharacter",
    "character_id",
    "split_cumulative",
]

# The seed cast belongs to a creator that is not a user of the emulator (nobody can edit it).
CAST_CREATOR_ID = "100000001"
CAST_CREATOR_USERNAME = "caiclient_cast"
GENERIC_STYLE = "generic"
"""The reply style of characters that users create."""

_SEED_TIME = "2024-01-01T00:00:00.000000Z"


def character_id(name: str) -> str:
    """A stable 43-char base64url id for ``name``, shaped like a live ``external_id``."""
    return b64url(hashlib.sha256(name.encode("utf-8")).digest())[:43]


@dataclass(frozen=True, slots=True)
class SeedCharacter:
    """A character served by the emulator. ``reply`` produces its deterministic answers.

    Plain, msgspec-encodable fields only: characters that users create are persisted as
    this record (kind ``"character"``). Votes are kept apart (``emulator/catalog.py``);
    ``upvotes`` and ``num_interactions`` here are the starting counts.
    """

    id: str
    name: str
    title: str
    greeting: str
    description: str
    avatar_file_name: str
    style: str
    visibility: str = "PUBLIC"
    copyable: bool = False
    definition: str = ""
    creator_id: str = CAST_CREATOR_ID
    creator_username: str = CAST_CREATOR_USERNAME
    num_interactions: int = 0
    upvotes: int = 0
    categories: tuple[str, ...] = ()
    featured: bool = False
    identifier: str = ""
    img_gen_enabled: bool = False
    base_img_prompt: str = ""
    strip_img_prompt_from_msg: bool = False
    default_voice_id: str = ""
    voice_id: str = ""
    allow_dynamic_greeting: bool = False
    dynamic_greeting_enabled: bool = False
    archived: bool = False
    created: str = _SEED_TIME
    updated: str = _SEED_TIME

    @property
    def participant_username(self) -> str:
        """The internal participant username (``participant__user__username``): the legacy
        Chat V1 ``tgt``. Shaped like live ones, ``internal_id:<n>:<uuid>``, derived from the id."""
        digest = hashlib.sha256(f"participant:{self.id}".encode()).digest()
        number = int.from_bytes(digest[:4], "big") % 900_000 + 100_000
        return f"internal_id:{number}:{uuid.UUID(bytes=digest[4:20], version=4)}"

    def reply(self, text: str, turn: int) -> str:
        """The full reply to the user's ``text``, the chat's ``turn``-th user message."""
        responder = _RESPONDERS.get(self.style)
        if responder is None:
            return _generic(self.name, text, turn)
        return responder(text, turn)


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


def _generic(name: str, text: str, turn: int) -> str:
    topic = _topic(text, "that")
    return (
        f"{name} here. You said {topic} — message {turn} of our chat. "
        "Tell me more and I will keep listening."
    )


_RESPONDERS: dict[str, Callable[[str, int], str]] = {
    "echo": _echo,
    "sage": _sage,
    "captain": _captain,
    "nova": _nova,
}


def _seed(
    name: str,
    title: str,
    greeting: str,
    description: str,
    style: str,
    *,
    interactions: int,
    upvotes: int,
    categories: tuple[str, ...],
) -> SeedCharacter:
    return SeedCharacter(
        id=character_id(name),
        name=name,
        title=title,
        greeting=greeting,
        description=description,
        avatar_file_name=f"emulator/{style}.webp",
        style=style,
        definition=f"{{{{char}}}}: {greeting}",
        num_interactions=interactions,
        upvotes=upvotes,
        categories=categories,
        featured=True,
        identifier=f"id:{uuid.UUID(bytes=hashlib.sha256(name.encode()).digest()[:16], version=4)}",
    )


CAST: tuple[SeedCharacter, ...] = (
    _seed(
        "Echo",
        "Repeats what you say",
        "Hello! I'm Echo. Say anything and I'll say it right back.",
        "A test character: every reply starts with your message, word for word.",
        "echo",
        interactions=1_204_311,
        upvotes=8_120,
        categories=("Helpers", "Discussion"),
    ),
    _seed(
        "Sage",
        "A calm librarian",
        "Welcome to the library. Take your time; what would you like to read about today?",
        "A soft-spoken librarian who finds a shelf for every question.",
        "sage",
        interactions=845_002,
        upvotes=12_433,
        categories=("Books", "Philosophy", "Helpers"),
    ),
    _seed(
        "Captain Byte",
        "Pirate captain of the good ship Overflow",
        "Ahoy there! Welcome aboard the Overflow. What brings ye to my deck?",
        "A cheerful pirate who sails the seven seas of silicon.",
        "captain",
        interactions=2_310_877,
        upvotes=20_981,
        categories=("Games", "Comedy"),
    ),
    _seed(
        "Nova",
        "An enthusiastic astronomer",
        "Hi! I'm Nova. Want to talk about the stars tonight?",
        "An astronomer who relates everything you say to the night sky.",
        "nova",
        interactions=97_540,
        upvotes=3_075,
        categories=("Discussion",),
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
