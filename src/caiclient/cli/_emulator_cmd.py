"""``cai emulator``: the click command around :func:`caiclient.cli.emulator.run_emulator`."""

from __future__ import annotations

import click

from ._app import run

__all__ = ["emulator"]


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=0, help="Port (default: a free one).")
@click.option(
    "--chunk-delay",
    type=click.FloatRange(min=0),
    default=0.05,
    show_default=True,
    help="Seconds between streamed reply frames.",
)
@click.option(
    "--state",
    metavar="FILE",
    help="Keep all state in this SQLite file, so it survives restarts (default: memory).",
)
@click.option("--seed", metavar="FILE", help="Extra users and characters from a JSON or TOML file.")
@click.option(
    "--secret",
    help="Derive every token from this secret, for reproducible runs "
    "(default: random, or the one kept in --state).",
)
def emulator(
    host: str,
    port: int,
    chunk_delay: float,
    state: str | None,
    seed: str | None,
    secret: str | None,
) -> int:
    """Serve the local emulator until Ctrl-C; print its URL, tokens and cast."""
    from .emulator import run_emulator

    served = run_emulator(
        host, port, chunk_delay=chunk_delay, state_file=state, seed=seed, secret=secret
    )
    return run(served)
