"""``cai login``, ``cai logout`` and ``cai whoami``: getting, dropping and showing a token."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Literal

import click

from ..errors import AuthError, ValidationError
from ._app import EXIT_OK, Options, command, open_endpoints, remember_secret, run, run_with_client

if TYPE_CHECKING:
    from ..endpoints import Endpoints
    from ..models import User

__all__ = ["login", "logout", "whoami"]

_POLL_WAIT = 300.0


def _read_token(value: str) -> str:
    """The token from ``--token VALUE``, or from stdin / a hidden prompt for ``--token``."""
    if value != "-":
        return value
    if sys.stdin.isatty():
        entered: str = click.prompt("Token", hide_input=True, err=True)
        return entered
    line = sys.stdin.readline().strip()
    if not line:
        raise ValidationError("no token on stdin: pipe it in, e.g. `cai login --token < FILE`")
    return line


def _ask_email(email: str | None) -> str:
    if email:
        return email
    if not sys.stdin.isatty():
        raise ValidationError("no e-mail address: pass --email ADDRESS")
    entered: str = click.prompt("E-mail address", err=True)
    return entered


async def _poll(email: str, endpoints: Endpoints, wait: float, interval: float, quiet: bool) -> str:
    from .. import auth

    async def polled() -> str:
        return await auth.login_by_polling(
            email, endpoints=endpoints, timeout=wait, interval=interval
        )

    if quiet:
        return await polled()
    from rich.console import Console

    console = Console(stderr=True)
    console.print(f"A login link was mailed to [bold]{email}[/]. Open it in any browser.")
    with console.status("Waiting for you to open the link (Ctrl-C gives up)…"):
        return await polled()


async def _by_link(email: str, endpoints: Endpoints, timeout: float) -> str:
    from .. import auth

    await auth.send_login_email(email, endpoints=endpoints, timeout=timeout)
    click.echo(f"A sign-in link was mailed to {email}.", err=True)
    link: str = click.prompt("Paste the link from the mail", err=True)
    return await auth.login_with_link(email, link, endpoints=endpoints, timeout=timeout)


async def _obtain(
    options: Options, how: str, token: str | None, email: str | None, wait: tuple[float, float]
) -> tuple[str, User]:
    """Get a token the chosen way, check it against the account endpoint; (token, user)."""
    from .. import auth
    from ..client import AsyncClient

    async with open_endpoints(options) as (endpoints, _emu):
        if token is not None:
            found = token
        elif how == "guest":
            found = await auth.guest(endpoints=endpoints, timeout=options.timeout)
        elif how == "link":
            found = await _by_link(_ask_email(email), endpoints, options.timeout)
        else:
            found = await _poll(_ask_email(email), endpoints, *wait, options.json)
        remember_secret(found)
        async with AsyncClient(found, endpoints=endpoints, timeout=options.timeout) as client:
            try:
                user = await client.account.me()
            except AuthError as exc:
                raise AuthError(f"the service refused this token: {exc}") from None
        return found, user


@command("login")
@click.option("--email", metavar="ADDRESS", help="Your account's e-mail (asked if missing).")
@click.option(
    "--link", "how", flag_value="link", help="Paste the link from the mail instead of waiting."
)
@click.option(
    "--token",
    "token",
    is_flag=False,
    flag_value="-",
    default=None,
    metavar="[TOKEN]",
    help="Store a token you have; without a value it is read from stdin or a hidden prompt.",
)
@click.option("--guest", "how", flag_value="guest", help="A guest account, where still offered.")
@click.option(
    "--store",
    type=click.Choice(["auto", "keyring", "file"]),
    default="auto",
    show_default=True,
    help="Where to keep the token (auto: the OS keyring if usable, else a 0600 file).",
)
@click.option(
    "--wait",
    type=click.FloatRange(min=1),
    default=_POLL_WAIT,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the mailed link to be opened.",
)
@click.option("--poll-interval", type=click.FloatRange(min=0.01), default=2.0, hidden=True)
@click.pass_obj
def login(
    options: Options,
    email: str | None,
    how: str | None,
    token: str | None,
    store: Literal["auto", "keyring", "file"],
    wait: float,
    poll_interval: float,
) -> int:
    """Log in and store the token for a profile.

    By default, character.ai mails you a link and cai waits until you open it in any
    browser (nothing to paste). --link pastes the link instead, --token stores a token you
    already have (checked first), --guest asks for a guest account.
    """
    from ..profiles import check_profile, keyring_status, save_token

    check_profile(options.profile)
    if token is not None and how is not None:
        raise click.UsageError("--token cannot be combined with --link or --guest")
    chosen = "token" if token is not None else (how or "poll")
    given = _read_token(token) if token is not None else None
    found, user = run(_obtain(options, chosen, given, email, (wait, poll_interval)))
    where = save_token(found, options.profile, store=store)
    note = "" if where.startswith("keyring") else keyring_status().reason
    if options.json:
        click.echo(json.dumps(_who(user, options.profile, where, found, "saved")))
        return EXIT_OK
    click.echo(f"Logged in as {user.name} (@{user.username}) on profile '{options.profile}'.")
    click.echo(f"Token stored in {where}." + (f" ({note}; the file is mode 0600)" if note else ""))
    return EXIT_OK


def _who(user: User, profile: str, location: str, token: str, source: str) -> dict[str, Any]:
    from ..profiles import mask

    return {
        "user": {"id": user.id, "username": user.username, "name": user.name},
        "profile": profile,
        "source": source,
        "location": location,
        "token": mask(token),
    }


@command("logout")
@click.pass_obj
def logout(options: Options) -> int:
    """Forget the stored token of a profile ($CAI_TOKEN, if set, is not touched)."""
    from ..profiles import forget

    removed = forget(options.profile)
    if options.json:
        click.echo(json.dumps({"profile": options.profile, "removed": removed}))
    elif removed:
        click.echo(f"Logged out of profile '{options.profile}': removed {', '.join(removed)}.")
    else:
        click.echo(f"Profile '{options.profile}' had no stored token.")
    return EXIT_OK


@command("whoami")
@click.pass_obj
def whoami(options: Options) -> int:
    """Show the user, the profile, where the token came from, and the token's last 4."""

    async def body(session: Any) -> int:
        user = await session.client.account.me()
        creds = session.credentials
        info = _who(user, creds.profile, creds.location, creds.token, creds.source)
        if options.json:
            click.echo(json.dumps(info))
            return EXIT_OK
        click.echo(f"{user.name} (@{user.username}, id {user.id})")
        click.echo(f"profile: {creds.profile}")
        click.echo(f"token:   {creds.masked} from {creds.location}")
        return EXIT_OK

    return run_with_client(options, body)
