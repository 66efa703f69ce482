"""Reconcile an OpenAI-style ``messages[]`` with the mirror of a Character.AI chat. No I/O.

OpenAI chat completions are stateless: every request carries the whole dialogue. A c.ai
chat lives on the server, with its turns, swipes (candidates) and edits (docs/protocol.md §7.2).
This module compares the two and says what to do, as a :class:`Plan`:
side effects first (select a swipe, edit a turn, delete turns, import an exchange), then one
action (send a message, regenerate a reply, replay a stored one, reject, or ask the caller
to branch, create the chat or refresh the mirror first and plan again).

It knows nothing of HTTP, storage or the client: the mirror holds each candidate as hashes
of its normalised text, and texts only when the caller has just read them from c.ai.
docs/bridge.md describes every class with an example; tests/test_bridge_reconcile.py is
the table.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Literal

import msgspec

__all__ = [
    "Alias",
    "Branch",
    "Delete",
    "Dialogue",
    "Edit",
    "Generate",
    "Instruct",
    "Line",
    "MCandidate",
    "MTurn",
    "Message",
    "Mirror",
    "NeedHistory",
    "NewChat",
    "Plan",
    "Policy",
    "Prior",
    "Regenerate",
    "Reject",
    "Replay",
    "Select",
    "Send",
    "align",
    "digest",
    "extract",
    "is_task",
    "normalise",
    "plan",
    "score",
]

Role = Literal["user", "assistant"]

# SillyTavern's example dialogue arrives as system messages with these names (docs/bridge.md, "The
# reconcile rules").
_EXAMPLE_NAMES = frozenset({"example_user", "example_assistant"})
# Background tasks of Open WebUI and LibreChat: a single user message with a templated
# instruction (titles, tags, follow-ups). They must never become turns of the chat.
TASK_PATTERNS: tuple[str, ...] = (
    r"^\s*###\s*task:",
    r"5-word-or-less title",
    r"generate a concise,? 3-5 word title",
    r"^\s*(please )?(generate|write|create) a (short |concise )*title for (this|the) conversation",
)
_CONTINUE_NUDGE = re.compile(r"^\W*continue\b", re.IGNORECASE)
# The part of the tail and of the mirror the general alignment looks at.
WINDOW = 48


# --- normalising the request ----------------------------------------------------------------


# Blanks before a line end: only then must a text be split into lines to be normalised.
_TRAILING_BLANKS = re.compile(r"[^\S\n]\n")


def normalise(text: str, names: Iterable[str] = ()) -> str:
    """NFC, ``\\n`` line ends, no trailing blanks, no ``Name:`` prefix of a known speaker."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\n" in text and _TRAILING_BLANKS.search(text) is not None:  # (memchr first)
        text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = text.strip()
    for name in names:
        if name and text.startswith(name + ":"):
            return text[len(name) + 1 :].lstrip()
    return text


