"""API keys: `cpk_<12-char id>_<secret>`, shown once, stored as a SHA-256 of the secret.

The secret is 32 random bytes, so a fast hash is enough: nobody can guess it offline, and
verifying a key costs microseconds per request instead of an argon2 round.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_PREFIX = "cpk_"
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
KEY_PATTERN = re.compile(r"^cpk_([a-z0-9]{12})_([A-Za-z0-9_\-]{43})$")


@dataclass(frozen=True)
class NewKey:
    """A freshly made key: the full secret (shown once) and what is stored."""

    key_id: str
    secret: str
    secret_sha256: str

    @property
    def prefix(self) -> str:
        """The visible part that support may see and search for."""
        return f"{KEY_PREFIX}{self.key_id}"


def new_key() -> NewKey:
    """Makes a new random API key."""
    key_id = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    secret = secrets.token_urlsafe(32)
    return NewKey(
        key_id=key_id, secret=f"{KEY_PREFIX}{key_id}_{secret}", secret_sha256=digest(secret)
    )


def split_key(presented: str) -> tuple[str, str] | None:
    """(key id, secret part) of a well-formed key, else None."""
    match = KEY_PATTERN.fullmatch(presented)
    if match is None:
        return None
    return match.group(1), match.group(2)


def digest(secret_part: str) -> str:
    """The stored form of a key's secret part."""
    return hashlib.sha256(secret_part.encode()).hexdigest()


def matches(secret_part: str, stored_sha256: str) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(digest(secret_part), stored_sha256)
