"""Argument checks that run before any I/O, each raising ValidationError that says what to fix."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import msgspec

from ._config import MAX_TEXT_BYTES, MAX_TIMEOUT
from .errors import ValidationError
from .models import Candidate, Chat, Turn
from .protocol.neo import ANNOTATION_COUNTERS

__all__ = [
    "RATING_LABELS",
    "candidate_id_of",
    "chat_id_of",
    "check_bool",
    "check_character_turn",
    "check_chat",
    "check_id",
    "check_model",
    "check_rating",
    "check_seconds",
    "check_str",
    "check_text",
    "check_timeout",
    "check_turn",
    "check_unicode",
    "turn_id_in",
    "turn_ids_in",
]

# Characters that would change a URL path or its query, and whitespace.
_ID_FORBIDDEN = re.compile(r"[/?#%&\\\s\"']")
_encode = msgspec.json.Encoder().encode
# Ids that passed, so the same chat's ids are not scanned again on every send (a dict
# lookup of a string whose hash is cached, against two scans); cleared when full.
_valid_ids: dict[str, None] = {}
_VALID_IDS_KEPT = 4096


def check_id(value: object, what: str) -> str:
    """A server id: a non-empty string that is safe to put in a URL path."""
    if type(value) is str and value in _valid_ids:
        return value
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a str, got {type(value).__name__}")
    if (
        not value
        or len(value) > 256
        or value in (".", "..")  # A URL path would normalise them onto another endpoint.
        or not value.isprintable()
        or _ID_FORBIDDEN.search(value) is not None
    ):
        raise ValidationError(f"{what} {value!r} is not a valid id")
    if type(value) is str:
        if len(_valid_ids) >= _VALID_IDS_KEPT:
            _valid_ids.clear()
        _valid_ids[value] = None
    return value


def check_unicode(value: str, what: str) -> str:
    """``value``, which must be encodable as UTF-8 (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            f"{what} contains a lone surrogate at index {exc.start} ({value[exc.start]!r}); "
            "it cannot be sent as UTF-8 (decode the source text with errors='replace')"
        ) from None
    return value


def check_str(value: object, what: str) -> str:
    """An optional text (empty allowed): a str, valid UTF-8."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a str, got {type(value).__name__}")
    return value if value.isascii() else check_unicode(value, what)


def check_text(value: object, what: str = "text") -> str:
    """Text to send: a non-blank str, valid UTF-8, at most ``MAX_TEXT_BYTES`` once encoded."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValidationError(f"{what} is empty or only whitespace; nothing to send")
    # The common case, decided in C: ASCII has no lone surrogate, and even escaping every
    # character (\u00XX) keeps it within the limit.
    if value.isascii() and len(value) * 6 <= MAX_TEXT_BYTES:
        return value
    check_unicode(value, what)
    size = len(_encode(value))
    if size > MAX_TEXT_BYTES:
        raise ValidationError(
            f"{what} is {size:,} bytes once encoded; the limit is {MAX_TEXT_BYTES:,} "
            "(docs/reliability.md, frame sizes)"
        )
    return value


def check_chat(value: object) -> Chat:
    if not isinstance(value, Chat):
        hint = " (use client.chats.get(chat_id) to load one)" if isinstance(value, str) else ""
        raise ValidationError(f"chat must be a Chat, got {type(value).__name__}{hint}")
    check_id(value.chat_id, "chat.chat_id")
    check_id(value.character_id, "chat.character_id")
    return value