def digest(text: str) -> str:
    """The key of a normalised text: a short BLAKE2b hex digest."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


@functools.lru_cache(maxsize=8192)
def _keyed(text: str, names: tuple[str, ...]) -> tuple[str, str]:
    """A message's normalised text and key. Front ends send the whole dialogue with every
    request, so the same texts come again and again: they are worked out once."""
    normal = normalise(text, names)
    return normal, digest(normal)


class Message(msgspec.Struct, frozen=True, gc=False):
    """One request message as the wire layer parsed it: role system, user or assistant.
    (Structs: a request brings the whole dialogue, hundreds of these, every time.)"""

    role: str
    text: str
    name: str | None = None


class Line(msgspec.Struct, frozen=True, gc=False):
    """One dialogue message: its role, normalised text and key."""

    role: Role
    text: str
    key: str


@dataclass(frozen=True)
class Dialogue:
    """The dialogue of a request, apart from its system messages.

    ``preamble`` is the system text before the first dialogue message (character card,
    persona), ``trailing`` the system text after the last one (an instruction, a continue
    nudge, Post-History Instructions), ``request_key`` identifies the whole request (same
    model, messages and ``n`` give the same key).
    """

    lines: tuple[Line, ...]
    preamble: str = ""
    trailing: str = ""
    request_key: str = ""
    continue_flag: bool = False


def extract(
    messages: Sequence[Message],
    *,
    names: Iterable[str] = (),
    continue_flag: bool = False,
    salt: str = "",
) -> Dialogue:
    """Split request messages into the dialogue and its system text.

    System messages in the middle of the dialogue (depth injections) are dropped, as is
    SillyTavern's example dialogue. ``salt`` goes into the request key (model, ``n``).
    """
    speakers = tuple(names)
    lines: list[Line] = []
    preamble: list[str] = []
    trailing: list[str] = []
    parts = [salt]
    for message in messages:
        role, text = message.role, message.text
        parts += ("\x1e", role, "\x1f", text)
        if role == "user" or role == "assistant":
            name = message.name
            normal, key = _keyed(text, (name, *speakers) if name else speakers)
            lines.append(Line(role, normal, key))  # type: ignore[arg-type]  # (checked above)
            if trailing:
                trailing.clear()
        elif message.name not in _EXAMPLE_NAMES:
            (trailing if lines else preamble).append(text.strip())
    # One hash of the whole request (model, n, every role and text).
    request = hashlib.blake2b("".join(parts).encode("utf-8", "surrogatepass"), digest_size=16)
    return Dialogue(
        tuple(lines),
        "\n\n".join(p for p in preamble if p),
        "\n\n".join(t for t in trailing if t),
        request.hexdigest(),
        continue_flag,
    )


def is_task(dialogue: Dialogue, patterns: Iterable[str] = TASK_PATTERNS) -> bool:
    """Whether the request is a front end's background task (a title, tags, follow-ups):
    a single user message matching one of ``patterns`` (case-insensitive regexes)."""
    if len(dialogue.lines) != 1 or dialogue.lines[0].role != "user":
        return False
    text = dialogue.lines[0].text
    return any(re.search(p, text, re.IGNORECASE | re.MULTILINE) for p in patterns)


# --- the mirror -------------------------------------------------------------------------------


class MCandidate(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A candidate of a mirrored turn: its id and the keys it answers to (the key of its
    text, then of variants the front end showed: a prefix after Stop, a cosmetic edit).
    A msgspec Struct, so that a whole mirror is stored and read back in one call."""

    candidate_id: str
    keys: tuple[str, ...]


