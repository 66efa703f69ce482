"""The Django REST app of ``plus.character.ai`` / ``beta.character.ai`` (PROTOCOL.md §4).

Both hosts serve the same app, so every route is registered under ``/plus`` and ``/beta``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ._http import ApiError, authenticate, json_response, read_json
from .store import User

__all__ = ["PREFIXES", "register"]

PREFIXES = ("/plus", "/beta")


def user_payload(user: User) -> dict[str, Any]:
    """The ``GET /chat/user/`` body (PROTOCOL.md §4.1); the id is an integer here."""
    account = {
        "name": user.name,
        "avatar_type": "DEFAULT",
        "onboarding_complete": True,
        "avatar_file_name": None,
        "mobile_onboarding_complete": None,
    }
    inner = {
        "username": user.username,
        "id": int(user.id),
        "first_name": None,
        "account": account,
        "is_staff": False,
        "subscription": None,
        "entitlements": [],
    }
    return {
        "user": {
            "user": inner,
            "is_human": True,
            "name": user.name,
            "email": user.email,
            "date_joined": user.date_joined,
            "needs_to_acknowledge_policy": False,
            "suspended_until": None,
            "hidden_characters": [],
            "blocked_users": [],
            "bio": user.bio,
            "interests": None,
            "date_of_birth": None,
        }
    }


async def get_user(request: web.Request) -> web.Response:
    return json_response(user_payload(authenticate(request)))


async def update_user(request: web.Request) -> web.Response:
    """``POST /chat/user/update/`` (PROTOCOL.md §4.2): set name, username and bio."""
    user = authenticate(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, {"status": "NOT_OK", "error": "Expected a JSON object"})
    for key in ("username", "name", "bio"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise ApiError(400, {"status": "NOT_OK", "error": f"{key} must be a string"})
    user.username = body.get("username") or user.username
    user.name = body.get("name") or user.name
    if "bio" in body:
        user.bio = body["bio"]
    return json_response({"status": "OK"})


def register(app: web.Application) -> None:
    """Add this area's routes to ``app`` under both Django host prefixes."""
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/chat/user/", get_user)
        app.router.add_post(f"{prefix}/chat/user/update/", update_user)
