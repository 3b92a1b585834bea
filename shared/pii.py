"""Sealing customer contact data so it can cross topics that other services read.

A sealed token names the key that sealed it, `<key id>.<base64url(nonce + ciphertext)>`, so keys
can rotate: new data is sealed with the current key while older keys still open older tokens.
The separator `.` is not in the base64url alphabet, so a token sealed before key ids existed
(bare base64url) can never be mistaken for one that names a key; those are opened with the
keyring's legacy key.
"""

import base64
import hashlib
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# Public on purpose: only for development and tests; production refuses it.
DEV_ONLY_PII_KEY = base64.urlsafe_b64encode(b"dev-only-pii-key-do-not-use-prod").decode()
DEFAULT_PII_KEY_ID = "k1"
KEY_ID_SEPARATOR = "."
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
# What replaces a customer id once the customer is erased: a stable one-way pseudonym.
ERASED_CUSTOMER_PREFIX = "erased:"
_PSEUDONYM_HEX_DIGITS = 16
_NONCE_BYTES = 12
_AAD = b"complaints-platform/contact/v1"


class SealError(ValueError):
    """A sealed value could not be opened (unknown key id, wrong key or tampered)."""


def _cipher(key_id: str, key_b64: str) -> AESGCM:
    try:
        raw = base64.urlsafe_b64decode(key_b64)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"PII key {key_id!r} must be 32 bytes, base64url encoded")
    return AESGCM(raw)


class PiiKeyring:
    """The keys that open sealed contact data, by id; new data is sealed with the current one."""

    def __init__(
        self, keys: Mapping[str, str], *, current_key_id: str, legacy_key_id: str | None = None
    ) -> None:
        for key_id in keys:
            if not KEY_ID_PATTERN.fullmatch(key_id):
                raise ValueError(f"PII key id {key_id!r} must match {KEY_ID_PATTERN.pattern}")
        # Without a legacy id, tokens from before key ids are taken to be the current key's:
        # true until the first rotation, which must name the key they were sealed with.
        legacy_key_id = legacy_key_id or current_key_id
        for role, key_id in (("current", current_key_id), ("legacy", legacy_key_id)):
            if key_id not in keys:
                raise ValueError(f"the {role} PII key id {key_id!r} has no key in the keyring")
        # Built once: AESGCM objects are reused for every seal and open.
        self._ciphers = {key_id: _cipher(key_id, key_b64) for key_id, key_b64 in keys.items()}
        self.current_key_id = current_key_id
        self.legacy_key_id = legacy_key_id

    @classmethod
    def single(cls, key_b64: str, key_id: str = DEFAULT_PII_KEY_ID) -> "PiiKeyring":
        """A keyring of one key, current and legacy."""
        return cls({key_id: key_b64}, current_key_id=key_id)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of every key this keyring can open tokens with."""
        return tuple(sorted(self._ciphers))

    def cipher(self, key_id: str) -> AESGCM:
        """The cipher of one key; an id this keyring does not hold is a SealError."""
        try:
            return self._ciphers[key_id]
        except KeyError:
            raise SealError(
                f"sealed contact names PII key id {key_id!r}, which this service does not hold "
                f"(it holds {', '.join(self.key_ids)}): add that key to the service's pii_keys"
            ) from None


def token_key_id(token: str) -> str | None:
    """The key id a sealed token names; None for a token sealed before key ids existed."""
    key_id, separator, _ = token.partition(KEY_ID_SEPARATOR)
    return key_id if separator else None


def seal(data: dict[str, Any], keyring: PiiKeyring) -> str:
    """Encrypts and authenticates a small JSON document with the current key; returns text."""
    nonce = os.urandom(_NONCE_BYTES)
    plaintext = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    key_id = keyring.current_key_id
    sealed = nonce + keyring.cipher(key_id).encrypt(nonce, plaintext, _AAD)
    return f"{key_id}{KEY_ID_SEPARATOR}{base64.urlsafe_b64encode(sealed).decode()}"


def unseal(token: str, keyring: PiiKeyring) -> dict[str, Any]:
    """Opens a value made by `seal`, with the key it names (the legacy key if it names none)."""
    named = token_key_id(token)
    key_id = named if named is not None else keyring.legacy_key_id
    body = token.partition(KEY_ID_SEPARATOR)[2] if named is not None else token
    cipher = keyring.cipher(key_id)
    try:
        sealed = base64.urlsafe_b64decode(body)
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        data = json.loads(cipher.decrypt(nonce, ciphertext, _AAD))
    except (InvalidTag, ValueError) as exc:
        if named is None:
            raise SealError(
                f"sealed contact without a key id cannot be opened with the legacy PII key "
                f"{key_id!r} (set pii_legacy_key_id to the key that sealed it), or was tampered"
            ) from exc
        raise SealError(
            f"sealed contact cannot be opened with PII key {key_id!r}: wrong key or tampered"
        ) from exc
    if not isinstance(data, dict):
        raise SealError("sealed contact is not an object")
    return data


def customer_pseudonym(customer_id: str) -> str:
    """What an erased customer's id becomes: the same for every complaint of that customer.

    One-way and unkeyed, so every service derives the same value without sharing a secret:
    counts per customer still add up, but the rows no longer name the customer.
    """
    digest = hashlib.sha256(customer_id.encode()).hexdigest()[:_PSEUDONYM_HEX_DIGITS]
    return f"{ERASED_CUSTOMER_PREFIX}{digest}"


def mask_phone(phone: str | None) -> str | None:
    """Keeps the first three and last four digits: 138****5678."""
    if not phone:
        return phone
    return phone[:3] + "*" * max(len(phone) - 7, 0) + phone[-4:] if len(phone) > 7 else "***"


def mask_email(email: str | None) -> str | None:
    """Keeps the first letter and the domain: z***@example.com."""
    if not email or "@" not in email:
        return email
    local, domain = email.split("@", 1)
    return f"{local[:1]}***@{domain}"


def mask_name(name: str | None) -> str | None:
    """Keeps the first character: 张*."""
    if not name:
        return name
    return name[:1] + "*"