class MTurn(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A mirrored turn. ``turn_id`` is None for a user turn we sent whose id the service
    chose and we have not read back yet (the history has it)."""

    turn_id: str | None
    human: bool
    candidates: tuple[MCandidate, ...]
    primary: str | None = None

    def find(self, key: str) -> str | None:
        """The id of the candidate answering to ``key``, the primary one first."""
        found = None
        for candidate in self.candidates:
            if key in candidate.keys:
                if candidate.candidate_id == self.primary:
                    return self.primary
                if found is None:
                    found = candidate.candidate_id
        return found

    def ordered(self) -> tuple[MCandidate, ...]:
        """The candidates, the primary one first."""
        first = [c for c in self.candidates if c.candidate_id == self.primary]
        return (*first, *(c for c in self.candidates if c.candidate_id != self.primary))


@dataclass(frozen=True)
class Mirror:
    """What we know of a chat: its turns, oldest first.

    ``fresh``: the bridge made it and no request has been reconciled with it yet (just
    created, or copied at the greeting), so dialogue that matches nothing is appended
    (earlier exchanges imported) rather than treated as a divergence; an adopted chat
    (``model`` ``character:chat``) is not fresh. ``texts`` maps candidate ids to
    normalised text; only present right after the caller read the chat's history.
    """

    turns: tuple[MTurn, ...] = ()
    fresh: bool = False
    texts: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Prior:
    """The last request answered in this chat: what it produced and whether the client got it."""

    request_key: str
    turn_id: str
    candidate_ids: tuple[str, ...]
    delivered: bool


@dataclass(frozen=True)
class Policy:
    """Choices the user can configure (docs/bridge.md, "Policies").

    ``import_turns``: at most this many earlier exchanges the c.ai chat lacks are replayed
    (send + edit each); older ones are dropped. ``sync_truncation``: a reply the front end
    shows shortened (Stop, stop strings) is edited to that prefix instead of remembered as
    a variant. ``similarity``: at or above this ratio a changed message is cosmetic.
    ``instructions``: trailing system instructions without a new user message (impersonate,
    summaries) are rejected or run in a scratch copy. ``greeting``: "edit" makes the c.ai
    greeting equal to the front end's first assistant message on first contact.
    """

    import_turns: int = 4
    sync_truncation: bool = False
    similarity: float = 0.9
    instructions: Literal["reject", "scratch"] = "reject"
    greeting: Literal["keep", "edit"] = "keep"


# --- plans ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Select:
    """Make candidate ``candidate_id`` the primary one of turn ``turn`` (an index)."""

    turn: int
    candidate_id: str


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace the text of turn ``turn``: a new primary candidate."""

    turn: int
    text: str


@dataclass(frozen=True, slots=True)
class Alias:
    """No c.ai operation: remember that ``key`` shows candidate ``candidate_id`` of ``turn``."""

    turn: int
    candidate_id: str
    key: str


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete these turns (indices)."""

    turns: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Send:
    """Import one exchange the chat lacks: send ``text``, then edit the reply to
    ``reply_as`` (the front end's text) unless it is None. Not streamed to the client."""

    text: str
    reply_as: str | None


Step = Select | Edit | Alias | Delete | Send


@dataclass(frozen=True, slots=True)
class Generate:
    """Send ``text`` and stream the reply. ``key``: the key of ``text`` when it is one
    dialogue message (its line's key, so it is not worked out again), else empty."""

    text: str
    key: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Regenerate:
    """Stream a new candidate of turn ``turn`` (a swipe)."""

    turn: int


@dataclass(frozen=True, slots=True)
class Replay:
    """Answer with candidates already generated for this very request (a client retry)."""

    turn: int
    candidate_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse the request (HTTP 400) with this OpenAI error ``code``; nothing was changed."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Instruct:
    """Run ``text`` in a scratch copy of the chat made up to turn ``up_to``; the chat
    itself is left alone."""

    up_to: int
    text: str


@dataclass(frozen=True, slots=True)
class Branch:
    """Copy the chat up to and including turn ``up_to`` (-1: start a new chat), bind the
    conversation to the copy, then plan again against it."""

    up_to: int


@dataclass(frozen=True, slots=True)
class NewChat:
    """No chat yet: create one (with its greeting), then plan again."""


@dataclass(frozen=True, slots=True)
class NeedHistory:
    """Read the chat's history (texts and turn ids), then plan again."""

    reason: str


Action = Generate | Regenerate | Replay | Reject | Instruct | Branch | NewChat | NeedHistory


@dataclass(frozen=True)
class Plan:
    """What to do: ``steps`` in order, then ``action``. ``classes`` names every rule that
    applied (for logs and metrics), the deciding one last."""

    classes: tuple[str, ...]
    action: Action
    steps: tuple[Step, ...] = field(default=())

    @property
    def kind(self) -> str:
        return self.classes[-1] if self.classes else "none"


# --- alignment --------------------------------------------------------------------------------

Pair = tuple[int, int, str]  # (line index, turn index, matched candidate id)


def _match(line: Line, turn: MTurn) -> str | None:
    if (line.role == "user") != turn.human:
        return None
    return turn.find(line.key)


def _walk(lines: Sequence[Line], turns: Sequence[MTurn], i: int, j: int) -> list[Pair] | None:
    """Pairs matched walking back from (i, j) one for one, if the walk reaches the start
    of the dialogue or of the chat (a contiguous tail, possibly head-truncated)."""
    pairs: list[Pair] = []
    while i >= 0 and j >= 0:
        found = _match(lines[i], turns[j])
        if found is None:
            return None
        pairs.append((i, j, found))
        i, j = i - 1, j - 1
    pairs.reverse()
    return pairs or None


def _lcs(lines: Sequence[Line], turns: Sequence[MTurn]) -> list[Pair]:
    """The longest common subsequence of the tails (WINDOW each), latest matches preferred."""
    i0, j0 = max(0, len(lines) - WINDOW), max(0, len(turns) - WINDOW)
    t, s = lines[i0:], turns[j0:]
    n, m = len(t), len(s)
    match = [[_match(t[i], s[j]) for j in range(m)] for i in range(n)]
    length = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n):
        row, below = length[i], length[i + 1]
        for j in range(m):
            if match[i][j] is not None:
                below[j + 1] = row[j] + 1
            else:
                below[j + 1] = max(row[j + 1], below[j])
    pairs: list[Pair] = []
    i, j = n, m
    while i > 0 and j > 0:
        found = match[i - 1][j - 1]
        if found is not None and length[i][j] == length[i - 1][j - 1] + 1:
            pairs.append((i0 + i - 1, j0 + j - 1, found))
            i, j = i - 1, j - 1
        elif length[i - 1][j] >= length[i][j - 1]:
            i -= 1
        else:
            j -= 1
    pairs.reverse()
    return pairs


def align(lines: Sequence[Line], turns: Sequence[MTurn]) -> list[Pair]:
    """Match dialogue lines to mirrored turns, anchored on the tail.

    The common shapes (a new message, a swipe, a continue) are a contiguous run ending at
    the chat's last or next-to-last turn and are found in one walk; anything else falls
    back to a longest common subsequence over the last WINDOW messages and turns.
    """
    n, m = len(lines), len(turns)
    for back_line, back_turn in ((0, 1), (1, 0), (0, 0)):
        i, j = n - 1 - back_line, m - 1 - back_turn
        if i >= 0 and j >= 0:
            pairs = _walk(lines, turns, i, j)
            if pairs is not None:
                return pairs
    return _lcs(lines, turns)


def score(dialogue: Dialogue, mirror: Mirror) -> tuple[int, int] | None:
    """How well a chat fits a dialogue (higher is better), or None if it does not fit:
    (index of the last matched message, number of matched messages). A fit needs at least
    one of the user's messages matched; the greeting alone proves nothing."""
    pairs = align(dialogue.lines, mirror.turns)
    if not any(mirror.turns[j].human for _, j, _ in pairs):
        return None
    return pairs[-1][0], len(pairs)


# --- classification ---------------------------------------------------------------------------


@dataclass
class _Work:
    """The plan being built."""

    dialogue: Dialogue
    mirror: Mirror
    policy: Policy
    steps: list[Step] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)

    def done(self, cls: str, action: Action) -> Plan:
        classes = [c for i, c in enumerate(self.classes) if c not in self.classes[:i]]
        return Plan((*classes, cls), action, tuple(self.steps))

    def note(self, cls: str) -> None:
        self.classes.append(cls)


