"""Login profiles and the token store, shared by ``cai`` and every app built on caiclient.

A *profile* is a name (``default`` unless you say otherwise) under which one account's
token is kept. Where the token comes from, in order:

1. ``$CAI_TOKEN``, which overrides both stores (for CI and one-off runs);
2. the OS keyring (service ``caiclient``, user = profile name), when a usable backend exists;
3. a file ``<config_dir>/tokens/<profile>.json``, created with mode 0600 in a 0700 folder.

A token file is checked on every read: one that other users could read (or that belongs to
someone else) is refused with :class:`~caiclient.errors.NotLoggedIn` and a message saying
what to do; so is a damaged one. Tokens are never logged, printed or put in an exception
text; :attr:`Credentials.masked` is the form that may be shown::

    from caiclient import AsyncClient, profiles

    creds = profiles.load_credentials("work")      # NotLoggedIn if there is none
    async with AsyncClient(creds.token) as client:
        ...

``config_dir()`` and ``data_dir()`` follow the platform's conventions (platformdirs), and
``$CAI_CONFIG_DIR`` / ``$CAI_DATA_DIR`` move them. No function here does network I/O.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ._core import TOKEN_ENV, normalise_token
from .errors import CaiError, NotLoggedIn, ValidationError

__all__ = [
    "CONFIG_DIR_ENV",
    "DATA_DIR_ENV",
    "DEFAULT_PROFILE",
    "KEYRING_SERVICE",
    "TOKEN_ENV",
    "Credentials",
    "KeyringStatus",
    "Source",
    "check_profile",
    "config_dir",
    "data_dir",
    "forget",
    "keyring_status",
    "load_credentials",
    "mask",
    "save_token",
    "token_file",
]

CONFIG_DIR_ENV = "CAI_CONFIG_DIR"
DATA_DIR_ENV = "CAI_DATA_DIR"
DEFAULT_PROFILE = "default"
KEYRING_SERVICE = "caiclient"
_APP = "caiclient"
_PROFILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_FILE_VERSION = 1

Source = Literal["env", "keyring", "file", "emulator"]
"""Where a token came from: ``$CAI_TOKEN``, the OS keyring, the token file, or (in ``cai
--emulator``) the embedded emulator's own token."""


def mask(token: str) -> str:
    """A token as it may be shown: its last 4 characters only (``…1a2b``)."""
    return f"…{token[-4:]}" if len(token) >= 12 else "…"


@dataclass(frozen=True)
class Credentials:
    """A profile's token and where it came from. ``repr()`` never shows the token."""

    token: str = field(repr=False)
    source: Source
    profile: str
    location: str
    """Human-readable origin: ``$CAI_TOKEN``, ``keyring (<backend>)`` or the file's path."""

    @property
    def masked(self) -> str:
        """The token masked to its last 4 characters."""
        return mask(self.token)


@dataclass(frozen=True)
class KeyringStatus:
    """Whether the OS keyring can hold tokens; ``reason`` says why not."""

    usable: bool
    backend: str
    reason: str = ""


def check_profile(name: object) -> str:
    """A valid profile name (letters, digits, ``_ . -``; at most 64) or ValidationError."""
    if not isinstance(name, str) or not _PROFILE.match(name):
        raise ValidationError(
            f"profile name {name!r} is not valid: use up to 64 letters, digits, '_', '.' or '-'"
        )
    return name


