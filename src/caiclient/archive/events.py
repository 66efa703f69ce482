"""What a sync reports while it runs (events) and when it is done (the summary).

Events are plain dataclasses handed to the ``progress`` callback as they happen, so a
front end can draw bars, print lines or emit JSON (``event.as_dict()``). Every event carries
the running counters (:class:`Counters`): chats and turns done, requests made.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "ChatDone",
    "ChatFailed",
    "Counters",
    "Event",
    "Paused",
    "Planned",
    "StepFailed",
    "SyncFinished",
    "SyncIssue",
    "SyncStarted",
    "SyncSummary",
]


@dataclass
class Counters:
    """Running totals of one sync run."""

    chats_total: int = 0
    chats_done: int = 0
    turns: int = 0
    requests: int = 0
    elapsed: float = 0.0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True)
class Event:
    """Base class of progress events; ``kind`` names the event in JSON."""

    kind: ClassVar[str] = "event"
    counters: Counters

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"event": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, SyncSummary):
                value = value.as_dict()
            elif isinstance(value, Counters):
                value = dataclasses.asdict(value)
                value["requests_per_second"] = round(self.counters.requests_per_second, 2)
            data[f.name] = value
        return data


@dataclass(frozen=True)
class SyncStarted(Event):
    kind: ClassVar[str] = "started"
    mode: str
    archive: str


@dataclass(frozen=True)
class Planned(Event):
    """The chats to visit are known (``counters.chats_total``); ``characters`` checked."""

    kind: ClassVar[str] = "planned"
    characters: int
    v1_histories: int


@dataclass(frozen=True)
class ChatDone(Event):
    """One chat (or V1 history, ``legacy=True``; or group chat, ``room=True``) is archived;
    ``status`` is new, changed, unchanged, removed (gone from the server, kept here) or
    skipped (``since``)."""

    kind: ClassVar[str] = "chat"
    chat_id: str
    character_id: str
    status: str
    turns_new: int
    turns_changed: int
    turns_removed: int
    requests: int
    legacy: bool = False
    room: bool = False


@dataclass(frozen=True)
class ChatFailed(Event):
    """One chat could not be archived this time; the run goes on with the others."""

    kind: ClassVar[str] = "chat_failed"
    chat_id: str
    character_id: str
    error: str
    message: str


@dataclass(frozen=True)
class StepFailed(Event):
    """Another step failed (a character's info or list, the personas …); the run goes on."""

    kind: ClassVar[str] = "step_failed"
    step: str
    object_id: str | None
    error: str
    message: str


@dataclass(frozen=True)
class Paused(Event):
    """Every request waits ``seconds``: the server rate-limited or blocked us."""

    kind: ClassVar[str] = "paused"
    seconds: float
    reason: str


@dataclass(frozen=True)
class SyncIssue:
    """One failure recorded in a run (also kept in the archive's ``sync_errors``)."""

    scope: str
    object_id: str | None
    error: str
    message: str


@dataclass
class SyncSummary:
    """The result of a sync. ``ok`` is False when anything failed (see ``errors``) or the
    run was stopped by a fatal error (``fatal``: bad token, persistent block, …)."""

    mode: str = "incremental"
    chats_new: int = 0
    chats_changed: int = 0
    chats_unchanged: int = 0
    chats_removed: int = 0
    chats_skipped: int = 0
    turns_new: int = 0
    turns_changed: int = 0
    turns_removed: int = 0
    v1_histories_new: int = 0
    v1_histories_changed: int = 0
    v1_histories_unchanged: int = 0
    v1_messages: int = 0
    rooms_new: int = 0
    rooms_changed: int = 0
    rooms_unchanged: int = 0
    rooms_removed: int = 0
    rooms_skipped: int = 0
    characters: int = 0
    requests: int = 0
    seconds: float = 0.0
    errors: list[SyncIssue] = field(default_factory=list)
    fatal: SyncIssue | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and self.fatal is None

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ok"] = self.ok
        return data


@dataclass(frozen=True)
class SyncFinished(Event):
    kind: ClassVar[str] = "finished"
    summary: SyncSummary
