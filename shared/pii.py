"""Sealing customer contact data so it can cross topics that other services read."""

import base64
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# Public on purpose: only for development and tests; production refuses it.
DEV_ONLY_PII_KEY = base64.urlsafe_b64encode(b"dev-only-pii-key-do-not-use-prod").decode()
_NONCE_BYTES = 12
_AAD = b"complaints-platform/contact/v1"


class SealError(ValueError):
    """A sealed value could not be opened (wrong key or tampered)."""


def _key(key_b64: str) -> AESGCM:
    raw = base64.urlsafe_b64decode(key_b64)
    if len(raw) != 32:
        raise ValueError("PII key must be 32 bytes, base64url encoded")
    return AESGCM(raw)


def seal(data: dict[str, Any], key_b64: str) -> str:
    """Encrypts and authenticates a small JSON document; returns base64url text."""
    nonce = os.urandom(_NONCE_BYTES)
    plaintext = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    sealed = nonce + _key(key_b64).encrypt(nonce, plaintext, _AAD)
    return base64.urlsafe_b64encode(sealed).decode()


def unseal(token: str, key_b64: str) -> dict[str, Any]:
    """Opens a value made by `seal`."""
    try:
        sealed = base64.urlsafe_b64decode(token)
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        data = json.loads(_key(key_b64).decrypt(nonce, ciphertext, _AAD))
    except (InvalidTag, ValueError) as exc:
        raise SealError("sealed contact cannot be opened") from exc
    if not isinstance(data, dict):
        raise SealError("sealed contact is not an object")
    return data


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
