"""What every ``cai`` command shares: the root group, the common options, the client helper
and the one mapping from errors to exit statuses.

Adding a command is one line in :data:`COMMANDS` (name → ``"module:attribute"`` and its
one-line help) plus a module that defines a click command built with :func:`command` (or a
group built with :func:`group`), so that it takes the common options too. Nothing here
imports the client, rich or prompt_toolkit at module level: ``cai --help`` stays fast.

A command body is usually::

    @command("whoami", help="...")
    @click.pass_obj
    def whoami(options: Options) -> int:
        async def body(session: Session) -> int:
            me = await session.client.account.me()
            ...
        return run_with_client(options, body)
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import re
import signal
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..errors import (
    AuthError,
    BlockedError,
    CaiError,
    Filtered,
    NotFound,
    NotLoggedIn,
    RateLimited,
    TransportError,
    ValidationError,
)

if TYPE_CHECKING:
    from ..client import AsyncClient
    from ..emulator import Emulator
    from ..endpoints import Endpoints
    from ..profiles import Credentials

__all__ = [
    "COMMANDS",
    "EXIT_AUTH",
    "EXIT_BLOCKED",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_NETWORK",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_RATE_LIMITED",
    "EXIT_STATUSES",
    "EXIT_USAGE",
    "Options",
    "Session",
    "closing",
    "command",
    "describe_error",
    "exit_status",
    "group",
    "main",
    "on_sigint",
    "open_endpoints",
    "open_session",
    "run",
    "run_with_client",
]

T = TypeVar("T")

# name -> ("module:attribute", one-line help). The help is here so that `cai --help` lists
# every command without importing any of them. Later commands (backup, export, serve) are
# one line each.
COMMANDS: dict[str, tuple[str, str]] = {
    "backup": ("caiclient.cli.backup:backup", "Back up every chat into a local archive."),
    "characters": ("caiclient.cli.catalog:characters", "Search characters and show them."),
    "chat": ("caiclient.cli.chat:chat", "Chat with a character in the terminal, or as a filter."),
    "chats": ("caiclient.cli.catalog:chats", "List, show, rename, archive and copy chats."),
    "completion": ("caiclient.cli.completion:completion", "Print the shell completion script."),
    "demo": ("caiclient.cli.demo:demo", "Chat on a built-in emulator (no account needed)."),
    "doctor": (
        "caiclient.cli.doctor:doctor",
        "Check the token, network and service; say what to do.",
    ),
    "emulator": ("caiclient.cli._emulator_cmd:emulator", "Serve the local emulator until Ctrl-C."),
    "export": ("caiclient.cli.backup:export", "Export the archive for SillyTavern, ooba, …"),
    "login": ("caiclient.cli.login:login", "Log in and store the token for a profile."),
    "logout": ("caiclient.cli.login:logout", "Forget the stored token of a profile."),
    "personas": ("caiclient.cli.catalog:personas", "List, create, update and delete personas."),
    "serve": ("caiclient.cli.serve:serve", "Serve an OpenAI-compatible API for chat front ends."),
    "tts": ("caiclient.cli.catalog:tts", "Save a turn read aloud to an audio file."),
    "voices": ("caiclient.cli.catalog:voices", "Search voices."),
    "whoami": ("caiclient.cli.login:whoami", "Show who is logged in and where the token is from."),
}

# --- exit statuses ---------------------------------------------------------------------------

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_BLOCKED = 4
EXIT_NOT_FOUND = 5
EXIT_NETWORK = 6
EXIT_RATE_LIMITED = 7
EXIT_INTERRUPTED = 130

# The one mapping, most specific first: (error class, exit status, label, what to do).
EXIT_STATUSES: tuple[tuple[type[CaiError], int, str, str], ...] = (
    (ValidationError, EXIT_USAGE, "usage", ""),
    (NotLoggedIn, EXIT_AUTH, "not logged in", ""),
    (AuthError, EXIT_AUTH, "auth", "log in again with `cai login`"),
    (BlockedError, EXIT_BLOCKED, "blocked", ""),
    (NotFound, EXIT_NOT_FOUND, "not found", ""),
    (RateLimited, EXIT_RATE_LIMITED, "rate limited", "wait and try again"),
    (TransportError, EXIT_NETWORK, "network", "check the connection; `cai doctor` helps"),
    (Filtered, EXIT_ERROR, "refused", "rephrase the message"),
    (CaiError, EXIT_ERROR, "error", ""),
)


def _entry(exc: CaiError) -> tuple[type[CaiError], int, str, str]:
    for entry in EXIT_STATUSES:
        if isinstance(exc, entry[0]):
            return entry
    return EXIT_STATUSES[-1]  # pragma: no cover - CaiError matches every CaiError


def exit_status(exc: BaseException) -> int:
    """The exit status ``cai`` ends with for ``exc`` (see docs/cli.md)."""
    if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
        return EXIT_INTERRUPTED
    if isinstance(exc, click.UsageError):
        return EXIT_USAGE
    if isinstance(exc, CaiError):
        return _entry(exc)[1]
    return EXIT_ERROR


def describe_error(exc: CaiError) -> str:
    """One line for the user: ``<label>: <message>[ (<what to do>)]``, the token never in it."""
    _, _, label, fix = _entry(exc)
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, BlockedError) and exc.ray and exc.ray not in text:
        text += f" (cf-ray {exc.ray})"
    head = text if text.lower().startswith(label) else f"{label}: {text}"
    return head + (f"; {fix}" if fix and fix not in text else "")


# --- options ---------------------------------------------------------------------------------


@dataclass
class Options:
    """The common options, set on the root group or on any subcommand."""

    profile: str = field(default_factory=lambda: os.environ.get("CAI_PROFILE", "default"))
    emulator: bool = False
    json: bool = False
    timeout: float = 30.0
    debug: bool = False


def _setter(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value is False:
            return
        options = ctx.find_object(Options)
        if options is not None:
            setattr(options, name, value)
            if name == "debug":
                _configure_logging(True)

    return store


def common_params() -> list[click.Parameter]:
    """Fresh copies of the common options (click parameters cannot be shared)."""
    return [
        click.Option(
            ["--profile"],
            metavar="NAME",
            expose_value=False,
            callback=_setter("profile"),
            help="Login profile to use (default: $CAI_PROFILE or 'default').",
        ),
        click.Option(
            ["--emulator"],
            is_flag=True,
            default=None,
            expose_value=False,
            callback=_setter("emulator"),
            help="Run against an emulator started in-process (no account or network).",
        ),
        click.Option(
            ["--json"],
            is_flag=True,
            default=None,
            expose_value=False,
            callback=_setter("json"),
            help="Print JSON for scripts instead of tables.",
        ),
        click.Option(
            ["--timeout"],
            type=click.FloatRange(min=0, min_open=True),
            metavar="SECONDS",
            expose_value=False,
            callback=_setter("timeout"),
            help="Deadline of each call to the service (default 30).",
        ),
        click.Option(
            ["-v", "--debug"],
            is_flag=True,
            default=None,
            expose_value=False,
            callback=_setter("debug"),
            help="Log what happens to stderr (tokens redacted); show tracebacks.",
        ),
    ]


def command(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
    """``@click.command`` that also takes the common options."""

    def decorate(function: Callable[..., Any]) -> click.Command:
        cmd = click.Command(name, callback=function, **kwargs)
        cmd.params.extend(reversed(getattr(function, "__click_params__", [])))
        cmd.help = cmd.help or inspect.getdoc(function)
        cmd.params.extend(common_params())
        return cmd

    return decorate


def group(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Group]:
    """``@click.group`` whose subcommands (made with ``.command``) take the common options."""

    def decorate(function: Callable[..., Any]) -> click.Group:
        grp = click.group(name, cls=_OptionsGroup, **kwargs)(function)
        grp.params.extend(common_params())
        return grp

    return decorate


class _OptionsGroup(click.Group):
    def command(self, *args: Any, **kwargs: Any) -> Any:
        make = super().command(*args, **kwargs)

        def decorate(function: Callable[..., Any]) -> click.Command:
            cmd: click.Command = make(function)
            cmd.params.extend(common_params())
            return cmd

        return decorate


# --- logging (tokens redacted) ---------------------------------------------------------------

_HEX_TOKEN = re.compile(r"\b[0-9a-fA-F]{40}\b")
_SECRETS: set[str] = set()


class _Redact(logging.Filter):
    """Replaces any known token, and anything shaped like one, in log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        for secret in _SECRETS:
            text = text.replace(secret, "[token]")
        record.msg = _HEX_TOKEN.sub("[token]", text)
        record.args = None
        return True