def _similar(a: str, b: str, threshold: float) -> bool:
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return matcher.real_quick_ratio() >= threshold and matcher.ratio() >= threshold


def _compare(work: _Work, line: Line, j: int) -> NeedHistory | None:
    """A dialogue line in the place of turn ``j`` that matches none of its keys: remember it
    as a variant (prefix, cosmetic change) or edit the turn. Needs the texts."""
    texts = work.mirror.texts
    if texts is None:
        return NeedHistory("a message differs from the mirror")
    turn = work.mirror.turns[j]
    for candidate in turn.ordered():
        full = texts.get(candidate.candidate_id)
        if full is None:
            continue
        prefix = full.startswith(line.text)
        if prefix and work.policy.sync_truncation and not turn.human:
            break
        if prefix or _similar(line.text, full, work.policy.similarity):
            work.note("truncated" if prefix else "cosmetic")
            work.steps.append(Alias(j, candidate.candidate_id, line.key))
            if candidate.candidate_id != turn.primary:
                work.note("select")
                work.steps.append(Select(j, candidate.candidate_id))
            return None
    work.note("edit")
    work.steps.append(Edit(j, line.text))
    return None


def _middle(work: _Work, pairs: Sequence[Pair]) -> NeedHistory | None:
    """Gaps between matched pairs: same-shaped replacements are edits, the rest is noise
    (injected messages, messages hidden in the front end). Non-primary matches are selected."""
    lines, turns = work.dialogue.lines, work.mirror.turns
    for (i, j, cand), (i2, j2, _) in itertools.pairwise(pairs):
        if i2 == i + 1 and j2 == j + 1:  # Next to each other: the usual case.
            if cand != turns[j].primary:
                _select(work, j, cand)
            continue
        gap_lines, gap_turns = lines[i + 1 : i2], range(j + 1, j2)
        same = len(gap_lines) == len(gap_turns) and all(
            (line.role == "user") == turns[k].human
            for line, k in zip(gap_lines, gap_turns, strict=True)
        )
        if gap_lines and same:
            for line, k in zip(gap_lines, gap_turns, strict=True):
                if (need := _compare(work, line, k)) is not None:
                    return need
        elif gap_lines or gap_turns:
            work.note("noise")
        _select(work, j, cand)
    if pairs:
        _select(work, pairs[-1][1], pairs[-1][2])
    return None


