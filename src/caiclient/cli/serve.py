"""``cai serve``: the OpenAI-compatible bridge (:mod:`caiclient.bridge`) on the account of
the chosen login profile, until Ctrl-C (or SIGTERM)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from ..errors import ValidationError
from ._app import Options, Session, command, run_with_client

if TYPE_CHECKING:
    from ..models import User

__all__ = ["API_KEY_ENV", "serve"]

API_KEY_ENV = "CAI_SERVE_API_KEY"


def _aliases(values: Sequence[str]) -> dict[str, str]:
    aliases = {}
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise ValidationError(f"--alias {value!r}: use NAME=CHARACTER_ID[:CHAT_ID]")
        aliases[name.strip()] = target.strip()
    return aliases


def check_exposure(host: str, api_key: str | None) -> None:
    """Refuse a non-loopback address without an API key (ValidationError: exit status 2),
    before anything is opened."""
    from ..bridge.server import is_loopback

    if not is_loopback(host) and not api_key:
        raise ValidationError(
            f"refusing to listen on {host!r} without an API key: anyone who can reach it "
            f"could use your Character.AI account (pass --api-key or set ${API_KEY_ENV}, "
            "or bind 127.0.0.1)"
        )


def banner(url: str, me: User, profile: str, state: str, api_key: str | None) -> str:
    """What ``cai serve`` prints once it listens: never the c.ai token nor the API key."""
    key = "the API key you set" if api_key else "any text (no key is required)"
    return "\n".join(
        [
            f"cai serve: listening on {url} as {me.username or me.name} (profile {profile})",
            f"  state:       {state}",
            f"  base URL:    {url}/v1   (OpenAI-compatible; api_key = {key})",
            f'  openai:      OpenAI(base_url="{url}/v1", api_key=...)',
            f"  front ends:  {url}/v1 in SillyTavern (Chat Completion > Custom),"
            " Open WebUI or LibreChat",
            "  models:      a character id, 'character_id:chat_id', or GET /v1/models",
        ]
    )


@contextlib.contextmanager
def _stop_on_signals(task: asyncio.Task[Any]) -> Iterator[None]:
    """Ctrl-C and SIGTERM cancel the server task, which closes everything cleanly."""
    loop = asyncio.get_running_loop()
    added = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, task.cancel)
            added.append(sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows, no main thread
            pass
    try:
        yield
    finally:
        for sig in added:
            loop.remove_signal_handler(sig)


async def _serve(session: Session, settings: dict[str, Any]) -> int:
    from ..bridge import default_state_url, serve

    me = await session.client.account.me()
    state = settings.pop("state") or default_state_url()

    def started(url: str) -> None:
        click.echo(banner(url, me, session.options.profile, state, settings.get("api_key")))
        click.echo("Ctrl-C stops it.", err=True)
        sys.stdout.flush()

    task = asyncio.ensure_future(
        serve(session.client, state=state, started=started, tune_gc=True, **settings)
    )
    with _stop_on_signals(task):
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
    click.echo("cai serve: stopped", err=True)
    return 0


@command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
    help="Port (0: any free one).",
)  # fmt: skip
@click.option(
    "--state", metavar="URL",
    help="sqlite:///FILE (default: a file in the user data folder) or postgresql://…",
)  # fmt: skip
@click.option(
    "--api-key", envvar=API_KEY_ENV, metavar="KEY",
    help=f"Require 'Authorization: Bearer KEY' (or set ${API_KEY_ENV}, which keeps it out "
    "of the shell history). Needed off loopback.",
)  # fmt: skip
@click.option(
    "--alias", "aliases", multiple=True, metavar="NAME=CHARACTER",
    help="A model name for a character (or character:chat); repeatable.",
)  # fmt: skip
@click.option(
    "--cors", multiple=True, metavar="ORIGIN",
    help="Allow browser calls from this origin; repeatable (default: none).",
)  # fmt: skip
@click.option("--metrics", is_flag=True, help="Serve Prometheus metrics at GET /metrics.")
@click.pass_obj
def serve(
    options: Options,
    host: str,
    port: int,
    state: str | None,
    api_key: str | None,
    aliases: tuple[str, ...],
    cors: tuple[str, ...],
    metrics: bool,
) -> int:
    """An OpenAI-compatible server for chat front ends and the `openai` client.

    Each front-end conversation is kept in step with a Character.AI chat of the logged-in
    account (docs/bridge.md). Ctrl-C stops it.
    """
    check_exposure(host, api_key)
    settings: dict[str, Any] = {
        "host": host,
        "port": port,
        "state": state,
        "api_key": api_key or None,
        "aliases": _aliases(aliases),
        "cors": cors,
        "metrics": metrics,
    }
    return run_with_client(options, lambda session: _serve(session, settings))