def check_seconds(
    value: object, what: str, *, allow_zero: bool = False, maximum: float = MAX_TIMEOUT
) -> float:
    """A finite number of seconds, > 0 (or >= 0 with ``allow_zero``) and at most ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{what} must be a number of seconds, got {type(value).__name__}")
    seconds = float(value)
    low_ok = seconds >= 0 if allow_zero else seconds > 0
    if not low_ok or not math.isfinite(seconds) or seconds > maximum:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValidationError(
            f"{what} must be a finite number of seconds {bound} and at most {maximum:g}, "
            f"got {value!r}"
        )
    return seconds


def check_bool(value: object, what: str) -> bool:
    """``value`` if it is True or False; ValidationError otherwise (no truthy strings)."""
    if not isinstance(value, bool):
        raise ValidationError(f"{what} must be True or False, got {value!r}")
    return value


def check_timeout(value: object, what: str = "timeout") -> float | None:
    """A per-call ``timeout``: None (the client's default) or a valid number of seconds."""
    if value is None:
        return None
    return check_seconds(value, what)


# --- chat V2 arguments ------------------------------------------------------------------------


def chat_id_of(chat: object) -> str:
    """The id of ``chat`` (a Chat or a chat id)."""
    if isinstance(chat, Chat):
        return check_id(chat.chat_id, "chat.chat_id")
    if isinstance(chat, str):
        return check_id(chat, "chat")
    raise ValidationError(f"chat must be a Chat or a chat id, got {type(chat).__name__}")


def check_turn(turn: object) -> Turn:
    if not isinstance(turn, Turn):
        hint = " (load turns with client.chats.history)" if isinstance(turn, str) else ""
        raise ValidationError(f"turn must be a Turn, got {type(turn).__name__}{hint}")
    check_id(turn.chat_id, "turn.chat_id")
    check_id(turn.turn_id, "turn.turn_id")
    return turn


def check_character_turn(turn: object, action: str) -> Turn:
    turn = check_turn(turn)
    if turn.is_human:
        raise ValidationError(f"only character turns can be {action}; this turn is yours")
    check_id(turn.author.author_id, "turn.author.author_id")
    return turn


def turn_id_in(chat_id: str, turn: object, what: str) -> str:
    """The id of ``turn`` (a Turn or a turn id), which must belong to chat ``chat_id``."""
    if isinstance(turn, Turn):
        if turn.chat_id != chat_id:
            raise ValidationError(
                f"{what} belongs to chat {turn.chat_id!r}, not to chat {chat_id!r}"
            )
        return check_id(turn.turn_id, f"{what}.turn_id")
    if isinstance(turn, str):
        return check_id(turn, what)
    raise ValidationError(f"{what} must be a Turn or a turn id, got {type(turn).__name__}")


def turn_ids_in(chat_id: str, turns: object) -> list[str]:
    """The ids of ``turns`` (one Turn or id, or an iterable of them), all of chat ``chat_id``."""
    items = [turns] if isinstance(turns, (Turn, str)) else turns
    if not isinstance(items, Iterable):
        raise ValidationError(
            f"turns must be a Turn, a turn id or a list of them, got {type(turns).__name__}"
        )
    ids = [turn_id_in(chat_id, item, "turn") for item in items]
    if not ids:
        raise ValidationError("no turns given; nothing to delete")
    return ids


def candidate_id_of(turn: Turn, candidate: object) -> str:
    """The id of ``candidate`` (a Candidate, an id, or None for the turn's primary one)."""
    if candidate is None:
        primary = turn.primary
        if primary is None:
            raise ValidationError("the turn has no candidate; pass candidate=... explicitly")
        return check_id(primary.candidate_id, "candidate_id")
    if isinstance(candidate, Candidate):
        return check_id(candidate.candidate_id, "candidate.candidate_id")
    return check_id(candidate, "candidate")


_MODEL_TYPE = re.compile(r"MODEL_TYPE_[A-Z0-9_]+")


def check_model(model: object) -> str:
    if not isinstance(model, str):
        raise ValidationError(f"model must be a str, got {type(model).__name__}")
    if not _MODEL_TYPE.fullmatch(model):
        raise ValidationError(
            f"model {model!r} is not a model type; use a name like 'MODEL_TYPE_SMART'"
        )
    return model


# The feedback labels of the web client (the ``previous_annotations`` counters, §8.5).
RATING_LABELS = frozenset(
    f"{prefix}{name}" for prefix in ("", "not_") for name in ANNOTATION_COUNTERS
)


def check_rating(stars: object, label: object) -> tuple[str, int]:
    """The annotation type and value for ``stars`` (1–4) or ``label`` (exactly one)."""
    if (stars is None) == (label is None):
        raise ValidationError("rate() takes exactly one of stars=1..4 or label=...")
    if stars is not None:
        if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 4:
            raise ValidationError(f"stars must be an integer from 1 to 4, got {stars!r}")
        return "star", stars
    if not isinstance(label, str) or label not in RATING_LABELS:
        known = ", ".join(sorted(RATING_LABELS))
        raise ValidationError(f"label {label!r} is not one of: {known}")
    return label, 1
