"""Extra seed data for the emulator: users (each with a token) and characters.

A seed is a mapping, or a JSON or TOML file holding one::

    secret = "…8+ printable ASCII…"  # optional: fixes every token for reproducible tests

    [[users]]
    username = "alice"            # required, 2-20 characters
    name = "Alice"                # optional
    token = "…40 hex…"            # optional; default derived from the secret and username

    [[characters]]
    name = "Mira"                 # required; the id is derived from it
    greeting = "Hi, I'm Mira."    # required
    title = "A friendly guide"
    description = "…"
    definition = "{{char}} is a guide who …"   # what the character is told about itself
    style = "sage"                # a built-in reply style: echo, sage, pirate, nova

Applying a seed is idempotent: users and characters that already exist (for instance in a
state file from an earlier run) are left as they are.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from .characters.cast import CAST, SeedCharacter, character_id
from .store import Store, check_secret

__all__ = ["Seed", "SeedSource", "apply_seed", "load_seed"]

SeedSource = str | Path | Mapping[str, Any] | None


class SeedUser(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    name: str | None = None
    token: str | None = None


class SeedCharacterSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    greeting: str
    title: str = ""
    description: str = ""
    definition: str = ""
    style: str = "sage"


class Seed(msgspec.Struct, forbid_unknown_fields=True):
    secret: str | None = None
    users: list[SeedUser] = msgspec.field(default_factory=list)
    characters: list[SeedCharacterSpec] = msgspec.field(default_factory=list)


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() != ".toml":
        try:
            return json.loads(text)
        except RecursionError:
            raise ValueError(f"invalid emulator seed: {path} is nested too deeply") from None
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads(text)
    raise ValueError("TOML seed files need Python 3.11+; use JSON instead")


def load_seed(source: SeedSource) -> Seed:
    """Parse a seed mapping or file; raises ValueError saying what is wrong."""
    if source is None:
        return Seed()
    raw = _read(Path(source)) if isinstance(source, (str, Path)) else dict(source)
    try:
        seed = msgspec.convert(raw, Seed)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid emulator seed: {exc}") from None
    if seed.secret is not None:
        check_secret(seed.secret)
    styles = {c.style for c in CAST}
    for spec in seed.characters:
        if spec.style not in styles:
            raise ValueError(f"unknown reply style {spec.style!r}; choose from {sorted(styles)}")
    for user in seed.users:
        if not 2 <= len(user.username) <= 20:
            raise ValueError(f"username {user.username!r} must have 2-20 characters")
        if user.token is not None and (len(user.token) < 8 or not user.token.isalnum()):
            raise ValueError(f"token of {user.username!r} must be 8+ letters or digits")
    return seed


def apply_seed(store: Store, seed: Seed) -> None:
    """Add the seed's users and characters that the store does not have yet."""
    usernames = {u.username for u in store.users_by_id.values()}
    for user in seed.users:
        if user.username not in usernames:
            store.add_user(user.username, user.name, token=user.token)
            usernames.add(user.username)
    avatars = {c.style: c.avatar_file_name for c in CAST}
    for spec in seed.characters:
        cid = character_id(spec.name)
        if cid in store.characters:
            continue
        character = SeedCharacter(
            id=cid,
            name=spec.name,
            title=spec.title,
            greeting=spec.greeting,
            description=spec.description,
            definition=spec.definition,
            avatar_file_name=avatars[spec.style],
            style=spec.style,
        )
        store.characters[cid] = character
        store.persist.put("character", cid, character)
