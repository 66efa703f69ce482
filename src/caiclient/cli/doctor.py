"""``cai doctor``: check, in order, what a working session needs, and say what to do.

Checks: a token is configured (and where from); DNS and TCP/TLS reach each host; the
account endpoint accepts the token; nothing (Cloudflare or another proxy) answers instead
of the service; the chat socket upgrades and answers a round trip; the clock agrees with
the service's ``Date`` header; proxy settings in the environment; the impersonation target.
Each is ok, warning, failed or skipped; the exit status is 0 only when none failed.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import socket
import ssl
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import click

from ..errors import AuthError, BlockedError, CaiError, NotLoggedIn, ServerError, Timeout
from ._app import EXIT_ERROR, EXIT_OK, Options, command, exit_status, open_endpoints, run
from ._output import echo_json

if TYPE_CHECKING:
    from .._schema import Drift
    from ..client import AsyncClient
    from ..endpoints import Endpoints
    from ..profiles import Credentials

__all__ = ["Check", "doctor", "run_checks"]

_PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
_SKEW_WARN = 30.0
_SKEW_FAIL = 300.0
IMPERSONATE = "chrome"  # AsyncClient's default browser fingerprint (curl_cffi).


@dataclass
class Check:
    """One line of the report."""

    name: str
    status: str  # "ok", "warning", "failed" or "skipped"
    detail: str
    cause: str = ""
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    error: CaiError | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("error")
        return out


# --- the checks ------------------------------------------------------------------------------


def _token(options: Options, emulator_token: str | None) -> tuple[Check, Credentials | None]:
    from ..profiles import Credentials, load_credentials

    if emulator_token is not None and not os.environ.get("CAI_TOKEN", "").strip():
        creds = Credentials(emulator_token, "emulator", options.profile, "the embedded emulator")
    else:
        try:
            creds = load_credentials(options.profile)
        except NotLoggedIn as exc:
            fix = f"run `cai login --profile {options.profile}`"
            return Check("token", "failed", str(exc), "no usable token", fix, error=exc), None
    detail = f"{creds.masked} from {creds.location} (profile {creds.profile})"
    return Check("token", "ok", detail, data={"source": creds.source}), creds


def _hosts(endpoints: Endpoints) -> list[tuple[str, str, int, bool]]:
    """(label, host, port, tls) for every host the client talks to, once each."""
    seen: dict[tuple[str, int], tuple[str, str, int, bool]] = {}
    for label in ("plus", "neo", "neo_ws", "web", "identitytoolkit"):
        parts = urlsplit(getattr(endpoints, label))
        tls = parts.scheme in ("https", "wss")
        port = parts.port or (443 if tls else 80)
        host = parts.hostname or ""
        seen.setdefault((host, port), (label, host, port, tls))
    return list(seen.values())


async def _reach(label: str, host: str, port: int, tls: bool, timeout: float) -> Check:
    loop = asyncio.get_running_loop()
    name = f"reach {host}:{port}"
    try:
        await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        return Check(
            name,
            "failed",
            f"DNS: {exc or 'timed out'}",
            "the name does not resolve",
            "check your network and DNS settings",
        )
    started = time.perf_counter()
    try:
        context = ssl.create_default_context() if tls else None
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host if tls else None),
            timeout,
        )
    except ssl.SSLError as exc:
        return Check(
            name,
            "failed",
            f"TLS: {exc.reason or exc}",
            "the TLS handshake failed (an intercepting proxy or a wrong clock?)",
            "check proxy and clock",
        )
    except (OSError, asyncio.TimeoutError) as exc:
        return Check(
            name,
            "failed",
            f"TCP: {exc or 'timed out'}",
            "cannot connect",
            "check the network, a firewall or the proxy settings",
        )
    writer.close()
    with _quiet():
        await writer.wait_closed()
    took = (time.perf_counter() - started) * 1e3
    what = "TCP+TLS" if tls else "TCP"
    return Check(name, "ok", f"{what} in {took:.0f} ms ({label})", data={"ms": round(took, 1)})


class _quiet:
    """Ignore errors while closing a probe connection (it has done its job)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], (OSError, ssl.SSLError))  # type: ignore[arg-type]


