"""Secrets at rest: OAuth tokens and CalDAV passwords are stored only as Fernet tokens.

``ENCRYPTION_KEYS`` is a comma-separated list of Fernet keys. The first encrypts; every one decrypts,
so a key is rotated by putting a new one first, running ``flask rotate-secrets`` (re-encrypts every
stored secret with the new key), then dropping the old one. See docs/operations.md.
"""

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class SecretUnreadable(Exception):
    """A stored secret was encrypted with a key we no longer hold."""


def _fernet() -> MultiFernet:
    keys = [key.strip() for key in current_app.config["ENCRYPTION_KEYS"].split(",") if key.strip()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(secret: dict) -> str:
    return _fernet().encrypt(json.dumps(secret, separators=(",", ":")).encode()).decode()


def decrypt(token: str) -> dict:
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as error:
        raise SecretUnreadable("no configured key decrypts this secret") from error


def rotate(token: str) -> str:
    """Re-encrypt with the first key (a no-op in meaning, a change in bytes)."""
    return _fernet().rotate(token.encode()).decode()


def new_key() -> str:
    return Fernet.generate_key().decode()