def remember_secret(token: str) -> None:
    """Never log this token, even if a library put it in a message."""
    if token:
        _SECRETS.add(token)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        super().emit(record)


def _configure_logging(debug: bool) -> None:
    """caiclient's log to stderr, tokens redacted: errors only, everything with --debug."""
    logger = logging.getLogger("caiclient")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(_Redact())
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.ERROR)


# --- the root group --------------------------------------------------------------------------


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when they are run (or completed)."""

    def __init__(self, *args: Any, lazy: Mapping[str, tuple[str, str]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.lazy)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target[0].partition(":")
        found = getattr(importlib.import_module(module), attribute)
        if not isinstance(found, click.Command):  # pragma: no cover - a broken table entry
            raise TypeError(f"{target[0]} is not a click command")
        return found

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.lazy[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _version() -> str:
    from .. import __version__

    return __version__


@click.group(
    "cai",
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit statuses: 0 ok, 1 error, 2 usage, 3 auth, 4 blocked, 5 not found, "
    "6 network, 7 rate limited, 130 interrupted. Docs: docs/cli.md.",
)
@click.version_option(version=_version(), prog_name="cai", message="%(prog)s %(version)s")
def root() -> None:
    """Character.AI from the command line: log in, chat, diagnose, script.

    Every command works against the embedded emulator (--emulator) or any emulator
    ($CAI_BASE_URL), so you can try it without an account.
    """


root.params.extend(common_params())


_COMPLETE_VAR = "_CAI_COMPLETE"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cai`` with ``argv`` (default: the process arguments); return the exit status.

    ``--help`` and ``--version`` raise SystemExit(0) after printing, as argparse does.
    """
    logger = logging.getLogger("caiclient")
    saved = (logger.level, list(logger.handlers))
    try:
        return _main(argv)
    finally:
        # In-process callers (tests, other tools) get their logging back as it was.
        logger.setLevel(saved[0])
        logger.handlers[:] = saved[1]