def _account_failure(exc: CaiError) -> Check:
    name = "account"
    if isinstance(exc, BlockedError):
        ray = f" (cf-ray {exc.ray})" if exc.ray else ""
        return Check(
            name,
            "failed",
            f"an anti-bot page answered instead of the service{ray}",
            "blocked by Cloudflare or a proxy, not a bad token",
            "wait and retry, try another network or proxy",
            {"ray": exc.ray},
            exc,
        )
    if isinstance(exc, AuthError):
        return Check(
            name,
            "failed",
            str(exc),
            "bad or expired token",
            "log in again with `cai login`",
            error=exc,
        )
    if isinstance(exc, ServerError):
        return Check(
            name,
            "failed",
            str(exc),
            f"the service failed (HTTP {exc.status})",
            "try again later",
            {"status": exc.status},
            exc,
        )
    return Check(
        name, "failed", str(exc), "the request did not complete", "check the network", error=exc
    )


async def _account(client: AsyncClient) -> Check:
    try:
        me = await client.account.me()
    except CaiError as exc:
        return _account_failure(exc)
    return Check(
        "account", "ok", f"the token is accepted: @{me.username}", data={"username": me.username}
    )


async def _socket(client: AsyncClient, timeout: float) -> Check:
    name = "chat socket"
    try:
        seconds = await client.ping(timeout=timeout)
    except BlockedError as exc:
        return Check(
            name,
            "failed",
            str(exc),
            "the socket upgrade is blocked (REST works)",
            "wait and retry, try another network or proxy",
            error=exc,
        )
    except AuthError as exc:
        return Check(
            name,
            "failed",
            str(exc),
            "the socket refused the token",
            "log in again with `cai login`",
            error=exc,
        )
    except Timeout as exc:
        return Check(
            name,
            "failed",
            "the socket opened but did not answer in time",
            "a silent socket (a proxy holding it open?)",
            "retry; check proxies that buffer WebSockets",
            error=exc,
        )
    except CaiError as exc:
        return Check(
            name, "failed", str(exc), "the socket did not work", "check the network", error=exc
        )
    return Check(
        name,
        "ok",
        f"upgrade and round trip in {seconds * 1e3:.0f} ms",
        data={"ms": round(seconds * 1e3, 1)},
    )


async def _clock(endpoints: Endpoints, timeout: float) -> Check:
    import aiohttp

    url = endpoints.neo + "/ping/"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
            http.get(url) as answer,
        ):
            date = answer.headers.get("Date")
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return Check("clock", "skipped", f"no answer to read a Date from ({exc or 'timeout'})")
    if not date:
        return Check("clock", "skipped", "the service sent no Date header")
    skew = time.time() - email.utils.parsedate_to_datetime(date).timestamp()
    data = {"skew_seconds": round(skew, 1)}
    detail = f"{abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the service"
    if abs(skew) > _SKEW_FAIL:
        return Check("clock", "failed", detail, "the clock is wrong", "sync the clock (NTP)", data)
    if abs(skew) > _SKEW_WARN:
        return Check("clock", "warning", detail, "the clock drifts", "sync the clock (NTP)", data)
    return Check("clock", "ok", f"within {abs(skew):.0f} s of the service", data=data)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _proxies() -> Check:
    found = {
        name: _without_password(os.environ.get(name) or os.environ.get(name.lower()) or "")
        for name in _PROXY_VARIABLES
    }
    found = {k: v for k, v in found.items() if v}
    if not found:
        return Check("proxy", "ok", "no proxy variables set")
    shown = ", ".join(f"{k}={v}" for k, v in found.items())
    return Check(
        "proxy",
        "warning",
        shown,
        "requests go through a proxy",
        "unset them if that is not intended",
        {"variables": found},
    )


