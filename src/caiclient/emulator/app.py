"""The emulator server: one aiohttp app serving every live host under a path prefix.

``https://neo.character.ai/chats/recent/`` ↔ ``http://127.0.0.1:PORT/neo/chats/recent/`` and
likewise ``/plus``, ``/beta``, ``/web``, ``/identitytoolkit`` (docs/emulator.md).
Each area package (``account``, ``auth``, ``characters``, ``chat``, ``media``, ``rooms``,
``v1``) exposes ``register(app)``, which puts its store on the app under the area's AppKey
and adds its routes; add new areas to :data:`AREAS`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from aiohttp import WSCloseCode, web

from . import account, auth, characters, chat, media, rooms, trpc, v1
from ._http import error_middleware
from .auth import AUTH, Mail
from .characters import SeedCharacter
from .control import CONTROL, ControlPlane, guard_middleware, is_loopback
from .faults import Faults, fault_middleware
from .faults import register as register_faults
from .filters import Filters
from .persist import Persistence
from .seed import SeedSource, apply_seed, load_seed
from .state import STATE, Abort, State
from .store import Store, check_secret

__all__ = ["AREAS", "Emulator", "build_app", "serve"]

log = logging.getLogger("caiclient.emulator")

AREAS: tuple[Callable[[web.Application], None], ...] = (
    account.register,
    auth.register,
    characters.register,
    chat.register,
    media.register,
    rooms.register,
    v1.register,
)


def build_app(state: State, faults: Faults, control: ControlPlane) -> web.Application:
    """The aiohttp application with every area's routes, behind the Host and control-token
    guard (``control.py``), the JSON error middleware and fault injection."""
    # Uploads (images, voice samples) may be several MB; the areas enforce their own limits.
    app = web.Application(
        middlewares=[guard_middleware, error_middleware, fault_middleware],
        client_max_size=32 * 1024 * 1024,
    )
    app[STATE] = state
    app[CONTROL] = control
    register_faults(app, faults)
    trpc.register(app)
    for register in AREAS:
        register(app)
    app.on_shutdown.append(_close_sockets)
    return app


async def _close_sockets(app: web.Application) -> None:
    for ws in list(app[STATE].sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def _check_chunks(chunks: int) -> int:
    if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 2:
        raise ValueError(f"chunks must be an integer >= 2, got {chunks!r}")
    return chunks


def _check_delay(delay: float) -> float:
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
        raise ValueError(f"chunk_delay must be a number >= 0, got {delay!r}")
    return float(delay)


class Emulator:
    """A local Character.AI backend on a real socket, seeded with one user and a cast.

    Use as ``async with Emulator() as emu:`` or call :meth:`start` / :meth:`stop`.
    ``chunk_delay`` (seconds between a generation's bot frames) and ``chunks`` (bot frames
    per reply, >= 2) may be changed while it runs. Every token it mints is derived from
    ``secret`` (8-256 printable ASCII characters); without one (here or in the seed) the
    secret is random, or the one kept in ``state_file`` (docs/emulator.md "Security").
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        chunk_delay: float = 0.0,
        chunks: int = 5,
        state_file: str | Path | None = None,
        seed: SeedSource = None,
        secret: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        delay, chunks = _check_delay(chunk_delay), _check_chunks(chunks)
        seeded = load_seed(seed)
        if secret is not None:
            check_secret(secret)  # before a state file is opened
        self.persistence = Persistence(state_file)
        self.store = Store(persistence=self.persistence, secret=secret or seeded.secret)
        apply_seed(self.store, seeded)
        self.faults = Faults()
        self.state = State(self.store, chunk_delay=delay, chunks=chunks)
        self.control = ControlPlane(self.store.derive("control"), is_loopback(host))
        self.app = build_app(self.state, self.faults, self.control)
        if not self.control.loopback:
            log.warning(
                "the emulator will listen on %s, reachable from other machines: anyone who "
                "can reach it can use its users; bind 127.0.0.1 unless you mean it",
                host,
            )
        """The aiohttp application; each area's store is ``emu.app[<AREA KEY>]`` (e.g.
        ``emu.app[ROOMS]`` from ``caiclient.emulator.rooms``)."""
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._stopped = False

    # ---- knobs ----
    @property
    def chunk_delay(self) -> float:
        return self.state.chunk_delay

    @chunk_delay.setter
    def chunk_delay(self, value: float) -> None:
        self.state.chunk_delay = _check_delay(value)

    @property
    def chunks(self) -> int:
        return self.state.chunks

    @chunks.setter
    def chunks(self, value: int) -> None:
        self.state.chunks = _check_chunks(value)

    @property
    def filters(self) -> Filters:
        """Chat filter phrases: ``emu.filters.input_phrases`` (refused as self-harm) and
        ``emu.filters.output_phrases`` (reply cut short); see ``emulator/filters.py``."""
        return self.store.filters

    def rate_limit(
        self, *, generations: int | None = None, requests: int | None = None, per: float = 60.0
    ) -> None:
        """Limit each token to ``generations`` socket generations and ``requests`` chat REST
        calls per ``per`` seconds (None = unlimited; no arguments turns limits off)."""
        self.store.limits.configure(generations=generations, requests=requests, per=per)

    # ---- seed data ----
    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the server (no trailing slash); set once started."""
        if self._url is None:
            raise RuntimeError("emulator has not been started")
        return self._url

    @property
    def control_token(self) -> str:
        """The token the ``/__emulator__/`` routes need in ``X-Emulator-Control``."""
        return self.control.token

    @property
    def loopback(self) -> bool:
        """Whether the emulator listens on this machine only (then ``Host`` is checked)."""
        return self.control.loopback

    @property
    def token(self) -> str:
        return self.store.seed_user.token

    @property
    def user_id(self) -> str:
        return self.store.seed_user.id

    @property
    def username(self) -> str:
        return self.store.seed_user.username

    @property
    def characters(self) -> list[SeedCharacter]:
        return list(self.store.characters.values())

    def character(self, name: str) -> SeedCharacter:
        """The seed character called ``name``; raises KeyError if there is none."""
        for character in self.store.characters.values():
            if character.name == name:
                return character
        raise KeyError(name)

    @property
    def aborts(self) -> list[Abort]:
        """Every ``abort_generation`` the emulator honoured, in arrival order (a copy)."""
        return list(self.state.aborts)

    def mailbox(self, email: str) -> list[Mail]:
        """The mails the running emulator "sent" to ``email`` (login links), oldest first."""
        if self._runner is None:
            raise RuntimeError("emulator has not been started")
        return self.app[AUTH].mailbox(email)

    # ---- lifecycle ----
    async def start(self) -> None:
        """Bind and start serving; ``port=0`` picks a free port (see :attr:`url`)."""
        if self._runner is not None:
            raise RuntimeError("emulator already started")
        if self._stopped:
            raise RuntimeError("a stopped emulator cannot restart; create a new one")
        runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = int(runner.addresses[0][1])
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._url = self.state.url = f"http://{host}:{self.port}"
        self._runner = runner

    async def stop(self) -> None:
        """Close sockets, cancel running generations and release the port. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stopped = True
        try:
            await runner.cleanup()
        finally:
            await self.state.cancel_tasks()
            self.persistence.close()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    chunk_delay: float = 0.05,
    chunks: int = 5,
    state_file: str | Path | None = None,
    seed: SeedSource = None,
    secret: str | None = None,
    on_ready: Callable[[Emulator], None] | None = None,
) -> None:
    """Run an emulator until cancelled; ``on_ready`` is called once it is listening."""
    emulator = Emulator(
        host,
        port,
        chunk_delay=chunk_delay,
        chunks=chunks,
        state_file=state_file,
        seed=seed,
        secret=secret,
    )
    async with emulator as emu:
        if on_ready is not None:
            on_ready(emu)
        await asyncio.Event().wait()
