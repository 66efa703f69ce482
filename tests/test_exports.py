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
        for name in (
            "account",
            "personas",
            "users",
            "characters",
            "chats",
            "voices",
            "images",
            "v1",
        ):
            async_cls = type(getattr(client, name)).__name__
            sync_cls = type(getattr(sync, name)).__name__
            assert async_cls == "Async" + sync_cls, (async_cls, sync_cls)
    finally:
        sync.close()
