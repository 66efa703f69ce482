"""The public surface: what ``caiclient`` and its public modules export, and nothing private."""

from __future__ import annotations

import importlib

import pytest

import caiclient


def test_public_names_are_sorted_and_complete() -> None:
    # isort-style, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then the rest.
    def kind(name: str) -> tuple[int, str]:
        rank = 0 if name.isupper() else 1 if name[0].isupper() else 2
        return rank, name

    assert caiclient.__all__ == sorted(caiclient.__all__, key=kind)
    for name in caiclient.__all__:
        assert hasattr(caiclient, name), name
    public = {
        n
        for n, v in vars(caiclient).items()
        if not n.startswith("_") and not isinstance(v, type(caiclient))
    }
    assert public <= set(caiclient.__all__)


@pytest.mark.parametrize(
    "module",
    ["caiclient.errors", "caiclient.models", "caiclient.transports", "caiclient.emulator"],
)
def test_public_modules_export_what_they_define(module: str) -> None:
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name


def test_caiclient_auth_is_reachable_from_the_package() -> None:
    # `import caiclient; caiclient.auth.guest` must work (the review found it did not).
    assert callable(caiclient.auth.guest)
    assert caiclient.Auth.__name__ == "Auth" and caiclient.AsyncAuth.__name__ == "AsyncAuth"


def test_every_namespace_class_follows_the_naming_rule() -> None:
    client = caiclient.AsyncClient("0" * 40)
    sync = caiclient.Client("0" * 40)
    try:

        def namespaces(obj: object) -> set[str]:
            found = set()
            for name in dir(obj):
                if not name.startswith("_") and type(getattr(obj, name)).__name__.endswith("API"):
                    found.add(name)
            return found

        names = namespaces(client)
        assert names == namespaces(sync)  # The same namespaces on both clients…
        assert {"account", "chats", "rooms", "v1"} <= names  # (the reflection finds them)
        for name in sorted(names):  # …each named by the one rule.
            async_cls = type(getattr(client, name)).__name__
            sync_cls = type(getattr(sync, name)).__name__
            assert async_cls == "Async" + sync_cls, (async_cls, sync_cls)
    finally:
        sync.close()


def test_the_lazy_names_are_the_objects_the_type_checking_imports_name() -> None:
    # The package imports its names on first use; type checkers read the TYPE_CHECKING block.
    import ast
    from pathlib import Path

    tree = ast.parse(Path(caiclient.__file__).read_text(encoding="utf-8"))
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
    )
    imported: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1
        for alias in node.names:
            imported[alias.name] = f"caiclient.{node.module}" if node.module else "caiclient"
    assert set(imported) == set(caiclient.__all__) - {"__version__"}
    for name, module in imported.items():
        if module == "caiclient":  # from . import auth
            assert getattr(caiclient, name) is importlib.import_module(f"caiclient.{name}")
        else:
            assert getattr(caiclient, name) is getattr(importlib.import_module(module), name), name


def test_importing_the_package_loads_no_client_until_a_name_is_used() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, caiclient\n"
        "before = {m for m in ('asyncio', 'msgspec', 'caiclient.client') if m in sys.modules}\n"
        "caiclient.errors.CaiError, caiclient.AsyncClient\n"
        "after = {m for m in ('asyncio', 'msgspec', 'caiclient.client') if m in sys.modules}\n"
        "print(sorted(before), sorted(after))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "['asyncio',", "'caiclient.client',", "'msgspec']"]


@pytest.mark.parametrize(
    "name", ["auth", "client", "endpoints", "errors", "models", "protocol", "sync"]
)
def test_the_submodules_the_package_used_to_load_are_still_attributes(name: str) -> None:
    import subprocess
    import sys

    probe = f"import caiclient; print(caiclient.{name}.__name__)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"caiclient.{name}"
