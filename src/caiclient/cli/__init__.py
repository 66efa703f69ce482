"""The ``cai`` command line. Heavy modules are imported by the subcommand that needs them."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cai", description="Character.AI from the command line, and a local emulator of it."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo", help="chat with a character on a built-in emulator (no account or network needed)"
    )
    demo.add_argument("--character", default="Sage", help="seeded character's name (default Sage)")
    demo.add_argument(
        "--script",
        action="store_true",
        help="run the scripted conversation even when stdin is a terminal",
    )

    emulator = commands.add_parser("emulator", help="serve the local emulator until Ctrl-C")
    emulator.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    emulator.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    emulator.add_argument(
        "--chunk-delay",
        type=float,
        default=0.05,
        help="seconds between streamed reply frames (default 0.05)",
    )
    emulator.add_argument(
        "--state",
        metavar="FILE",
        help="keep all state in this SQLite file, so it survives restarts (default: memory)",
    )
    emulator.add_argument(
        "--seed", metavar="FILE", help="extra users and characters from a JSON or TOML file"
    )
    emulator.add_argument(
        "--secret",
        help="derive every token from this secret, for reproducible runs (default: random, "
        "or the one kept in --state)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cai`` with ``argv`` (default: the process arguments); return the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from .demo import run_demo

            interactive = sys.stdin.isatty() and not args.script
            return asyncio.run(run_demo(character=args.character, interactive=interactive))
        if args.command == "emulator":
            from .emulator import run_emulator

            return asyncio.run(
                run_emulator(
                    args.host,
                    args.port,
                    chunk_delay=args.chunk_delay,
                    state_file=args.state,
                    seed=args.seed,
                    secret=args.secret,
                )
            )
    except KeyboardInterrupt:
        return 130
    return 2  # pragma: no cover - argparse rejects unknown commands