def config_dir() -> Path:
    """Where caiclient keeps its settings and token files (``$CAI_CONFIG_DIR`` overrides)."""
    override = os.environ.get(CONFIG_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs  # Lazy: `cai --help` and `import caiclient` must stay fast.

    return Path(platformdirs.user_config_dir(_APP, appauthor=False))


def data_dir() -> Path:
    """Where caiclient keeps data such as line-editor history (``$CAI_DATA_DIR`` overrides)."""
    override = os.environ.get(DATA_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(_APP, appauthor=False))


def token_file(profile: str = DEFAULT_PROFILE) -> Path:
    """The file that holds ``profile``'s token when the keyring is not used."""
    return config_dir() / "tokens" / f"{check_profile(profile)}.json"


# --- keyring ---------------------------------------------------------------------------------


def keyring_status() -> KeyringStatus:
    """Whether a usable keyring backend exists.

    Backends keyring itself rates below 1 (the failing and null ones, plain files) are not
    used unless chosen explicitly with ``$PYTHON_KEYRING_BACKEND``: our own 0600 file is no
    worse than those.
    """
    try:
        import keyring
        import keyring.errors
    except ImportError:
        return KeyringStatus(False, "none", "the keyring package is not installed")
    try:
        backend = keyring.get_keyring()
        priority = float(getattr(backend, "priority", 0))
    except (keyring.errors.KeyringError, RuntimeError, OSError, ValueError) as exc:
        return KeyringStatus(False, "none", f"the keyring cannot start ({exc})")
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    chosen = bool(os.environ.get("PYTHON_KEYRING_BACKEND"))
    if name.startswith(("keyring.backends.fail", "keyring.backends.null")):
        return KeyringStatus(False, name, "no keyring backend is available on this system")
    if priority < 1 and not chosen:
        return KeyringStatus(False, name, f"the only keyring backend ({name}) is not secure")
    return KeyringStatus(True, name)


def _keyring_get(profile: str) -> tuple[str | None, str]:
    status = keyring_status()
    if not status.usable:
        return None, status.reason
    import keyring
    import keyring.errors

    try:
        return keyring.get_password(KEYRING_SERVICE, profile), status.backend
    except (keyring.errors.KeyringError, RuntimeError, OSError) as exc:
        return None, f"the keyring could not be read ({type(exc).__name__})"


# --- the token file --------------------------------------------------------------------------


def _read_file(profile: str, path: Path) -> str | None:
    """The token in ``path``, None if there is no file; NotLoggedIn if it is unsafe/damaged."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NotLoggedIn(
            f"cannot read the token file {path}: {exc.strerror}", profile=profile
        ) from None
    with os.fdopen(fd, "rb") as handle:
        _check_private(profile, path, os.fstat(handle.fileno()))
        raw = handle.read(64 * 1024)
    try:
        data = json.loads(raw)
        token = data["token"] if isinstance(data, dict) else None
        if not isinstance(token, str):
            raise ValueError("no token in it")
        return normalise_token(token)
    except (ValueError, KeyError, UnicodeDecodeError):
        raise NotLoggedIn(
            f"the token file {path} is damaged; log in again with "
            f"`cai login --profile {profile}` (the file will be replaced)",
            profile=profile,
        ) from None


def _check_private(profile: str, path: Path, st: os.stat_result) -> None:
    if os.name == "nt":  # No POSIX modes; the user profile folder is private already.
        return
    if st.st_uid != os.getuid():
        raise NotLoggedIn(
            f"refusing the token file {path}: it belongs to another user", profile=profile
        )
    if st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        raise NotLoggedIn(
            f"refusing the token file {path}: other users can read it (mode {mode:04o}). "
            f"The token may have leaked: log in again with `cai login --profile {profile}`, "
            f"or if you are sure it did not, run `chmod 600 {path}`",
            profile=profile,
        )


def _write_file(path: Path, token: str) -> None:
    """Write atomically: a temporary file in the same folder (mkstemp creates it 0600),
    then rename it over the old one, so a failure leaves the previous token intact."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    payload = json.dumps({"version": _FILE_VERSION, "token": token}).encode()
    fd, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- public API ------------------------------------------------------------------------------


def load_credentials(profile: str = DEFAULT_PROFILE, *, use_env: bool = True) -> Credentials:
    """The token to use for ``profile``: ``$CAI_TOKEN``, else the keyring, else the file.

    Raises NotLoggedIn when there is none, or the token file is readable by others, owned
    by someone else or damaged (the message says what to do); ValidationError for a bad
    profile name or a malformed ``$CAI_TOKEN``.
    """
    profile = check_profile(profile)
    if use_env and os.environ.get(TOKEN_ENV, "").strip():
        return Credentials(normalise_token(os.environ[TOKEN_ENV]), "env", profile, f"${TOKEN_ENV}")
    token, backend = _keyring_get(profile)
    if token:
        return Credentials(normalise_token(token), "keyring", profile, f"keyring ({backend})")
    path = token_file(profile)
    token = _read_file(profile, path)
    if token is not None:
        return Credentials(token, "file", profile, str(path))
    raise NotLoggedIn(
        f"not logged in (profile {profile!r}): run `cai login --profile {profile}` "
        f"or set ${TOKEN_ENV}",
        profile=profile,
    )


def save_token(
    token: str,
    profile: str = DEFAULT_PROFILE,
    *,
    store: Literal["auto", "keyring", "file"] = "auto",
) -> str:
    """Store ``token`` for ``profile``; return where it went (``keyring (…)`` or the path).

    ``store="auto"`` uses the keyring when :func:`keyring_status` says it is usable, else the
    file. The other store's copy for that profile is removed, so a profile has one token.
    Raises ValidationError (malformed token or profile, or ``store="keyring"`` without a
    usable keyring) or CaiError when the token cannot be written (the old one is kept).
    """
    token = normalise_token(token)
    profile = check_profile(profile)
    if store not in ("auto", "keyring", "file"):
        raise ValidationError(f"store must be 'auto', 'keyring' or 'file', got {store!r}")
    status = keyring_status()
    if store == "keyring" and not status.usable:
        raise ValidationError(f"cannot use the keyring: {status.reason}")
    if store != "file" and status.usable:
        import keyring
        import keyring.errors

        try:
            keyring.set_password(KEYRING_SERVICE, profile, token)
        except (keyring.errors.KeyringError, RuntimeError, OSError) as exc:
            if store == "keyring":
                raise CaiError(f"the keyring refused the token ({type(exc).__name__})") from None
        else:
            token_file(profile).unlink(missing_ok=True)
            return f"keyring ({status.backend})"
    path = token_file(profile)
    try:
        _write_file(path, token)
    except OSError as exc:
        raise CaiError(
            f"cannot write the token file {path}: {exc.strerror}; the previous token (if any) "
            f"is unchanged. Set ${CONFIG_DIR_ENV} to a writable folder"
        ) from None
    _forget_keyring(profile)
    return str(path)


def _forget_keyring(profile: str) -> str | None:
    status = keyring_status()
    if not status.usable:
        return None
    import keyring
    import keyring.errors

    try:
        if keyring.get_password(KEYRING_SERVICE, profile) is None:
            return None
        keyring.delete_password(KEYRING_SERVICE, profile)
    except (keyring.errors.KeyringError, RuntimeError, OSError):
        return None
    return f"keyring ({status.backend})"


def forget(profile: str = DEFAULT_PROFILE) -> list[str]:
    """Remove ``profile``'s stored token from the keyring and the file; return where from
    (empty when nothing was stored). ``$CAI_TOKEN`` is not touched."""
    profile = check_profile(profile)
    removed: list[str] = []
    where = _forget_keyring(profile)
    if where is not None:
        removed.append(where)
    path = token_file(profile)
    try:
        path.unlink()
    except FileNotFoundError:
        pass  # Nothing stored in the file.
    except OSError as exc:
        raise CaiError(f"cannot remove the token file {path}: {exc.strerror}") from None
    else:
        removed.append(str(path))
    return removed
