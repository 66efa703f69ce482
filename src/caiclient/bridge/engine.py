"""The bridge's engine: a completion request in, c.ai operations done, reply events out.

It resolves ``model`` to a character, finds (or creates) the chat of the conversation,
asks :mod:`.reconcile` what to do, performs that through the library's public
``AsyncClient`` (``client.chats.*``), keeps the state store up to date and yields
:class:`Delta`/:class:`Finish`/:class:`Done` events for the HTTP layer. Every reconcile
decision is logged at info level (logger ``caiclient.bridge``) with its class, and every
c.ai operation at info level on ``caiclient.bridge.ops``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Literal, TypeVar, cast

import msgspec

from ..client import AsyncClient
from ..errors import CharacterNotFound, ChatNotFound, ProtocolError, ValidationError
from ..models import Author, Candidate, Chat, Turn, TurnKey
from ..protocol.stream import ReplyChunk
from . import reconcile as rc
from ._generation import (
    Delta,
    Done,
    Event,
    Finish,
    Generation,
    Sink,
    keys_of,
    piece_of,
    settle,
    with_candidate,
)
from .metrics import Metrics
from .state import ChatRecord, Reply, Store
from .wire import ChatRequest, Truncator, WireError

__all__ = ["BridgeConfig", "Engine", "RequestContext", "Target"]

T = TypeVar("T")
log = logging.getLogger("caiclient.bridge")
ops = logging.getLogger("caiclient.bridge.ops")

_CHARACTER_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
SCRATCH = "!scratch"


@dataclass(frozen=True)
class BridgeConfig:
    """How the bridge behaves (``create_app`` takes these as keywords; docs/bridge.md).

    ``aliases`` maps model names to ``character_id`` or ``character_id:chat_id``;
    ``system`` says what becomes of system prompts ("ignore", or "first_message": put
    before the first message sent into a new chat, once); ``tasks`` whether front-end
    background tasks (titles, tags) run in a scratch chat or are rejected;
    ``partition_by_user``: the body's ``user`` separates conversations (only if the front
    end sends a stable one, as LibreChat does).
    """

    aliases: Mapping[str, str] = field(default_factory=dict)
    policy: rc.Policy = field(default_factory=rc.Policy)
    system: Literal["ignore", "first_message"] = "ignore"
    tasks: Literal["scratch", "reject"] = "scratch"
    task_patterns: tuple[str, ...] = rc.TASK_PATTERNS
    partition_by_user: bool = False
    max_n: int = 4
    timeout: float = 120.0
    lock_timeout: float = 60.0
    models_ttl: float = 300.0


@dataclass
class RequestContext:
    """One request as the HTTP layer saw it, and what the engine did with it."""

    tenant: str = "default"
    conversation: str | None = None
    retry: int = 0
    classes: list[str] = field(default_factory=list)
    side_effects: bool = False


@dataclass(frozen=True)
class Target:
    """What ``model`` names: a character, optionally a pinned chat or one-shot mode."""

    character_id: str
    name: str
    creator: str
    chat_id: str | None = None
    oneshot: bool = False


def _turn(chat_id: str, mturn: rc.MTurn, character_id: str) -> Turn:
    """A Turn handle for the client's calls, built from the mirror."""
    return Turn(
        turn_key=TurnKey(chat_id=chat_id, turn_id=mturn.turn_id or ""),
        author=Author(author_id="" if mturn.human else character_id, is_human=mturn.human),
        candidates=[Candidate(candidate_id=c.candidate_id) for c in mturn.candidates],
        primary_candidate_id=mturn.primary,
    )


def _alias(mturn: rc.MTurn, candidate_id: str, key: str) -> rc.MTurn:
    candidates = tuple(
        msgspec.structs.replace(c, keys=(*c.keys, key))
        if c.candidate_id == candidate_id and key not in c.keys
        else c
        for c in mturn.candidates
    )
    return msgspec.structs.replace(mturn, candidates=candidates)