def _select(work: _Work, j: int, candidate_id: str) -> None:
    turn = work.mirror.turns[j]
    if not turn.human and candidate_id != turn.primary:
        work.note("select")
        work.steps.append(Select(j, candidate_id))


def _join(lines: Sequence[Line]) -> str:
    return "\n\n".join(line.text for line in lines)


def _append(work: _Work, new: Sequence[Line], *, adopt: bool = False) -> Plan:
    """Messages the chat lacks, ending with the user's: import earlier exchanges, then send
    the last user message(s). Consecutive user messages become one c.ai turn."""
    exchanges: list[Send] = []
    users: list[Line] = []
    replies: list[Line] = []
    for line in new:
        if line.role == "user":
            if replies:
                exchanges.append(Send(_join(users), _join(replies)))
                users, replies = [], []
            users.append(line)
        elif users:
            replies.append(line)
        else:
            work.note("noise")  # A reply to nothing we could send (e.g. a foreign greeting).
    keep = 0 if adopt else max(0, work.policy.import_turns)
    if len(exchanges) > keep:
        work.note("import_truncated")
        exchanges = exchanges[len(exchanges) - keep :] if keep else []
    if exchanges:
        work.note("import")
        work.steps.extend(exchanges)
    if len(users) > 1:
        work.note("merged")
    return work.done("new_turn", Generate(_join(users), users[0].key if len(users) == 1 else ""))


def _ends_with_reply(work: _Work, pairs: Sequence[Pair]) -> Plan:
    """The dialogue ends with an assistant message: nothing to answer. A continue (c.ai
    cannot continue a reply) or a trailing instruction (impersonate, summaries)."""
    d = work.dialogue
    instruction = bool(d.trailing) and not d.continue_flag and not _CONTINUE_NUDGE.match(d.trailing)
    if not instruction:
        return work.done(
            "continue",
            Reject(
                "unsupported_continue",
                "Character.AI cannot continue a reply; send a new message or regenerate",
            ),
        )
    if work.policy.instructions == "scratch" and pairs and work.mirror.turns:
        return work.done("instruction", Instruct(pairs[-1][1], d.trailing))
    return work.done(
        "instruction",
        Reject(
            "unsupported_instruction",
            "an instruction after the last reply (impersonate, summaries, quiet prompts) is "
            "not sent into the chat; this bridge rejects it (see docs/bridge.md)",
        ),
    )


def _unmatched(work: _Work, adopt: bool) -> Plan:
    """Nothing of the dialogue is in the chat."""
    turns, lines = work.mirror.turns, work.dialogue.lines
    if work.mirror.fresh:
        work.note("first_contact")
        if work.policy.greeting == "edit" and lines[0].role == "assistant" and not turns[-1].human:
            work.note("greeting")
            work.steps.append(Edit(len(turns) - 1, lines[0].text))
        return _append(work, lines)
    if adopt:
        work.note("adopt")
        return _append(work, lines[-1:], adopt=True)
    return work.done("branch", Branch(0 if not turns[0].human else -1))


def _swipe(work: _Work, j: int, prior: Prior | None, retry: int) -> Plan:
    """Case 2 of the reconcile rules (docs/bridge.md): the request ends at the user message before
    reply ``j``."""
    turn = work.mirror.turns[j]
    if (
        prior is not None
        and prior.request_key == work.dialogue.request_key
        and prior.turn_id == turn.turn_id
        and (not prior.delivered or retry > 0)
    ):
        return work.done("replay", Replay(j, prior.candidate_ids))
    return work.done("swipe", Regenerate(j))


def _needs_ids(work: _Work, plan: Plan) -> Plan:
    """Steps naming a turn whose id we have not read back must wait for the history."""
    turns = work.mirror.turns
    used: list[int] = []
    for step in plan.steps:
        if isinstance(step, (Select, Edit, Alias)):
            used.append(step.turn)
        elif isinstance(step, Delete):
            used.extend(step.turns)
    if isinstance(plan.action, (Regenerate, Replay, Instruct, Branch)):
        up_to = getattr(plan.action, "turn", getattr(plan.action, "up_to", -1))
        used.append(up_to)
    if any(k >= 0 and turns[k].turn_id is None for k in used):
        return Plan(plan.classes, NeedHistory("turn ids"))
    return plan