# A character or persona id (43 base64url characters) may start with "-", and then reads
# as an option: POSIX's "--" ends the options (docs/cli.md).
_DASH_ID = re.compile(r"-[A-Za-z0-9_-]{42}")


def _hint_dash_id(args: Sequence[str]) -> None:
    for arg in args:
        if _DASH_ID.fullmatch(arg):
            click.echo(
                f"cai: {arg[:8]}… looks like an id that starts with '-': put it after '--', "
                f"with the options before (cai … --json -- {arg[:8]}…)",
                err=True,
            )
            return


def _main(argv: Sequence[str] | None) -> int:
    options = Options()
    _configure_logging(False)
    if os.environ.get(_COMPLETE_VAR):
        # Shell completion (`cai completion SHELL` prints the hook): click answers and exits.
        root.main(prog_name="cai", complete_var=_COMPLETE_VAR, obj=options)
    try:
        args = list(sys.argv[1:] if argv is None else argv)
        with root.make_context("cai", args, obj=options) as ctx:
            result = root.invoke(ctx)
    except click.exceptions.Exit as done:
        raise SystemExit(done.exit_code) from None
    except click.ClickException as exc:
        exc.show()
        if isinstance(exc, click.NoSuchOption):
            _hint_dash_id(args)
        return exit_status(exc) if isinstance(exc, click.UsageError) else exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("cai: interrupted", err=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`cai … | head`): stop quietly, as other filters do.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except CaiError as exc:
        if options.debug:
            traceback.print_exc()
        click.echo(f"cai: {describe_error(exc)}", err=True)
        return exit_status(exc)
    return result if isinstance(result, int) else EXIT_OK


# --- running a command's async body ----------------------------------------------------------


def run(coroutine: Awaitable[T]) -> T:
    """Run a command's async body on a fresh event loop (Ctrl-C ends it: exit status 130)."""

    async def wrapper() -> T:
        return await coroutine

    return asyncio.run(wrapper())


@dataclass
class Session:
    """What a command body gets: the client, whose token it uses, and the embedded emulator
    when ``--emulator`` was given."""

    client: AsyncClient
    credentials: Credentials
    endpoints: Endpoints
    options: Options
    emulator: Emulator | None = None


@contextlib.asynccontextmanager
async def open_endpoints(options: Options) -> AsyncIterator[tuple[Endpoints, Emulator | None]]:
    """The endpoints to talk to: an emulator started here (``--emulator``), the origin in
    ``$CAI_BASE_URL``, or the live service."""
    from ..endpoints import Endpoints

    if not options.emulator:
        yield Endpoints.from_env(), None
        return
    from ..emulator import Emulator

    state = os.environ.get("CAI_EMULATOR_STATE") or None
    delay = float(os.environ.get("CAI_EMULATOR_CHUNK_DELAY", "0.02"))
    async with Emulator(chunk_delay=delay, state_file=state) as emu:
        yield Endpoints.local(emu.url), emu


@contextlib.asynccontextmanager
async def open_session(options: Options) -> AsyncIterator[Session]:
    """An :class:`AsyncClient` built from the options: the profile's token (or
    ``$CAI_TOKEN``; with ``--emulator`` the emulator's own token unless ``$CAI_TOKEN`` is
    set), the endpoints of :func:`open_endpoints` and ``--timeout``. Raises NotLoggedIn."""
    from ..client import AsyncClient
    from ..profiles import Credentials, load_credentials

    async with open_endpoints(options) as (endpoints, emu):
        if emu is not None and not os.environ.get("CAI_TOKEN", "").strip():
            creds = Credentials(emu.token, "emulator", options.profile, "the embedded emulator")
        else:
            creds = load_credentials(options.profile)
        remember_secret(creds.token)
        async with AsyncClient(creds.token, endpoints=endpoints, timeout=options.timeout) as client:
            yield Session(client, creds, endpoints, options, emu)


def run_with_client(options: Options, body: Callable[[Session], Awaitable[T]]) -> T:
    """Open a session from the options, run ``body(session)`` and close everything."""

    async def go() -> T:
        async with open_session(options) as session:
            return await body(session)

    return run(go())


@contextlib.contextmanager
def on_sigint(callback: Callable[[], object]) -> Iterator[None]:
    """While inside, Ctrl-C calls ``callback`` instead of ending the program (POSIX only)."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, callback)
    except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows, or no main thread
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


@contextlib.asynccontextmanager
async def closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Iterate over a client stream and close it on the way out, also when stopped early
    (so the request and the chat's turn lock are released at once)."""
    try:
        yield stream
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
