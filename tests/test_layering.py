"""The design's "never" arrows and size rules, checked on the source with ``ast``.

- the core (``protocol/``, ``models/``, ``errors.py``, ``endpoints.py``) does no I/O and
  imports no transport, client, app or emulator module;
- no ``_api`` namespace module imports another one;
- no function in ``src/`` is longer than 50 lines (data tables aside; the generated
  ``sync.py`` is exempt: its length is the async surface's).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "caiclient"

CORE = ["protocol", "models", "errors.py", "endpoints.py"]
# What the core may import from the package: only other core modules.
CORE_MODULES = {"protocol", "models", "errors", "endpoints"}
NO_IO = {"asyncio", "socket", "ssl", "aiohttp", "curl_cffi", "threading", "time", "sqlite3"}
# Functions longer than 50 lines that are a list of fields, not logic.
DATA_TABLES: set[str] = set()


def _files(*parts: str) -> list[Path]:
    found: list[Path] = []
    for part in parts:
        path = SRC / part
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return found


def _imports(path: Path) -> list[tuple[str, int]]:
    """(absolute module inside or outside caiclient, level) of every import in ``path``."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(SRC.parent).with_suffix("").parts[:-1]
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names = [node.module] if node.module else [a.name for a in node.names]
                found += [(".".join((*base, name)), node.level) for name in names]
            else:
                found.append((node.module or "", 0))
    return found


def _inside(module: str) -> str | None:
    """The first component below ``caiclient`` of an import, or None for third parties."""
    parts = module.split(".")
    return parts[1] if parts[0] == "caiclient" and len(parts) > 1 else None


@pytest.mark.parametrize("path", _files(*CORE), ids=lambda p: str(p.relative_to(SRC)))
def test_the_core_imports_no_io_and_nothing_above_it(path: Path) -> None:
    for module, _level in _imports(path):
        inner = _inside(module)
        if inner is not None:
            assert inner in CORE_MODULES, f"{path.name} imports {module}"
        else:
            assert module.split(".")[0] not in NO_IO, f"{path.name} imports {module}"


@pytest.mark.parametrize("path", _files("_api"), ids=lambda p: p.name)
def test_no_api_module_imports_another(path: Path) -> None:
    for module, _level in _imports(path):
        parts = module.split(".")
        if parts[:2] == ["caiclient", "_api"] and len(parts) > 2:
            pytest.fail(f"_api/{path.name} imports {module}: share code below _api instead")


def test_the_emulator_imports_nothing_of_the_client() -> None:
    for path in _files("emulator"):
        for module, _level in _imports(path):
            inner = _inside(module)
            assert inner in (None, "emulator"), f"{path.relative_to(SRC)} imports {module}"


def _long_functions() -> list[str]:
    long: list[str] = []
    for path in _files("."):
        if path.name == "sync.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                name = f"{path.relative_to(SRC)}:{node.name}"
                if lines > 50 and name not in DATA_TABLES:
                    long.append(f"{name} ({lines} lines)")
    return long


def test_no_function_is_longer_than_50_lines() -> None:
    assert _long_functions() == []


def test_the_layering_checks_can_fail() -> None:
    # The import reader sees relative imports the way the package resolves them.
    probe = SRC / "protocol" / "neo.py"
    modules = {module for module, _ in _imports(probe)}
    assert "caiclient.errors" in modules and "caiclient.models" in modules


def test_the_chats_namespace_stays_under_450_lines() -> None:
    # Issue 11: `_api/chats.py` keeps only the namespace (the rules are in the core).
    lines = (SRC / "_api" / "chats.py").read_text(encoding="utf-8").count("\n")
    assert lines < 450, lines
