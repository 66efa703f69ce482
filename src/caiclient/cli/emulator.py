"""``cai emulator``: the local backend as a long-running server."""

from __future__ import annotations

import logging
import sys

__all__ = ["run_emulator"]


async def run_emulator(
    host: str,
    port: int,
    *,
    chunk_delay: float,
    state_file: str | None = None,
    seed: str | None = None,
    secret: str | None = None,
) -> int:
    from ..emulator import Emulator, serve

    # The emulator logs what the operator must see (a non-loopback bind) as a warning on
    # "caiclient.emulator"; cai's own handler on "caiclient" shows it, tokens redacted.
    emulator_log = logging.getLogger("caiclient.emulator")
    saved_level = emulator_log.level
    emulator_log.setLevel(logging.WARNING)

    def ready(emu: Emulator) -> None:
        # The emulator's tokens are local stand-ins, derived from its own secret (which is
        # never shown), so they are printed for the developer who started it.
        print(f"caiclient emulator on {emu.url}", flush=True)
        print(f"  token:    {emu.token}", flush=True)
        print(f"  control:  {emu.control_token}   (header X-Emulator-Control)", flush=True)
        if emu.persistence.path is not None:
            print(f"  state:    {emu.persistence.path}", flush=True)
        for character in emu.characters:
            print(f"  character {character.name:<14} {character.id}", flush=True)
        print(f"  use it:   export CAI_BASE_URL={emu.url} CAI_TOKEN={emu.token}", flush=True)
        print("Ctrl-C stops it.", file=sys.stderr, flush=True)

    try:
        await serve(
            host,
            port,
            chunk_delay=chunk_delay,
            state_file=state_file,
            seed=seed,
            secret=secret,
            on_ready=ready,
        )
    except (OSError, ValueError) as exc:
        print(f"cai emulator: {exc}", file=sys.stderr)
        return 2
    finally:
        emulator_log.setLevel(saved_level)
    return 0
