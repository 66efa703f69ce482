"""The emulator's shape, checked on its source with ``ast``: it imports nothing of the client,
every area package has the same shape, no function is over 50 lines, and the few facts it
deliberately keeps its own copy of agree with the client's copy."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import caiclient.emulator
from caiclient.protocol import characters as client_characters
from caiclient.protocol import media as client_media

ROOT = Path(caiclient.emulator.__file__).parent
AREAS = ("account", "auth", "characters", "chat", "media", "rooms", "v1")


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(("caiclient", "emulator", *parts)), ast.parse(path.read_text(), str(path))


def imported(module: str, tree: ast.Module) -> Iterator[str]:
    """Every module ``module`` imports, absolute, including imports inside functions."""
    package = module if tree_is_package(module) else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.module or ""
                continue
            base = package.split(".")
            base = base[: len(base) - node.level + 1]
            yield ".".join([*base, node.module] if node.module else base)


def tree_is_package(module: str) -> bool:
    return (ROOT.joinpath(*module.split(".")[2:]) / "__init__.py").exists()


def test_the_emulator_imports_nothing_of_the_client() -> None:
    seen = 0
    for module, tree in modules():
        for name in imported(module, tree):
            seen += 1
            if name == "caiclient" or name.startswith("caiclient."):
                assert name == "caiclient.emulator" or name.startswith("caiclient.emulator."), (
                    f"{module} imports {name}"
                )
    assert seen > 100  # the walk did see the imports


def test_the_checker_sees_relative_imports_that_leave_the_emulator() -> None:
    tree = ast.parse("from ...client import AsyncClient\nfrom ..wire import Turn\n")
    assert list(imported("caiclient.emulator.chat.ws", tree)) == [
        "caiclient.client",
        "caiclient.emulator.wire",
    ]


@pytest.mark.parametrize("area", AREAS)
def test_every_area_has_the_same_shape(area: str) -> None:
    package = importlib.import_module(f"caiclient.emulator.{area}")
    assert callable(package.register)
    assert (ROOT / area / "store.py").exists()
    store = importlib.import_module(f"caiclient.emulator.{area}.store")
    # One naming rule: the key is a constant named after the area, its string
    # "caiclient_emulator_<area>" (the repr is aiohttp's only public view of the name).
    key = getattr(store, area.upper())
    assert type(key).__name__ == "AppKey"
    assert f".caiclient_emulator_{area}," in repr(key)


def test_no_function_is_longer_than_50_lines() -> None:
    long = [
        f"{module}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for module, tree in modules()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > 50
    ]
    assert long == []


# ---- deliberate duplicates agree with the client's copies ---------------------------------

SAMPLES = [
    b"\x89PNG\r\n\x1a\n\x00\x00",
    b"\xff\xd8\xff\xe0JFIF",
    b"GIF87a....",
    b"GIF89a....",
    b"RIFF\x00\x00\x00\x00WEBPVP8L",
    b"RIFF\x00\x00\x00\x00WAVEfmt ",
    b"ID3\x03\x00\x00",
    b"\xff\xfb\x90\x00",
    b"OggS\x00\x02",
    b"fLaC\x00\x00",
    b"\x00\x00\x00\x20ftypM4A ",
    b"RIFF",
    b"",
    b"plain text",
    b"\xff",
]


@pytest.mark.parametrize("data", SAMPLES)
def test_the_emulators_file_sniffing_agrees_with_the_clients(data: bytes) -> None:
    from caiclient.emulator.media import files

    assert files.sniff_image(data) == client_media.sniff_image(data)
    assert files.sniff_audio(data) == client_media.sniff_audio(data)


def test_the_emulators_report_categories_agree_with_the_clients() -> None:
    from caiclient.emulator.characters import catalog

    assert set(catalog.REPORT_CATEGORIES) == set(client_characters.REPORT_CATEGORIES)
