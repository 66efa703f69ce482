"""Where exports go: file names a person recognises, and writes that never leave half a file.

Each file is written to a hidden temporary name beside its target and renamed over it
(``os.replace``) only once complete, so an interrupted export leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import ArchiveWriteError, OutputExists

__all__ = ["safe_name", "write_atomic"]

_UNSAFE = re.compile(r"[^\w\-. ()]+")
_BUFFER = 1 << 20
# The opener, a seam for tests that inject I/O failures (a full disk).
_open = open


def safe_name(text: str, *, fallback: str = "untitled", limit: int = 80) -> str:
    """``text`` usable as a file name on every common file system."""
    name = _UNSAFE.sub("_", text).strip(" ._")[:limit].strip(" ._")
    return name or fallback


def write_atomic(path: Path, chunks: Iterable[bytes], *, force: bool = False) -> int:
    """Write ``chunks`` to ``path`` via a temporary file; return the bytes written.

    Raises OutputExists if ``path`` exists and not ``force``; ArchiveWriteError if the file
    system refuses (read-only, full): the target is then untouched and no temporary file
    is left behind.
    """
    if path.exists() and not force:
        raise OutputExists("already exists (force, or --force, replaces it)", path=path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    size = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _open(tmp, "wb", buffering=_BUFFER) as file:
            for chunk in chunks:
                file.write(chunk)
                size += len(chunk)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ArchiveWriteError(f"cannot write: {exc.strerror or exc}", path=path) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return size
