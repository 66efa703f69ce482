"""The ``cai`` command line. Subcommands are imported only when they run (see ``_app.py``)."""

from __future__ import annotations

from ._app import main

__all__ = ["main"]