def _shown(action: object) -> str:
    """An action for the decision log, each message text replaced by its length: the log
    says what was decided, not what was written (chat content stays out of logs)."""
    if not dataclasses.is_dataclass(action):
        return repr(action)
    fields = []
    for spec in dataclasses.fields(action):
        value = getattr(action, spec.name)
        if spec.name in _TEXTS and isinstance(value, str):
            fields.append(f"{spec.name}=<{len(value)} chars>")
        else:
            fields.append(f"{spec.name}={value!r}")
    return f"{type(action).__name__}({', '.join(fields)})"


_TEXTS = frozenset({"text", "reply_as"})  # The fields of actions that hold message text.


def _mirror_turns(history: Iterable[Turn], old: rc.Mirror) -> rc.Mirror:
    """A mirror read from the chat's history, with texts; remembered variants are kept."""
    known = {c.candidate_id: c.keys for t in old.turns for c in t.candidates}
    # A message sent by the bridge has no candidate id in the mirror: its keys (the
    # dialogue's, when a preamble went before it) are found by the key of the text sent.
    unnamed = {
        k: c.keys for t in old.turns for c in t.candidates if not c.candidate_id for k in c.keys
    }
    texts: dict[str, str] = {}
    turns = []
    for turn in history:
        candidates = []
        for candidate in turn.candidates:
            text = rc.normalise(candidate.raw_content)
            texts[candidate.candidate_id] = text
            key = rc.digest(text)
            keys = (key, *known.get(candidate.candidate_id, unnamed.get(key, ())))
            candidates.append(rc.MCandidate(candidate.candidate_id, tuple(dict.fromkeys(keys))))
        primary = turn.primary
        turns.append(
            rc.MTurn(
                turn.turn_id,
                turn.is_human,
                tuple(candidates),
                primary.candidate_id if primary is not None else None,
            )
        )
    return rc.Mirror(tuple(turns), fresh=old.fresh, texts=texts)


class _Job:
    """One request's chat while the engine works on it."""

    def __init__(self, record: ChatRecord, mirror: rc.Mirror) -> None:
        self.record = record
        self.turns = list(mirror.turns)
        self.fresh = mirror.fresh
        self.anchor = -1  # The turn the action is about (regenerated, replayed, copied up to).

    @property
    def chat(self) -> Chat:
        return Chat(chat_id=self.record.chat_id, character_id=self.record.character_id)

    def mirror(self) -> rc.Mirror:
        return rc.Mirror(tuple(self.turns), fresh=self.fresh)

    def handle(self, mturn: rc.MTurn) -> Turn:
        return _turn(self.record.chat_id, mturn, self.record.character_id)

    def saved(self, *, stale: bool, reply: Reply | None) -> ChatRecord:
        r = self.record  # (Built directly: dataclasses.replace costs several times more.)
        self.record = ChatRecord(
            r.chat_id, r.partition, r.conversation, r.character_id, self.mirror(), stale,
            reply, time.time(),
        )  # fmt: skip
        return self.record


