"""``ooba``: text-generation-webui chat JSON (docs/archive.md, "Exports").

All four keys are written (``internal``/``visible`` for current webui, ``data``/
``data_visible`` for SillyTavern's importer). The format is strictly [user, character]
pairs: a greeting before any user message opens with ``<|BEGIN-VISIBLE-CHAT|>``, and
consecutive messages of one side are joined with a blank line. ``visible`` is HTML-escaped,
as webui shows it. Only primary candidates fit the format.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Iterator

from ._turns import decode_turn, encode

__all__ = ["BEGIN", "pairs", "render_chat"]

BEGIN = "<|BEGIN-VISIBLE-CHAT|>"


def pairs(turns: Iterable[bytes]) -> list[list[str]]:
    """[user, character] pairs from raw turns, oldest first."""
    result: list[list[str]] = []
    for raw in turns:
        turn = decode_turn(raw)
        primary = next(
            (c for c in turn.candidates if c.candidate_id == turn.primary_candidate_id),
            turn.candidates[0] if turn.candidates else None,
        )
        text = primary.raw_content if primary is not None else ""
        if turn.author.is_human:
            if result and not result[-1][1] and result[-1][0] != BEGIN:
                result[-1][0] += "\n\n" + text
            else:
                result.append([text, ""])
        elif not result:
            result.append([BEGIN, text])
        elif result[-1][1]:
            result[-1][1] += "\n\n" + text
        else:
            result[-1][1] = text
    return result


def render_chat(turns: Iterable[bytes]) -> Iterator[bytes]:
    internal = pairs(turns)
    visible = [["" if u == BEGIN else html.escape(u), html.escape(b)] for u, b in internal]
    yield encode(
        {"internal": internal, "visible": visible, "data": internal, "data_visible": visible}
    )
