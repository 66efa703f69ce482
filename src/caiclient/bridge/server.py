"""The bridge's HTTP layer (aiohttp.web): routes, SSE, errors, authentication.

``create_app`` builds an ``aiohttp.web.Application`` users can run or mount;
``serve`` runs one until cancelled; ``running`` is the same as an async context manager
(for tests and embedding). Routes, with or without the ``/v1`` prefix (SillyTavern adds
its own paths to whatever base URL was typed; doubled slashes are tolerated):
``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /v1/models/{id}``; also
``GET /health`` (no key needed) and, when enabled, ``GET /metrics``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import hmac
import ipaddress
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from aiohttp import web

from ..client import AsyncClient
from ..errors import (
    AuthError,
    BlockedError,
    CaiError,
    CharacterNotFound,
    Filtered,
    NotFound,
    RateLimited,
    Timeout,
    TransportError,
    ValidationError,
)
from . import wire
from ._generation import Delta, Done, Event, Finish
from .engine import BridgeConfig, Engine, RequestContext
from .metrics import CONTENT_TYPE, Metrics
from .state import Busy, StateUnavailable, Store, open_store

__all__ = ["LOOPBACK_HOSTS", "create_app", "is_loopback", "running", "serve", "tune_collector"]

log = logging.getLogger("caiclient.bridge")

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
ENGINE = web.AppKey("caiclient_bridge_engine", Engine)
SETTINGS = web.AppKey("caiclient_bridge_settings", dict)
_BASE = r"/{base:/*(?:v1/+)?}"
_SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
_CORS_HEADERS = (
    "authorization, content-type, x-conversation-id, x-session-id, x-openwebui-chat-id, "
    "openai-organization, openai-project"
)
_CONVERSATION_HEADERS = ("X-Conversation-Id", "X-Session-Id", "X-OpenWebUI-Chat-Id")


# --- errors in OpenAI's shape -------------------------------------------------------------------


def _mapping(exc: BaseException) -> tuple[int, str, str | None, dict[str, str]]:
    """(status, type, code, extra headers) for an error (docs/bridge.md, "Errors")."""
    if isinstance(exc, wire.WireError):
        return exc.status, exc.type, exc.code, exc.headers
    if isinstance(exc, RateLimited):
        wait = str(max(1, math.ceil(exc.retry_after or 1)))
        code = "conversation_busy" if isinstance(exc, Busy) else "rate_limit_exceeded"
        return 429, "rate_limit_error", code, {"Retry-After": wait}
    table: tuple[tuple[type[BaseException], int, str, str], ...] = (
        (AuthError, 401, "authentication_error", "upstream_auth"),
        (CharacterNotFound, 404, "invalid_request_error", "model_not_found"),
        (NotFound, 404, "invalid_request_error", "not_found"),
        (Filtered, 400, "invalid_request_error", "content_filter"),
        (ValidationError, 400, "invalid_request_error", "invalid_request"),
        (BlockedError, 502, "api_error", "upstream_blocked"),
        (StateUnavailable, 503, "api_error", "state_unavailable"),
        (Timeout, 504, "api_error", "timeout"),
        (TransportError, 502, "api_error", "upstream_unavailable"),
    )
    for kind, status, type_, code in table:
        if isinstance(exc, kind):
            return status, type_, code, {}
    return 502, "api_error", "upstream_error", {}


def _error_response(exc: BaseException, ctx: RequestContext | None) -> web.Response:
    status, type_, code, headers = _mapping(exc)
    param = exc.param if isinstance(exc, wire.WireError) else None
    message = exc.message if isinstance(exc, wire.WireError) else str(exc) or type(exc).__name__
    headers = dict(headers)
    if ctx is not None and ctx.side_effects and status >= 500:
        headers["x-should-retry"] = "false"  # c.ai was changed: a blind retry could double it.
    body = wire.error_body(message, type=type_, code=code, param=param)
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def _http_error(exc: web.HTTPException) -> web.Response:
    codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
    message = {
        404: "no such route; the bridge serves /v1/chat/completions and /v1/models",
        413: "the request body is larger than the bridge accepts",
    }.get(exc.status, exc.reason)
    body = wire.error_body(message, code=codes.get(exc.status))
    return web.Response(body=body, status=exc.status, content_type="application/json")


# --- middlewares --------------------------------------------------------------------------------


def _host_allowed(host: str, allowed: frozenset[str]) -> bool:
    host = host.lower()
    if host.startswith("["):
        name = host.split("]", 1)[0] + "]"
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in allowed or name.strip("[]") in allowed or name.endswith(".localhost")


def _cors_headers(request: web.Request, origins: frozenset[str]) -> dict[str, str]:
    origin = request.headers.get("Origin")
    if origin is None or not (origin in origins or "*" in origins):
        return {}
    asked = request.headers.get("Access-Control-Request-Headers", "")
    extra = [h.strip() for h in asked.split(",") if h.strip().lower().startswith("x-stainless-")]
    return {
        "Access-Control-Allow-Origin": origin,
        "Vary": "Origin",
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": ", ".join([_CORS_HEADERS, *extra]),
        "Access-Control-Max-Age": "600",
    }


def _authorised(request: web.Request, key: bytes) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), key)


def _middleware(settings: Mapping[str, Any], metrics: Metrics) -> Callable[..., Any]:
    allowed: frozenset[str] | None = settings["allowed_hosts"]
    origins: frozenset[str] = settings["cors"]
    key: bytes | None = settings["api_key"]

    @web.middleware
    async def guard(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        route = request.match_info.route.name or "other"
        if allowed is not None and not _host_allowed(request.host, allowed):
            # A web page must not reach the user's c.ai session through DNS rebinding.
            response: web.StreamResponse = web.Response(
                body=wire.error_body(
                    f"Host {request.host!r} is not allowed", code="forbidden_host"
                ),
                status=403,
                content_type="application/json",
            )
        elif request.method == "OPTIONS":
            cors = _cors_headers(request, origins)
            response = web.Response(status=204 if cors else 403, headers=cors)
        elif key is not None and route != "health" and not _authorised(request, key):
            response = web.Response(
                body=wire.error_body(
                    "missing or wrong API key (Authorization: Bearer <key>)",
                    code="invalid_api_key",
                ),
                status=401,
                content_type="application/json",
            )
        else:
            try:  # (Here, not in a coroutine of its own: one frame fewer to resume.)
                response = await handler(request)
            except web.HTTPException as exc:
                response = _http_error(exc)
            except (CaiError, StateUnavailable) as exc:
                _failed(exc, metrics)
                response = _error_response(exc, None)
        if not response.prepared:
            response.headers.update(_cors_headers(request, origins))
        metrics.request(route, response.status)
        return response

    return guard


def _failed(exc: CaiError | StateUnavailable, metrics: Metrics) -> None:
    """Count and log a request's failure (a WireError is the client's: not logged)."""
    metrics.error(type(exc).__name__)
    if not isinstance(exc, wire.WireError):
        log.info("request failed: %s: %s", type(exc).__name__, exc)


# --- chat completions ---------------------------------------------------------------------------


def _context(request: web.Request, req: wire.ChatRequest) -> RequestContext:
    conversation = req.conversation_id
    for name in _CONVERSATION_HEADERS:
        value = request.headers.get(name, "").strip()
        if value:
            conversation = value
            break
    try:
        retry = int(request.headers.get("x-stainless-retry-count", "0"))
    except ValueError:
        retry = 0
    return RequestContext(conversation=conversation, retry=max(0, retry))


async def _completions(request: web.Request) -> web.StreamResponse:
    engine = request.app[ENGINE]
    settings = request.app[SETTINGS]
    body = await request.read()
    req = wire.parse_request(body, max_n=engine.config.max_n)
    ctx = _context(request, req)
    answer: _Answer = (
        _Stream(request, req, ctx, settings["pinger"]) if req.stream else _Whole(request, req, ctx)
    )
    engine.metrics.in_flight += 1
    try:
        await engine.complete(req, ctx, answer)
    except (CaiError, StateUnavailable) as exc:
        _failed(exc, engine.metrics)
        if answer.response is None:
            return _error_response(exc, ctx)  # Nothing sent yet: a status of its own.
        await answer.broke_off(exc)
    except ConnectionError as exc:
        log.info("the client went away mid-stream (%s)", exc)
    finally:
        engine.metrics.in_flight -= 1
        answer.close()
    if answer.response is None:  # pragma: no cover - the engine ends with Done
        raise CaiError("the answer ended early")
    return answer.response


class _Answer:
    """One completion's response, which the engine sends its event batches to (a
    ``Sink``): nothing is sent before the first batch, so early failures get a real
    status; then a JSON body (:class:`_Whole`) or an SSE stream (:class:`_Stream`)."""

    def __init__(self, request: web.Request, req: wire.ChatRequest, ctx: RequestContext) -> None:
        self.request = request
        self.req = req
        self.ctx = ctx
        self.id = "chatcmpl-" + os.urandom(12).hex()
        self.created = int(time.time())
        self.response: web.StreamResponse | None = None

    def headers(self) -> dict[str, str]:
        # The response is sent here, not by the middleware: its CORS headers go with it.
        cors = _cors_headers(self.request, self.request.app[SETTINGS]["cors"])
        return {
            "X-Request-Id": self.id,
            "X-Usage-Estimated": "chars/4",
            "X-Bridge-Action": "+".join(self.ctx.classes) or "none",
            **cors,
        }

    def usage(self, texts: Iterable[str]) -> dict[str, int]:
        completion = sum(wire.estimate_tokens(t) for t in texts)
        prompt = sum([len(m.text) for m in self.req.messages])
        return wire.usage((prompt + 3) // 4, completion)

    async def send(self, batch: list[Event]) -> None:
        raise NotImplementedError

    async def broke_off(self, exc: BaseException) -> None:
        """A failure after the response was sent: only a stream can still say so."""

    def close(self) -> None:
        """The request is over (answered, failed or cancelled)."""


class _Whole(_Answer):
    """A ``chat.completion`` body, sent once the whole answer is there."""

    def __init__(self, request: web.Request, req: wire.ChatRequest, ctx: RequestContext) -> None:
        super().__init__(request, req, ctx)
        self.texts: dict[int, list[str]] = {}
        self.reasons: dict[int, str] = {}

    async def send(self, batch: list[Event]) -> None:
        for event in batch:
            if isinstance(event, Delta):
                self.texts.setdefault(event.index, []).append(event.text)
            elif isinstance(event, Finish):
                self.reasons[event.index] = event.reason
            else:
                await self._respond()

    async def _respond(self) -> None:
        texts, reasons = self.texts, self.reasons
        choices = [("".join(texts.get(i, [])), reasons[i]) for i in sorted(reasons)]
        usage = self.usage(t for t, _ in choices)
        body = wire.completion(self.id, self.created, self.req.model, choices, usage)
        response = web.Response(body=body, content_type="application/json", headers=self.headers())
        self.response = response
        await response.prepare(self.request)
        await response.write_eof()


class _SSEResponse(web.StreamResponse):
    # aiohttp sends a StreamResponse's headers at prepare() by default; held back, they go
    # out with the first event, one write (one system call) fewer per stream.
    _send_headers_immediately = False


class _Stream(_Answer):
    """An SSE stream: each batch in one write; the last choice's finish is held back and
    goes out with the usage chunk and ``[DONE]`` in the final write.

    Keep-alives: ``: ping`` comments when the stream has been quiet for the app's ping
    interval (the app's :class:`_Pinger` calls :meth:`due`). Until the first batch the
    response is not opened, so that early failures get a real status, unless the first
    batch takes longer than that: then the 200 goes out with the first ping. No task unless
    a ping is due. (One object, not a stream and a keep-alive that point at each other: a
    reference cycle per request would leave every request's objects to the garbage
    collector; docs/bridge.md, "Performance".)
    """

    def __init__(
        self, request: web.Request, req: wire.ChatRequest, ctx: RequestContext, pinger: _Pinger
    ) -> None:
        super().__init__(request, req, ctx)
        self.writer = wire.ChunkWriter(self.id, self.created, req.model, req.include_usage)
        self.opened: set[int] = set()
        self.texts: list[str] = []
        self.last = req.n - 1
        self.held = b""  # What the stream holds back (written before an error event).
        self._pinger = pinger
        self._loop = asyncio.get_running_loop()
        self._quiet_since = self._loop.time()
        self._ping_task: asyncio.Task[None] | None = None
        pinger.add(self)

    async def open(self) -> web.StreamResponse:
        """The SSE response, prepared; its headers go out with its first write."""
        response = _SSEResponse(headers={**_SSE_HEADERS, **self.headers()})
        await response.prepare(self.request)
        self.response = response
        return response

    def render(self, batch: list[Event]) -> tuple[list[bytes], bool]:
        """The bytes of a batch (after what was held), and whether it ends the answer."""
        writer = self.writer
        out = [self.held] if self.held else []
        self.held = b""
        for event in batch:
            if isinstance(event, Done):
                if self.req.include_usage:
                    out.append(writer.usage(self.usage(self.texts)))
                out.append(wire.DONE)
                return out, True
            if event.index not in self.opened:
                self.opened.add(event.index)
                out.append(writer.role(event.index))
            if isinstance(event, Delta):
                out.append(writer.delta(event.index, event.text))
            else:
                self.texts.append(event.text)
                out.append(writer.finish(event.index, event.reason))
        return out, False

    async def send(self, batch: list[Event]) -> None:
        response = self.response or await self._pinged() or await self.open()
        out, done = self.render(batch)
        if done:
            await response.write_eof(b"".join(out))
            return
        last = batch[-1] if batch else None
        if isinstance(last, Finish) and last.index == self.last:
            self.held = b"".join(out)  # Only [DONE] can follow: they go out together.
        elif out:
            await response.write(b"".join(out))
            self._quiet_since = self._loop.time()

    async def broke_off(self, exc: BaseException) -> None:
        # The status is sent: an error event, then the stream ends.
        assert self.response is not None
        log.info("stream broke off: %s: %s", type(exc).__name__, exc)
        _, type_, code, _ = _mapping(exc)
        try:
            await self.response.write(self.held + wire.error_event(str(exc), type=type_, code=code))
        except ConnectionError as gone:
            log.info("the client went away mid-stream (%s)", gone)

    def close(self) -> None:
        self._pinger.discard(self)
        if self._ping_task is not None:
            self._ping_task.cancel()

    # --- keep-alives ----------------------------------------------------------------------

    def due(self, now: float, interval: float) -> None:
        """Called by the pinger: ping if quiet for ``interval`` and no ping is under way."""
        task = self._ping_task
        if now - self._quiet_since >= interval and (task is None or task.done()):
            self._ping_task = self._loop.create_task(self._ping())
            self._quiet_since = now

    async def _ping(self) -> None:
        try:
            response = self.response or await self.open()
            await response.write(wire.PING)
        except (ConnectionError, RuntimeError) as exc:
            log.debug("keep-alive not sent: %s", exc)

    async def _pinged(self) -> web.StreamResponse | None:
        """The response if a ping opened it (waiting for a ping under way), else None."""
        task = self._ping_task
        if task is not None and not task.done():
            await asyncio.wait({task})
        return self.response


class _Pinger:
    """The keep-alives of an app's open streams, on one timer (not one per stream), which
    runs only while streams are open: every quarter of ``interval`` it pings the streams
    that have been quiet for ``interval``."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._streams: dict[_Stream, None] = {}
        self._handle: asyncio.TimerHandle | None = None

    def add(self, stream: _Stream) -> None:
        self._streams[stream] = None
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self.interval / 4, self._tick)

    def discard(self, stream: _Stream) -> None:
        self._streams.pop(stream, None)

    def _tick(self) -> None:
        self._handle = None
        if not self._streams:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        for stream in list(self._streams):
            stream.due(now, self.interval)
        self._handle = loop.call_later(self.interval / 4, self._tick)