def plan(
    dialogue: Dialogue,
    mirror: Mirror,
    *,
    prior: Prior | None = None,
    retry: int = 0,
    policy: Policy | None = None,
    adopt: bool = False,
    certain: bool = False,
) -> Plan:
    """What to do with ``dialogue`` given the chat's ``mirror``.

    ``prior`` is the chat's last answered request, ``retry`` the client's retry count
    (``x-stainless-retry-count``). ``adopt``: the chat was pinned by the user (``model``
    ``character:chat``), so a dialogue that matches nothing continues it. ``certain``: the
    conversation was named by an explicit id, so deleting a short tail is safe even when
    the only evidence is the greeting.
    """
    work = _Work(dialogue, mirror, policy or Policy())
    result = _plan(work, prior, retry, adopt, certain)
    return _needs_ids(work, result)


def _plan(work: _Work, prior: Prior | None, retry: int, adopt: bool, certain: bool) -> Plan:
    lines, turns = work.dialogue.lines, work.mirror.turns
    if not lines:
        return work.done("empty", Reject("no_dialogue", "messages has no user message"))
    if work.dialogue.continue_flag or lines[-1].role == "assistant":
        return _ends_with_reply(work, align(lines, turns) if turns else [])
    if not turns:
        return work.done("first_contact", NewChat())
    pairs = align(lines, turns)
    if not pairs:
        return _unmatched(work, adopt)
    if (need := _middle(work, pairs)) is not None:
        return work.done("refresh", need)
    return _tail(work, pairs, prior, retry, certain)


def _tail(
    work: _Work, pairs: Sequence[Pair], prior: Prior | None, retry: int, certain: bool
) -> Plan:
    """Classify what follows the last matched pair (docs/bridge.md, the reconcile rules, cases
    1–8)."""
    lines, turns = work.dialogue.lines, work.mirror.turns
    q, p = pairs[-1][0], pairs[-1][1]
    old, new = list(range(p + 1, len(turns))), list(lines[q + 1 :])
    if old and new and new[0].role == "assistant" and not turns[old[0]].human:
        # The reply after the last match was edited, cut short or restyled in the front end.
        if (need := _compare(work, new[0], old[0])) is not None:
            return work.done("refresh", need)
        p, q, old, new = old[0], q + 1, old[1:], new[1:]
    if turns[p].human and not old:
        # The chat ends with a user turn that has no reply: send that message again.
        work.note("resend")
        work.steps.append(Delete((p,)))
        new = [lines[q], *new]
        p -= 1
    elif turns[p].human and not new:
        return _regenerate(work, p, old, prior, retry, certain or _evidence(pairs, turns))
    if not old:
        return _append(work, new)
    destructive_ok = certain or _evidence(pairs, turns)
    if len(old) > 2 or len(new) > 1 or not destructive_ok:
        return work.done("branch", Branch(p))
    shape = len(old) == 2 and turns[old[0]].human and not turns[old[1]].human
    work.note("edit_last_user" if shape else "delete_tail")
    work.steps.append(Delete(tuple(old)))
    return _append(work, new)


def _regenerate(
    work: _Work, p: int, old: list[int], prior: Prior | None, retry: int, destructive_ok: bool
) -> Plan:
    """The dialogue ends with user turn ``p``, which has a reply (``old[0]``): a swipe, a
    retry, or a swipe after deleting what followed."""
    turns = work.mirror.turns
    if turns[old[0]].human:  # Two user turns in a row in the chat: start over from p.
        return work.done("branch", Branch(p - 1))
    extra = old[1:]
    if extra and (len(extra) > 2 or not destructive_ok):
        return work.done("branch", Branch(p - 1))
    if extra:
        work.note("delete_tail")
        work.steps.append(Delete(tuple(extra)))
    return _swipe(work, old[0], prior, retry)


def _evidence(pairs: Sequence[Pair], turns: Sequence[MTurn]) -> bool:
    """Whether the match is strong enough to delete turns: it includes a generated reply
    (a character turn after the first one), not just the greeting and a user message."""
    return any(j > 0 and not turns[j].human for _, j, _ in pairs)
