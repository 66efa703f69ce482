"""The core store: users and characters, which every area reads, and the shared knobs.

Each area keeps its own records in its own ``<area>/store.py`` and writes every change
through :attr:`Store.persist`; the core store holds what they all share: the users (with
their tokens), every character (the seed cast, seeded and user-made ones), the chat filters
and the rate limits. Users are persisted as kind ``"user"`` (key: user id), characters that
users or seeds created as kind ``"character"`` (key: character id; the built-in cast is
code, not state), the emulator's secret as kind ``"emulator"`` (key ``"secret"``).

Credentials (issue 10 #8): every token the emulator mints (users', guests', e-mail
logins', the control token) and the key that signs its Firebase ``idToken`` are derived
from one secret by HMAC, so nobody can compute them without it. The secret is random per
state unless fixed (``Emulator(secret=…)``, ``cai emulator --secret``, a seed's
``"secret"``); with a state file it is kept there, so a restart keeps every token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from .characters.cast import CAST, SeedCharacter
from .filters import Filters, RateLimits
from .persist import Persistence

__all__ = ["Store", "User", "check_secret", "resolve_secret"]

_SEED_USER_ID = 474480773
_DATE_JOINED = "2024-01-15T09:30:00.000000Z"


@dataclass(slots=True)
class User:
    id: str
    token: str
    username: str
    name: str
    email: str
    date_joined: str = _DATE_JOINED
    bio: str | None = None
    # Account area (emulator/account/): uploaded avatar, and the ids of followed users.
    avatar_file_name: str | None = None
    following: list[str] = field(default_factory=list)


_SECRET = re.compile(r"[\x21-\x7e]{8,256}")


def check_secret(secret: object) -> str:
    """``secret`` if it is usable (8-256 printable ASCII characters, no spaces), else
    ValueError."""
    if not isinstance(secret, str) or not _SECRET.fullmatch(secret):
        raise ValueError("the emulator secret must be 8-256 printable ASCII characters")
    return secret


def resolve_secret(explicit: str | None, persistence: Persistence) -> str:
    """The secret to run with: ``explicit`` if given, else the state file's, else a new
    random one; kept in the state file (if any) for the next start."""
    stored = persistence.load("emulator", str).get("secret")
    secret = check_secret(explicit) if explicit is not None else stored
    if secret is None:
        secret = secrets.token_hex(32)
    if secret != stored:
        persistence.put("emulator", "secret", secret)
    return secret


class Store:
    """Users, characters, filters and limits. Not thread-safe; used from the event loop."""

    def __init__(
        self,
        cast: Iterable[SeedCharacter] = CAST,
        persistence: Persistence | None = None,
        *,
        secret: str | None = None,
    ) -> None:
        # Every area keeps its records in memory and writes each change through
        # ``self.persist`` (a no-op unless the emulator runs with a state file).
        self.persist = persistence or Persistence()
        self._secret = resolve_secret(secret, self.persist).encode("ascii")
        self.characters: dict[str, SeedCharacter] = {c.id: c for c in cast}
        self.users_by_token: dict[str, User] = {}
        self.users_by_id: dict[str, User] = {}
        for user in self.persist.load("user", User).values():
            self._index_user(user)
        # Characters users created (the seed cast is code, not state).
        for character in self.persist.load("character", SeedCharacter).values():
            self.characters[character.id] = character
        self.filters = Filters()
        self.limits = RateLimits()
        seed = next((u for u in self.users_by_id.values() if u.username == "emulator_user"), None)
        self.seed_user = seed or self.add_user("emulator_user", "Emulator User")

    def derive(self, purpose: str) -> str:
        """A 40-hex credential for ``purpose``, the form of a live DRF token (§1.2):
        HMAC-SHA256 of the purpose under the emulator's secret."""
        return self.derive_key(purpose).hex()[:40]

    def derive_key(self, purpose: str) -> bytes:
        """32 secret bytes for ``purpose`` (signing keys)."""
        return hmac.new(self._secret, purpose.encode("utf-8"), hashlib.sha256).digest()

    def add_user(self, username: str, name: str | None = None, *, token: str | None = None) -> User:
        """Create a user with a deterministic id, and a token derived from ``username`` and
        the secret unless one is given."""
        user_id = str(_SEED_USER_ID + len(self.users_by_id) * 7919)
        user = User(
            id=user_id,
            token=token or self.derive(f"token:user:{username}"),
            username=username,
            name=name or username,
            email=f"{username}@example.com",
        )
        self._index_user(user)
        self.persist.put("user", user.id, user)
        return user

    def _index_user(self, user: User) -> None:
        self.users_by_token[user.token] = user
        self.users_by_id[user.id] = user

    def character_for(self, user: User | None, character_id: object) -> SeedCharacter | None:
        """The character if ``user`` may see it; None for missing, archived and other users'
        private characters alike, so nothing leaks which."""
        if not isinstance(character_id, str):
            return None
        character = self.characters.get(character_id)
        if character is None or character.archived:
            return None
        if character.visibility == "PRIVATE" and (user is None or user.id != character.creator_id):
            return None
        return character