class Engine:
    """Turns completion requests into c.ai operations over one ``AsyncClient``."""

    def __init__(
        self, client: AsyncClient, store: Store, config: BridgeConfig, metrics: Metrics
    ) -> None:
        self.client = client
        self.store = store
        self.config = config
        self.metrics = metrics
        self._characters: dict[str, tuple[float, Target]] = {}
        self._models: tuple[float, list[dict[str, object]]] | None = None

    # --- model → character ------------------------------------------------------------------

    async def target(self, model: str) -> Target:
        """Resolve ``model`` (alias, ``character``, ``character:chat``, ``character:new``,
        ``character:oneshot``). Raises WireError 404 ``model_not_found``."""
        name = self.config.aliases.get(model, model)
        character_id, _, suffix = name.partition(":")
        if not _CHARACTER_ID.fullmatch(character_id):
            raise _model_not_found(model)
        base = await self._character(character_id, model)
        if suffix in ("", "new"):
            return base
        if suffix == "oneshot":
            return dataclasses.replace(base, oneshot=True)
        try:
            chat = await self.client.chats.get(suffix, timeout=self.config.timeout)
        except (ChatNotFound, ValidationError):
            raise _model_not_found(model) from None
        if chat.character_id != character_id:
            raise _model_not_found(model)
        return dataclasses.replace(base, chat_id=chat.chat_id)

    async def _character(self, character_id: str, model: str) -> Target:
        now = time.monotonic()
        cached = self._characters.get(character_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            info = await self.client.characters.info(character_id, timeout=self.config.timeout)
        except CharacterNotFound:
            raise _model_not_found(model) from None
        target = Target(character_id, info.name, info.creator_username or "character.ai")
        self._characters[character_id] = (now + self.config.models_ttl, target)
        return target

    async def models(self) -> list[dict[str, object]]:
        """The aliases and the characters of the account's recent chats (cached)."""
        now = time.monotonic()
        if self._models is not None and self._models[0] > now:
            return self._models[1]
        models: dict[str, dict[str, object]] = {}
        for alias in self.config.aliases:
            target = await self.target(alias)
            models[alias] = {"id": alias, "name": target.name, "owned_by": target.creator}
        for chat in await self.client.chats.recent(timeout=self.config.timeout):
            if chat.character_id not in models:
                created = int(chat.create_time.timestamp()) if chat.create_time else 0
                models[chat.character_id] = {
                    "id": chat.character_id,
                    "name": chat.character_name or chat.character_id,
                    "created": created,
                    "owned_by": "character.ai",
                }
        listed = list(models.values())
        self._models = (now + self.config.models_ttl, listed)
        return listed

    def _listed(self, character_id: str) -> None:
        """A chat with ``character_id`` was made: if the cached listing lacks it, the next
        listing reads the recent chats again (so it shows the character just talked to)."""
        if self._models is not None and all(m["id"] != character_id for m in self._models[1]):
            self._models = None

    # --- a completion -----------------------------------------------------------------------

    async def complete(self, req: ChatRequest, ctx: RequestContext, sink: Sink) -> None:
        """Answer ``req``: its events go to ``sink`` in batches, the events of a batch
        ready together (write them to the client in one go); the last batch ends with
        Done, and once ``sink`` returned from it the answer is recorded as delivered.
        Raises WireError and the client's errors (after the first batch, errors mean the
        answer broke off) and the sink's ConnectionError."""
        target = await self.target(req.model)
        dialogue = rc.extract(
            req.messages,
            names=(target.name,),
            continue_flag=req.continue_flag,
            salt=f"{req.model}\x1f{req.n}",
        )
        partition = f"{ctx.tenant}\x1f{target.character_id}"
        if self.config.partition_by_user and req.user:
            partition += f"\x1f{req.user}"
        if target.oneshot or rc.is_task(dialogue, self.config.task_patterns):
            await self._task(req, dialogue, target, partition, ctx, sink)
            return
        if ctx.conversation is not None:
            lock = f"c\x1f{partition}\x1f{ctx.conversation}"
        elif target.chat_id is not None:
            lock = f"p\x1f{target.chat_id}"
        else:
            lock = f"i\x1f{partition}"
        async with self.store.lock(lock, self.config.lock_timeout):
            job, plan = await self._prepare(req, dialogue, target, partition, ctx)
            await self._answer(req, dialogue, job, plan, ctx, sink)

    def _decided(self, plan: rc.Plan, record: ChatRecord | None, ctx: RequestContext) -> None:
        if log.isEnabledFor(logging.INFO):
            chat = record.chat_id[:8] if record is not None else "-"
            classes = "+".join(plan.classes)
            log.info("reconcile %s -> %s (chat %s)", classes, _shown(plan.action), chat)
        for cls in plan.classes:
            if cls not in ctx.classes:  # Each class once per request.
                self.metrics.reconcile(cls)
                ctx.classes.append(cls)

    async def _find(
        self, dialogue: rc.Dialogue, target: Target, partition: str, ctx: RequestContext
    ) -> ChatRecord | None:
        """The chat serving this conversation: by explicit id, pinned chat, or best match."""
        if ctx.conversation is not None:
            records = await self.store.conversation(partition, ctx.conversation)
        elif target.chat_id is not None:
            record = await self.store.get(target.chat_id)
            records = [record] if record is not None else []
        else:
            keys = [line.key for line in dialogue.lines[-4:]]
            records = await self.store.matching(partition, keys)
        if target.chat_id is not None and not any(r.chat_id == target.chat_id for r in records):
            return await self._adopt(target, partition, ctx)
        if ctx.conversation is not None and len(records) == 1:
            return records[0]  # The conversation's only chat, whether it fits or not.
        best: tuple[tuple[int, int], ChatRecord] | None = None
        for record in records:  # Most recently used first: ties go to it.
            fit = rc.score(dialogue, record.mirror)
            if fit is not None and (best is None or fit > best[0]):
                best = (fit, record)
        if best is None and ctx.conversation is not None and records:
            return records[0]  # The conversation's chat, even if nothing matches any more.
        return best[1] if best is not None else None

    async def _adopt(self, target: Target, partition: str, ctx: RequestContext) -> ChatRecord:
        """Start serving an existing c.ai chat named by ``model`` (``character:chat``)."""
        assert target.chat_id is not None
        # Not fresh: the chat is the user's, not new (a dialogue that matches nothing of it
        # adds only its last message, and no system text is put into it).
        record = ChatRecord(
            target.chat_id, partition, ctx.conversation, target.character_id, rc.Mirror()
        )
        mirror = await self._history(record)
        return dataclasses.replace(record, mirror=rc.Mirror(mirror.turns))

    async def _history(self, record: ChatRecord) -> rc.Mirror:
        ops.info("history chat=%s", record.chat_id)
        history = await self.client.chats.history(
            record.chat_id, all_candidates=True, timeout=self.config.timeout
        )
        return _mirror_turns(history, record.mirror)

    async def _prepare(
        self,
        req: ChatRequest,
        dialogue: rc.Dialogue,
        target: Target,
        partition: str,
        ctx: RequestContext,
    ) -> tuple[_Job, rc.Plan]:
        """Find the chat and plan, following redirects (refresh, create, branch)."""
        record = await self._find(dialogue, target, partition, ctx)
        mirror = record.mirror if record is not None else rc.Mirror()
        if record is not None and record.stale:
            mirror = await self._history(record)
        for _ in range(6):
            plan = rc.plan(
                dialogue,
                mirror,
                prior=_prior(record),
                retry=ctx.retry,
                policy=self.config.policy,
                adopt=target.chat_id is not None,
                certain=ctx.conversation is not None or target.chat_id is not None,
            )
            self._decided(plan, record, ctx)
            action = plan.action
            if isinstance(action, rc.Reject):
                raise WireError(action.message, code=action.code)
            if isinstance(action, rc.NewChat):
                record, mirror = await self._create(target, partition, ctx)
                continue
            if record is None:
                break
            if isinstance(action, rc.NeedHistory):
                if mirror.texts is not None:
                    break
                mirror = await self._history(record)
            elif isinstance(action, rc.Branch):
                record, mirror = await self._branch(record, mirror, action.up_to, target, ctx)
            else:
                job = _Job(record, mirror)
                anchor = _anchor(mirror, action)
                await self._steps(job, plan.steps, ctx)
                job.anchor = _locate(job, anchor)
                return job, plan
        raise ProtocolError(f"the bridge could not settle this request ({plan.classes})")

    async def _create(
        self, target: Target, partition: str, ctx: RequestContext
    ) -> tuple[ChatRecord, rc.Mirror]:
        ops.info("create character=%s", target.character_id)
        ctx.side_effects = True
        chat, greeting = await self.client.chats.create(
            target.character_id, timeout=self.config.timeout
        )
        self._listed(target.character_id)
        turns: tuple[rc.MTurn, ...] = ()
        if greeting is not None and greeting.primary is not None:
            g = greeting.primary
            turns = (
                rc.MTurn(
                    greeting.turn_id,
                    False,
                    (rc.MCandidate(g.candidate_id, keys_of(g.raw_content)),),
                    g.candidate_id,
                ),
            )
        mirror = rc.Mirror(turns, fresh=True)
        record = ChatRecord(
            chat.chat_id,
            partition,
            ctx.conversation,
            target.character_id,
            mirror,
            last_used=time.time(),
        )
        await self.store.put(record)
        return record, mirror

    async def _branch(
        self,
        record: ChatRecord,
        mirror: rc.Mirror,
        up_to: int,
        target: Target,
        ctx: RequestContext,
    ) -> tuple[ChatRecord, rc.Mirror]:
        """Copy the chat up to turn ``up_to`` (the original is left as it is)."""
        if up_to < 0:
            return await self._create(target, record.partition, ctx)
        turn = mirror.turns[up_to]
        ops.info("copy chat=%s up_to=%s", record.chat_id, turn.turn_id)
        ctx.side_effects = True
        assert turn.turn_id is not None
        copy = await self.client.chats.copy(
            record.chat_id, up_to=turn.turn_id, timeout=self.config.timeout
        )
        branch = ChatRecord(
            copy.chat_id,
            record.partition,
            record.conversation,
            record.character_id,
            rc.Mirror(mirror.turns[: up_to + 1], fresh=up_to == 0),
            last_used=time.time(),
        )
        fresh = await self._history(branch)
        branch = dataclasses.replace(branch, mirror=rc.Mirror(fresh.turns, fresh=up_to == 0))
        await self.store.put(branch)
        return branch, dataclasses.replace(fresh, fresh=up_to == 0)

    async def _steps(self, job: _Job, steps: Iterable[rc.Step], ctx: RequestContext) -> None:
        """Perform the plan's side effects in order, keeping the mirror in step."""
        targets = [(step, self._target_turn(job, step)) for step in steps]
        for step, mturns in targets:
            if not isinstance(step, rc.Alias):
                ctx.side_effects = True
            if isinstance(step, rc.Select):
                await self._select(job, mturns[0], step.candidate_id)
            elif isinstance(step, rc.Edit):
                await self._edit(job, mturns[0], step.text)
            elif isinstance(step, rc.Alias):
                i = job.turns.index(mturns[0])
                job.turns[i] = _alias(mturns[0], step.candidate_id, step.key)
            elif isinstance(step, rc.Delete):
                ids = [t.turn_id for t in mturns if t.turn_id]
                ops.info("delete chat=%s turns=%d", job.record.chat_id, len(ids))
                await self.client.chats.delete(job.chat, ids, timeout=self.config.timeout)
                job.turns = [t for t in job.turns if t not in mturns]
            else:
                await self._import(job, step)

    @staticmethod
    def _target_turn(job: _Job, step: rc.Step) -> list[rc.MTurn]:
        if isinstance(step, rc.Delete):
            return [job.turns[i] for i in step.turns]
        if isinstance(step, (rc.Select, rc.Edit, rc.Alias)):
            return [job.turns[step.turn]]
        return []

    async def _select(self, job: _Job, mturn: rc.MTurn, candidate_id: str) -> None:
        ops.info("select chat=%s turn=%s", job.record.chat_id, mturn.turn_id)
        await self.client.chats.select(job.handle(mturn), candidate_id, timeout=self.config.timeout)
        i = job.turns.index(mturn)
        job.turns[i] = msgspec.structs.replace(mturn, primary=candidate_id)

    async def _edit(self, job: _Job, mturn: rc.MTurn, text: str) -> rc.MTurn:
        ops.info("edit chat=%s turn=%s", job.record.chat_id, mturn.turn_id)
        edited = await self.client.chats.edit(job.handle(mturn), text, timeout=self.config.timeout)
        primary = edited.primary
        assert primary is not None
        i = job.turns.index(mturn)
        job.turns[i] = new = with_candidate(mturn, primary.candidate_id, keys_of(text))
        return new

    async def _import(self, job: _Job, step: rc.Send) -> None:
        """One exchange the chat lacks: send it, then make the reply say what the front end
        shows (one generation each; docs/bridge.md, "Replaying or importing history")."""
        ops.info("send chat=%s (import)", job.record.chat_id)
        reply = await self.client.chats.send(job.chat, step.text, timeout=self.config.timeout)
        user = rc.MTurn(None, True, (rc.MCandidate("", keys_of(step.text)),))
        job.turns.append(user)
        primary = reply.primary
        assert primary is not None
        mturn = rc.MTurn(
            reply.turn_id,
            False,
            (rc.MCandidate(primary.candidate_id, keys_of(primary.raw_content)),),
            primary.candidate_id,
        )
        job.turns.append(mturn)
        if step.reply_as is not None and keys_of(step.reply_as)[0] not in mturn.candidates[0].keys:
            await self._edit(job, mturn, step.reply_as)

    # --- answering --------------------------------------------------------------------------

    async def _answer(
        self,
        req: ChatRequest,
        dialogue: rc.Dialogue,
        job: _Job,
        plan: rc.Plan,
        ctx: RequestContext,
        sink: Sink,
    ) -> None:
        action = plan.action
        if isinstance(action, rc.Replay):
            await self._replay(req, dialogue, job, action, sink)
            return
        if isinstance(action, rc.Instruct):
            await self._instruct(req, job, action, ctx, sink)
            return
        assert isinstance(action, (rc.Generate, rc.Regenerate))
        text = action.text if isinstance(action, rc.Generate) else ""
        if text and job.fresh and self.config.system == "first_message" and dialogue.preamble:
            text = f"{dialogue.preamble}\n\n{text}"
        run = Generation(self, req, job, action, text)
        reply = Reply(dialogue.request_key, None, (), delivered=False, done=False)
        await self._keep(job.saved(stale=True, reply=reply))
        ctx.side_effects = True
        delivered = False
        try:
            await run.choices(sink)
            await sink.send([Done()])
            delivered = True
        finally:
            out = run.outcome
            complete = len(out.generated) == req.n
            reply = Reply(
                dialogue.request_key, run.turn_id, tuple(out.generated), delivered,
                complete or out.aborted, out.aborted,
            )  # fmt: skip
            stale = not (complete and out.settled)
            await self._keep(job.saved(stale=stale, reply=reply))

    async def _keep(self, record: ChatRecord) -> None:
        """Record a mirror or reply update: batched where the store can, else written now
        (finished even if the request is cancelled meanwhile)."""
        if not self.store.defer(record):
            await settle(self.store.put(record))

    async def _replay(
        self, req: ChatRequest, dialogue: rc.Dialogue, job: _Job, action: rc.Replay, sink: Sink
    ) -> None:
        """A client retry of an answer already generated: the same candidates again."""
        mturn = job.turns[job.anchor]
        texts: dict[str, str] = {}
        ops.info("history chat=%s (replay)", job.record.chat_id)
        async for page in self.client.chats.iter_history(
            job.chat, all_candidates=True, timeout=self.config.timeout
        ):
            for turn in page:
                if turn.turn_id == mturn.turn_id:
                    texts = {c.candidate_id: c.raw_content for c in turn.candidates}
            if texts:
                break
        batch: list[Event] = []
        for index, candidate_id in enumerate(action.candidate_ids[: req.n]):
            cut = Truncator(req.stop, req.max_chars)
            text = cut.feed(texts.get(candidate_id, "")) + cut.flush()
            batch += [Delta(index, text), Finish(index, cut.finish or "stop", cut.shown)]
        await sink.send([*batch, Done()])
        reply = Reply(dialogue.request_key, mturn.turn_id, action.candidate_ids, True, True)
        # The client may hang up as soon as it has the answer (cancelling the request).
        await self._keep(job.saved(stale=False, reply=reply))

    async def _instruct(
        self, req: ChatRequest, job: _Job, action: rc.Instruct, ctx: RequestContext, sink: Sink
    ) -> None:
        """A one-shot instruction in a scratch copy of the chat, archived afterwards."""
        mturn = job.turns[job.anchor]
        assert mturn.turn_id is not None
        ops.info("copy chat=%s (instruction)", job.record.chat_id)
        ctx.side_effects = True
        copy = await self.client.chats.copy(
            job.chat, up_to=mturn.turn_id, timeout=self.config.timeout
        )
        try:
            await self._oneshot(req, copy, action.text, sink)
        finally:
            ops.info("archive chat=%s (instruction)", copy.chat_id)
            await settle(self.client.chats.archive(copy, timeout=self.config.timeout))
        await sink.send([Done()])

    async def _oneshot(self, req: ChatRequest, chat: Chat, text: str, sink: Sink) -> None:
        ops.info("stream chat=%s (one-shot)", chat.chat_id)
        cut = Truncator(req.stop, req.max_chars)
        stream = self.client.chats.stream(chat, text, timeout=self.config.timeout)
        async with aclosing(cast(AsyncGenerator[ReplyChunk, None], stream)) as chunks:
            async for chunk in chunks:
                piece = piece_of(chunk, cut)
                if piece:
                    await sink.send([Delta(0, piece)])
        tail = cut.flush()
        finish = Finish(0, cut.finish or "stop", cut.shown)
        await sink.send([Delta(0, tail), finish] if tail else [finish])

    async def _task(
        self,
        req: ChatRequest,
        dialogue: rc.Dialogue,
        target: Target,
        partition: str,
        ctx: RequestContext,
        sink: Sink,
    ) -> None:
        """A background task (title, tags) or a ``:oneshot`` model: the character's scratch
        chat answers it, and its turns are deleted afterwards."""
        self.metrics.reconcile("task")
        ctx.classes.append("task")
        log.info("reconcile task (character %s)", target.character_id)
        if self.config.tasks == "reject" and not target.oneshot:
            raise WireError(
                "background tasks are not sent to Character.AI", code="unsupported_task"
            )
        text = (
            "\n\n".join(line.text for line in dialogue.lines)
            if target.oneshot
            else dialogue.lines[-1].text
        )
        async with self.store.lock(f"s\x1f{partition}", self.config.lock_timeout):
            ctx.side_effects = True
            chat = await self._scratch(target, partition)
            try:
                await self._oneshot(req, chat, text, sink)
            finally:
                await settle(self._clear(chat))
        await sink.send([Done()])

    async def _scratch(self, target: Target, partition: str) -> Chat:
        """The character's scratch chat (made on first use)."""
        found = await self.store.conversation(partition, SCRATCH)
        if found:
            return Chat(chat_id=found[0].chat_id, character_id=target.character_id)
        ops.info("create character=%s (scratch)", target.character_id)
        chat, _ = await self.client.chats.create(
            target.character_id, greeting=False, timeout=self.config.timeout
        )
        self._listed(target.character_id)
        record = ChatRecord(
            chat.chat_id,
            partition,
            SCRATCH,
            target.character_id,
            rc.Mirror(),
            last_used=time.time(),
        )
        await self.store.put(record)
        return chat

    async def _clear(self, chat: Chat) -> None:
        async for page in self.client.chats.iter_history(chat, timeout=self.config.timeout):
            ops.info("delete chat=%s turns=%d (scratch)", chat.chat_id, len(page))
            await self.client.chats.delete(chat, page, timeout=self.config.timeout)
            break


def _anchor(mirror: rc.Mirror, action: rc.Action) -> str | None:
    """The id of the turn an action is about, found again after the steps ran."""
    if isinstance(action, (rc.Regenerate, rc.Replay)):
        return mirror.turns[action.turn].turn_id
    if isinstance(action, rc.Instruct):
        return mirror.turns[action.up_to].turn_id
    return None


def _locate(job: _Job, turn_id: str | None) -> int:
    if turn_id is None:
        return -1
    for i, mturn in enumerate(job.turns):
        if mturn.turn_id == turn_id:
            return i
    raise ProtocolError("a turn the plan needs disappeared from the mirror")


def _prior(record: ChatRecord | None) -> rc.Prior | None:
    reply = record.reply if record is not None else None
    if reply is None or not reply.done or reply.aborted or reply.turn_id is None:
        return None  # (A stopped reply is cut short: the same request again is a swipe.)
    return rc.Prior(reply.request_key, reply.turn_id, reply.candidate_ids, reply.delivered)


def _model_not_found(model: str) -> WireError:
    return WireError(
        f"The model {model!r} does not exist: use a character id, 'character_id:chat_id' or "
        "a configured alias (GET /v1/models lists them)",
        status=404,
        code="model_not_found",
        param="model",
    )
