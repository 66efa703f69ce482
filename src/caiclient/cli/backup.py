"""``cai backup`` and ``cai export``: the archive (docs/archive.md) from the command line.

``backup`` syncs the archive file from the account: progress bars on a terminal (rich),
plain lines otherwise, one JSON event per line with ``--json``; a summary at the end, and a
non-zero exit status when anything failed. ``export`` works offline, from the file alone.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import ValidationError
from ._app import EXIT_ERROR, EXIT_OK, Options, Session, command, exit_status, run_with_client

if TYPE_CHECKING:
    from ..archive import Event, SyncSummary

__all__ = ["backup", "default_archive", "export"]

FORMATS = ("native", "sillytavern", "ooba", "cai-dump", "markdown", "html", "card")


def default_archive(profile: str) -> Path:
    """``<data dir>/archives/<profile>.cai``: where a profile's archive lives by default."""
    from ..profiles import data_dir

    return data_dir() / "archives" / f"{profile}.cai"


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"--since {value!r} is not a date; use YYYY-MM-DD or an ISO 8601 time"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _archive_path(options: Options, archive: Path | None) -> Path:
    path = archive or default_archive(options.profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# --- showing progress ------------------------------------------------------------------------


class _Lines:
    """Plain progress lines on stderr (not a terminal): one per chat that was not unchanged."""

    def __call__(self, event: Event) -> None:
        kind, c = event.kind, event.counters
        if kind == "planned":
            click.echo(f"checking {c.chats_total} chats and histories", err=True)
        elif kind == "chat" and getattr(event, "status", "") != "unchanged":
            e: Any = event
            click.echo(
                f"[{c.chats_done + 1}/{c.chats_total}] {e.status:9} {e.chat_id} "
                f"+{e.turns_new} new, {e.turns_changed} changed, {e.turns_removed} removed",
                err=True,
            )
        elif kind in ("chat_failed", "step_failed", "paused"):
            click.echo(_describe(event), err=True)

    def close(self) -> None:
        return None


class _Bars:
    """rich progress bars on a terminal: chats (with ETA), turns, requests per second."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._progress.start()
        self._chats = self._progress.add_task("chats", total=None, detail="")

    def __call__(self, event: Event) -> None:
        c = event.counters
        detail = f"{c.turns:,} turns · {c.requests_per_second:.1f} req/s"
        total = c.chats_total or None
        self._progress.update(self._chats, total=total, completed=c.chats_done, detail=detail)
        if event.kind in ("chat_failed", "step_failed", "paused"):
            self._progress.console.print(_describe(event), markup=False, highlight=False)

    def close(self) -> None:
        self._progress.stop()


def _describe(event: Event) -> str:
    e: Any = event
    if event.kind == "paused":
        return f"paused {e.seconds:.1f} s ({e.reason})"
    what = getattr(e, "chat_id", None) or getattr(e, "object_id", None) or getattr(e, "step", "")
    return f"failed {what}: {e.error}: {e.message}"


def _json_events(event: Event) -> None:
    click.echo(json.dumps(event.as_dict()))


def _reporter(options: Options) -> tuple[Callable[[Event], None], Callable[[], None]]:
    if options.json:
        return _json_events, lambda: None
    show: _Lines | _Bars = _Bars() if sys.stderr.isatty() else _Lines()
    return show, show.close


def _summary_lines(summary: SyncSummary, path: Path) -> list[str]:
    s = summary
    lines = [
        f"archive: {path}",
        f"chats:   {s.chats_new} new, {s.chats_changed} changed, {s.chats_unchanged} unchanged, "
        f"{s.chats_removed} removed on the server (kept), {s.chats_skipped} skipped",
        f"rooms:   {s.rooms_new} new, {s.rooms_changed} changed, {s.rooms_unchanged} unchanged, "
        f"{s.rooms_removed} removed on the server (kept), {s.rooms_skipped} skipped",
        f"turns:   {s.turns_new} new, {s.turns_changed} changed, {s.turns_removed} removed "
        "on the server (kept)",
        f"legacy:  {s.v1_histories_new} new, {s.v1_histories_changed} changed, "
        f"{s.v1_histories_unchanged} unchanged V1 histories",
        f"done:    {s.requests} requests in {s.seconds:.1f} s, {len(s.errors)} errors",
    ]
    lines += [f"error:   {e.scope} {e.object_id or ''}: {e.error}: {e.message}" for e in s.errors]
    if s.fatal is not None:
        lines.append(f"stopped: {s.fatal.error}: {s.fatal.message}")
    return lines


def _status(summary: SyncSummary) -> int:
    if summary.fatal is not None:
        from .. import errors

        found = getattr(errors, summary.fatal.error, None)
        if isinstance(found, type) and issubclass(found, errors.CaiError):
            return exit_status(found(summary.fatal.message))
        return EXIT_ERROR
    return EXIT_OK if summary.ok else EXIT_ERROR


# --- the commands ----------------------------------------------------------------------------


@command("backup")
@click.option("--all", "everything", is_flag=True, help="Every chat of the account (the default).")
@click.option(
    "--character",
    "characters",
    multiple=True,
    metavar="ID",
    help="Only this character's chats (repeatable).",
)
@click.option(
    "--chat",
    "chats",
    multiple=True,
    metavar="ID",
    help="Only this chat or group chat (repeatable).",
)
@click.option(
    "--archive",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The archive file (default: one per profile in the data folder).",
)
@click.option(
    "--since",
    metavar="DATE",
    help="Skip chats with no activity since DATE (YYYY-MM-DD or ISO 8601).",
)
@click.option("--full", is_flag=True, help="Re-read every page of every chat, not just the newest.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=4.0,
    show_default=True,
    help="Requests per second at most (0: no limit).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option("--no-v1", is_flag=True, help="Leave out legacy Chat V1 histories.")
@click.pass_obj
def backup(
    options: Options,
    everything: bool,
    characters: Sequence[str],
    chats: Sequence[str],
    archive: Path | None,
    since: str | None,
    full: bool,
    rate: float,
    concurrency: int,
    no_v1: bool,
) -> int:
    """Back up every chat (group chats too) the account can read, incrementally.

    A second run reads only what changed (the newest page of each chat); --full re-reads
    everything. An interrupted run resumes where it stopped. Exits non-zero if any chat
    failed; the others are archived all the same.
    """
    if everything and (characters or chats):
        raise ValidationError("--all cannot be combined with --character or --chat")
    if characters and chats:
        raise ValidationError("give --character or --chat, not both")
    when = _since(since)
    path = _archive_path(options, archive)

    async def body(session: Session) -> int:
        from ..archive import AsyncArchive

        progress, close = _reporter(options)
        try:
            async with AsyncArchive(path) as store:
                summary = await store.sync(
                    session.client,
                    full=full,
                    characters=list(characters) or None,
                    chats=list(chats) or None,
                    since=when,
                    v1=not no_v1,
                    rate=rate or None,
                    concurrency=concurrency,
                    progress=progress,
                )
        finally:
            close()
        if not options.json:
            for line in _summary_lines(summary, path):
                click.echo(line)
        return _status(summary)

    return run_with_client(options, body)


@command("export")
@click.option("--format", "fmt", required=True, type=click.Choice(FORMATS), help="What to write.")
@click.option(
    "--character",
    "characters",
    multiple=True,
    metavar="ID",
    help="Only this character (repeatable).",
)
@click.option(
    "--chat",
    "chats",
    multiple=True,
    metavar="ID",
    help="Only this chat or group chat (repeatable).",
)
@click.option(
    "--archive",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The archive file (default: the profile's).",
)
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="A folder for the files, or the file when there is one.",
)
@click.option("--force", is_flag=True, help="Replace files that exist.")
@click.pass_obj
def export(
    options: Options,
    fmt: str,
    characters: Sequence[str],
    chats: Sequence[str],
    archive: Path | None,
    out: Path,
    force: bool,
) -> int:
    """Export chats or characters from the archive, offline (no login needed).

    Formats: native (lossless JSON lines), sillytavern, ooba, cai-dump, markdown, html (an
    offline site with search) and card (Character Card V2/V3 JSON and PNG).
    """
    from ..archive import Archive

    if characters and chats:
        raise ValidationError("give --character or --chat, not both")
    path = archive or default_archive(options.profile)
    with Archive(path, readonly=True) as store:
        result = store.export(
            fmt, out, characters=list(characters) or None, chats=list(chats) or None, force=force
        )
    if options.json:
        click.echo(
            json.dumps(
                {
                    "format": result.format,
                    "files": [str(p) for p in result.files],
                    "chats": result.chats,
                    "turns": result.turns,
                    "bytes": result.bytes,
                    "warnings": result.warnings,
                }
            )
        )
        return EXIT_OK
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"{len(result.files)} files, {result.chats} chats, {result.turns} turns, "
        f"{result.bytes:,} bytes in {out}"
    )
    return EXIT_OK