# --- models, health, metrics --------------------------------------------------------------------


async def _models(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    models = [wire.model_object(**_model_fields(m)) for m in await engine.models()]
    return web.Response(body=wire.model_list(models), content_type="application/json")


def _model_fields(model: Mapping[str, object]) -> dict[str, Any]:
    return {
        "model_id": str(model["id"]),
        "name": str(model.get("name") or "") or None,
        "created": int(model.get("created", 0)),  # type: ignore[call-overload]
        "owned_by": str(model.get("owned_by", "character.ai")),
    }


async def _model(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    model_id = request.match_info["model_id"]
    target = await engine.target(model_id)
    item = wire.model_object(model_id, name=target.name, owned_by=target.creator)
    return web.Response(body=msgspec.json.encode(item), content_type="application/json")


async def _health(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    report = await engine_health(engine)
    status = 200 if report["status"] == "ok" else 503
    return web.Response(
        body=msgspec.json.encode(report), status=status, content_type="application/json"
    )


async def engine_health(engine: Engine) -> dict[str, Any]:
    """Upstream session and token state, and the state store's."""
    token = "valid"
    try:
        await engine.client.account.me(timeout=10)
    except AuthError:
        token = "invalid"
    except BlockedError:
        token = "blocked"
    except CaiError as exc:
        token = f"unknown ({type(exc).__name__})"
    state = "ok"
    try:
        await engine.store.ping()
    except StateUnavailable:
        state = "unavailable"
    stats = engine.client.stats
    return {
        "status": "ok" if token == "valid" and state == "ok" else "degraded",
        "upstream": {"token": token, "reconnects": stats.reconnects},
        "state": state,
    }


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[ENGINE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


# --- the application ----------------------------------------------------------------------------


def create_app(
    client: AsyncClient,
    *,
    state: str | Store | None = None,
    api_key: str | None = None,
    aliases: Mapping[str, str] | None = None,
    cors: Iterable[str] = (),
    metrics: bool = False,
    allowed_hosts: Iterable[str] | None = LOOPBACK_HOSTS,
    max_body: int = 8 * 2**20,
    ping_interval: float = 15.0,
    config: BridgeConfig | None = None,
) -> web.Application:
    """The bridge as an aiohttp application over ``client`` (one socket for everything).

    ``state``: ``sqlite:///path`` (default: a file in the user data directory),
    ``postgresql://…``, or a :class:`~caiclient.bridge.state.Store`; it is opened when the
    app starts and closed when it stops. ``api_key``: required as ``Authorization: Bearer``
    on every route but ``/health``. ``allowed_hosts``: the Host headers accepted (the
    default accepts loopback names only, against DNS rebinding; None accepts any).
    ``cors``: origins allowed to call from a browser (none by default). ``metrics``: serve
    ``GET /metrics``. ``config``: reconcile and policy options (:class:`BridgeConfig`);
    ``aliases`` are merged into it.
    """
    config = config or BridgeConfig()
    if aliases:
        config = dataclasses.replace(config, aliases={**config.aliases, **aliases})
    store = state if isinstance(state, Store) else open_store(state)
    counters = Metrics()
    settings = {
        "allowed_hosts": None
        if allowed_hosts is None
        else frozenset(h.lower() for h in allowed_hosts),
        "cors": frozenset(cors),
        "api_key": api_key.encode() if api_key else None,
        "pinger": _Pinger(ping_interval),
    }
    app = web.Application(client_max_size=max_body, middlewares=[_middleware(settings, counters)])
    app[ENGINE] = Engine(client, store, config, counters)
    app[SETTINGS] = settings
    _routes(app, metrics)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await store.open()
        yield
        await store.close()

    app.cleanup_ctx.append(lifecycle)
    return app


def _routes(app: web.Application, metrics: bool) -> None:
    add = app.router.add_route
    add("POST", _BASE + "chat/completions", _completions, name="completions")
    add("GET", _BASE + "models", _models, name="models")
    add("GET", _BASE + "models/{model_id:.+}", _model, name="model")
    add("GET", "/health", _health, name="health")
    if metrics:
        add("GET", "/metrics", _metrics, name="metrics")


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@asynccontextmanager
async def running(
    app: web.Application, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` (0: any free port) and yield its base URL
    (``http://host:port``). Client disconnects cancel their request's handler, which stops
    the generation. Stopped on the way out."""
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only here
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound}"
    finally:
        await runner.cleanup()


def tune_collector() -> None:
    """Tune the garbage collector for a process that serves the bridge (``cai serve``):
    the objects made at start-up are never traversed again, and the youngest generation
    is collected every 100,000 net allocations instead of 700. What is young in a bridge is
    mostly alive, not garbage: each open connection's request and response objects and each
    chat's record (about 55 objects per stream in flight), so a collection in the middle of
    a burst of streams traverses them all for nothing (docs/bridge.md, "Performance")."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 20, 20)


async def serve(
    client: AsyncClient,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    started: Callable[[str], None] | None = None,
    tune_gc: bool = False,
    **options: Any,
) -> None:
    """Run the bridge until cancelled. Refuses a non-loopback ``host`` without ``api_key``
    (ValidationError); off loopback the Host-header check is off (the key protects it).
    ``started`` is called with the base URL once it listens; ``tune_gc`` tunes the garbage
    collector of the whole process (:func:`tune_collector`; for a process that only serves the
    bridge); other keywords go to :func:`create_app`."""
    loopback = is_loopback(host)
    if not loopback and not api_key:
        raise ValidationError(
            f"refusing to listen on {host!r} without an API key: anyone who can reach it "
            "could use your Character.AI account (pass --api-key, or bind 127.0.0.1)"
        )
    if not loopback:
        options.setdefault("allowed_hosts", None)
    app = create_app(client, api_key=api_key, **options)
    async with running(app, host=host, port=port) as url:
        if tune_gc:
            tune_collector()
        if started is not None:
            started(url)
        await asyncio.Event().wait()