def _impersonation() -> Check:
    from importlib.metadata import PackageNotFoundError, version

    try:
        curl = version("curl_cffi")
    except PackageNotFoundError:
        curl = "not installed"
    detail = f"{IMPERSONATE} TLS fingerprint (curl_cffi {curl})"
    return Check("impersonation", "ok", detail, data={"target": IMPERSONATE, "curl_cffi": curl})


# --- running them ----------------------------------------------------------------------------


async def _with_token(
    options: Options, endpoints: Endpoints, creds: Credentials | None, schema: bool
) -> tuple[list[Check], list[Drift] | None]:
    if creds is None:
        skipped = "no token to try"
        return [
            Check("account", "skipped", skipped),
            Check("chat socket", "skipped", skipped),
        ], None
    from .. import _schema
    from ..client import AsyncClient
    from ._app import remember_secret

    remember_secret(creds.token)
    async with AsyncClient(creds.token, endpoints=endpoints, timeout=options.timeout) as client:
        account = await _account(client)
        if isinstance(account.error, AuthError):
            socket_check = Check("chat socket", "skipped", "the token was refused")
        else:
            socket_check = await _socket(client, options.timeout)
        drift = None
        if schema and account.status == "ok":
            drift = await _schema.check(client, timeout=options.timeout)
    return [account, socket_check], drift


async def run_checks(
    options: Options, *, schema: bool = False
) -> tuple[list[Check], list[Drift] | None]:
    """Every check in order, and the schema drift when asked for (None otherwise)."""
    async with open_endpoints(options) as (endpoints, emu):
        token_check, creds = _token(options, emu.token if emu is not None else None)
        checks = [token_check]
        for label, host, port, tls in _hosts(endpoints):
            checks.append(await _reach(label, host, port, tls, options.timeout))
        more, drift = await _with_token(options, endpoints, creds, schema)
        checks += more
        checks.append(await _clock(endpoints, options.timeout))
    checks += [_proxies(), _impersonation()]
    return checks, drift


_MARKS = {
    "ok": ("ok", "green"),
    "warning": ("warning", "yellow"),
    "failed": ("failed", "red"),
    "skipped": ("skipped", "bright_black"),
}


def _print(checks: list[Check], drift: list[Drift] | None) -> None:
    for check in checks:
        word, colour = _MARKS[check.status]
        click.echo(f"{click.style(f'{word:<8}', fg=colour)} {check.name:<22} {check.detail}")
        if check.cause:
            click.echo(f"{'':<31} cause: {check.cause}")
        if check.fix:
            click.echo(f"{'':<31} fix:   {check.fix}")
    if drift is None:
        return
    click.echo("schema drift (field paths; values are not kept):")
    for item in drift:
        if item.error:
            click.echo(f"  {item.endpoint}: {item.error}")
        elif item.clean:
            click.echo(f"  {item.endpoint}: as the models expect")
        else:
            for label, paths in (("new", item.new), ("missing", item.missing)):
                if paths:
                    click.echo(f"  {item.endpoint}: {label}: {', '.join(paths)}")
        if item.absent:
            click.echo(f"  {item.endpoint}: {len(item.absent)} optional fields not sent (--json)")


@command("doctor")
@click.option("--schema", is_flag=True, help="Also compare live answers with the models.")
@click.pass_obj
def doctor(options: Options, schema: bool) -> int:
    """Check the token, network and service; say what is wrong and what to do.

    Exit status 0 only when no check failed (warnings are fine).
    """
    checks, drift = run(run_checks(options, schema=schema))
    failed = [c for c in checks if c.status == "failed"]
    if options.json:
        report: dict[str, Any] = {"ok": not failed, "checks": [c.as_json() for c in checks]}
        if drift is not None:
            report["schema"] = [asdict(d) for d in drift]
        echo_json(report)
    else:
        _print(checks, drift)
    if not failed:
        return EXIT_OK
    first = failed[0].error
    return exit_status(first) if first is not None else EXIT_ERROR
