"""How ``cai`` shows things: stable JSON shapes for scripts (docs/cli.md lists every field)
and rich tables for people. rich is imported only when a table is drawn."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import click

from ..models import Character, CharacterShort, Chat, Persona, Turn, Voice

__all__ = [
    "character_json",
    "chat_json",
    "echo_json",
    "persona_json",
    "table",
    "turn_json",
    "voice_json",
]


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def character_json(c: Character | CharacterShort) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "title": c.title,
        "description": c.description,
        "greeting": c.greeting,
        "creator": c.creator_username,
        "interactions": c.num_interactions,
        "upvotes": c.upvotes,
        "visibility": c.visibility,
        "avatar_url": c.avatar_url,
    }


def chat_json(chat: Chat) -> dict[str, Any]:
    return {
        "chat_id": chat.chat_id,
        "character_id": chat.character_id,
        "character_name": chat.character_name,
        "name": chat.name,
        "created": _time(chat.create_time),
        "archived": chat.is_archived,
        "model": chat.preferred_model_type,
    }


def turn_json(turn: Turn) -> dict[str, Any]:
    primary = turn.primary
    return {
        "chat_id": turn.chat_id,
        "turn_id": turn.turn_id,
        "candidate_id": primary.candidate_id if primary is not None else None,
        "author": turn.author.name,
        "is_human": turn.is_human,
        "text": turn.text,
        "created": _time(turn.create_time),
        "pinned": turn.is_pinned,
        "candidates": len(turn.candidates),
        "truncated": bool(primary and primary.safety_truncated),
    }


def persona_json(p: Persona) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "definition": p.definition,
        "greeting": p.greeting,
        "description": p.description,
    }


def voice_json(v: Voice) -> dict[str, Any]:
    return {
        "id": v.id,
        "name": v.name,
        "description": v.description,
        "gender": v.gender,
        "public": v.is_public,
        "creator": v.creator_username,
        "preview_text": v.preview_text,
    }


def echo_json(value: Any) -> None:
    """One JSON document on its own line."""
    click.echo(json.dumps(value, ensure_ascii=False))


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A table on stdout (rich); an empty one says so in a line."""
    from rich.console import Console
    from rich.table import Table

    materialised = [["" if cell is None else str(cell) for cell in row] for row in rows]
    # Piped output is not cut to 80 columns: ids must stay whole (scripts should use --json).
    console = Console(width=None if sys.stdout.isatty() else 200)
    if not materialised:
        console.print(f"{title}: none.")
        return
    grid = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for index, column in enumerate(columns):
        # Ids are copied into the next command: never wrap the last column.
        last = index == len(columns) - 1
        grid.add_column(column, overflow="fold", no_wrap=last)
    for row in materialised:
        grid.add_row(*row)
    console.print(grid)
