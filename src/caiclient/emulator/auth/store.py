"""State of the login area: Firebase accounts, sign-in codes, login attempts, the mailbox.

Persisted kinds: ``firebase_account`` (key: e-mail), ``oob_code`` (key: code),
``login_attempt`` (key: uuid), ``mail`` and ``mail_click`` (key: mail id); users through
the core store.
"""

from __future__ import annotations

import hashlib
import re
import time

import msgspec
from aiohttp import web

from .._util import b64url, new_id, now_iso
from ..store import Store, User

__all__ = [
    "AUTH",
    "CODE_TTL",
    "AuthStore",
    "Click",
    "FirebaseAccount",
    "LoginAttempt",
    "Mail",
    "OobCode",
]

CODE_TTL = 3600.0
"""Seconds an e-mail sign-in code stays valid (and an ``idToken``, ``expiresIn``)."""


class Mail(msgspec.Struct, frozen=True, kw_only=True):
    """A mail the emulator "sent": its ``link`` is an absolute URL of the emulator."""

    id: str
    email: str
    subject: str
    link: str
    sent: str


class FirebaseAccount(msgspec.Struct):
    email: str
    local_id: str
    created: str


class OobCode(msgspec.Struct):
    code: str
    email: str
    issued: float
    used: bool = False


class Click(msgspec.Struct):
    """The redirect target of a mail's tracked link."""

    mail_id: str
    target: str


class LoginAttempt(msgspec.Struct):
    """One tRPC ``auth.login``: pending until its mail link is opened."""

    uuid: str
    email: str
    code: str
    origin: str
    issued: float
    clicked: bool = False


class AuthStore:
    """Accounts, codes, login attempts and the mailbox; written through ``store.persist``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.jwt_key = store.derive_key("firebase-jwt")
        """The key that signs the emulated Firebase ``idToken`` (HS256)."""
        self.code_ttl = CODE_TTL
        """Seconds a sign-in code or login attempt stays valid (tests shorten it)."""
        persist = store.persist
        self.accounts = persist.load("firebase_account", FirebaseAccount)
        self.codes = persist.load("oob_code", OobCode)
        self.attempts = persist.load("login_attempt", LoginAttempt)
        self.mails = persist.load("mail", Mail)
        self.clicks = persist.load("mail_click", Click)

    # ---- mailbox ----
    def send_mail(self, email: str, subject: str, link: str, *, mail_id: str | None = None) -> Mail:
        mail = Mail(
            id=mail_id or new_id(), email=email.lower(), subject=subject, link=link, sent=now_iso()
        )
        self.mails[mail.id] = mail
        self.store.persist.put("mail", mail.id, mail)
        return mail

    def add_click(self, mail_id: str, target: str) -> None:
        """Where a mail's tracked link redirects to."""
        click = Click(mail_id=mail_id, target=target)
        self.clicks[mail_id] = click
        self.store.persist.put("mail_click", mail_id, click)

    def mailbox(self, email: str | None = None) -> list[Mail]:
        """Mails sent to ``email`` (every mail when None), oldest first."""
        wanted = None if email is None else email.strip().lower()
        return [m for m in self.mails.values() if wanted is None or m.email == wanted]

    # ---- codes ----
    def new_code(self, email: str) -> OobCode:
        raw = (
            hashlib.sha256(new_id().encode()).digest() + hashlib.sha256(new_id().encode()).digest()
        )
        code = OobCode(code=b64url(raw)[:54], email=email.lower(), issued=time.time())
        self.codes[code.code] = code
        self.store.persist.put("oob_code", code.code, code)
        return code

    def redeem(self, code: str, email: str) -> str | None:
        """Use ``code`` for ``email``; None on success, else the Firebase error message."""
        rec = self.codes.get(code)
        if rec is None or rec.used:
            return "INVALID_OOB_CODE"
        if time.time() - rec.issued > self.code_ttl:
            return "EXPIRED_OOB_CODE"
        if rec.email != email.lower():
            return "INVALID_EMAIL"
        rec.used = True
        self.store.persist.put("oob_code", rec.code, rec)
        return None

    def account(self, email: str) -> tuple[FirebaseAccount, bool]:
        """The Firebase account of ``email`` and whether it was just created."""
        key = email.lower()
        account = self.accounts.get(key)
        if account is not None:
            return account, False
        local_id = re.sub(r"[^A-Za-z0-9]", "", b64url(hashlib.sha256(key.encode()).digest()))
        account = FirebaseAccount(email=key, local_id=local_id[:28], created=now_iso())
        self.accounts[key] = account
        self.store.persist.put("firebase_account", key, account)
        return account, True

    def new_attempt(self, email: str, origin: str) -> LoginAttempt:
        code = self.new_code(email)
        attempt = LoginAttempt(
            uuid=new_id(), email=email.lower(), code=code.code, origin=origin, issued=time.time()
        )
        self.attempts[attempt.uuid] = attempt
        self.store.persist.put("login_attempt", attempt.uuid, attempt)
        return attempt

    def click(self, attempt: LoginAttempt) -> None:
        if not attempt.clicked:
            attempt.clicked = True
            self.store.persist.put("login_attempt", attempt.uuid, attempt)

    # ---- character.ai users ----
    def user_for_email(self, email: str) -> User:
        """The user with this e-mail; a new one (username from the e-mail) if none has it."""
        key = email.lower()
        for user in self.store.users_by_id.values():
            if user.email.lower() == key:
                return user
        local = re.sub(r"[^A-Za-z0-9_]", "_", key.split("@", 1)[0])[:16] or "user"
        username = self._free_username(local.ljust(2, "_"))
        token = self.store.derive(f"token:google:{key}")
        user = self.store.add_user(username, key.split("@", 1)[0], token=token)
        user.email = key
        self.store.persist.put("user", user.id, user)
        return user

    def guest(self, lazy_uuid: str) -> User:
        """The guest user of ``lazy_uuid`` (the same one every time)."""
        token = self.store.derive(f"token:lazy:{lazy_uuid}")
        user = self.store.users_by_token.get(token)
        if user is not None:
            return user
        number = int(token[:12], 16) % 10**8
        user = self.store.add_user(self._free_username(f"Guest{number:08d}"), "Guest", token=token)
        user.email = ""
        self.store.persist.put("user", user.id, user)
        return user

    def _free_username(self, base: str) -> str:
        taken = {u.username.lower() for u in self.store.users_by_id.values()}
        username, n = base, 1
        while username.lower() in taken:
            n += 1
            username = f"{base}{n}"
        return username


AUTH = web.AppKey("caiclient_emulator_auth", AuthStore)
