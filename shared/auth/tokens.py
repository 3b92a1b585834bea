"""Bearer tokens of people: our own HS256 JWTs, and an external OIDC issuer's via JWKS."""

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import jwt

from shared.auth.principal import PEOPLE_ROLES, Principal, Role
from shared.auth.settings import TOKEN_AUDIENCE, TOKEN_ISSUER, AuthSettings
from shared.time import utcnow

OWN_ALGORITHM = "HS256"
OIDC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class InvalidTokenError(Exception):
    """The token is not one we accept (bad signature, expired, unknown issuer, bad claims)."""


def issue_token(
    settings: AuthSettings, *, username: str, role: Role, teams: frozenset[str]
) -> tuple[str, int]:
    """A signed token for a person and its lifetime in seconds."""
    now = utcnow()
    ttl = settings.token_ttl_seconds
    claims = {
        "iss": TOKEN_ISSUER,
        "aud": TOKEN_AUDIENCE,
        "sub": username,
        "role": role.value,
        "teams": sorted(teams),
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=ttl),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=OWN_ALGORITHM), ttl


class TokenVerifier:
    """Verifies our own tokens, and OIDC tokens when an issuer is configured."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._jwks: jwt.PyJWKClient | None = None
        if settings.oidc_enabled and settings.oidc_jwks_url:
            # PyJWKClient caches the key set and refetches when it meets an unknown kid.
            self._jwks = jwt.PyJWKClient(settings.oidc_jwks_url, cache_keys=True, lifespan=300)

    async def verify(self, token: str) -> Principal:
        """The principal a token names, or InvalidTokenError."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise InvalidTokenError("malformed token") from exc
        issuer = unverified.get("iss")
        if issuer == TOKEN_ISSUER:
            claims = self._verify_own(token)
            return _principal(claims, "role", "teams")
        if self._jwks is not None and issuer == self.settings.oidc_issuer:
            claims = await self._verify_oidc(token)
            return _principal(claims, self.settings.oidc_role_claim, self.settings.oidc_teams_claim)
        raise InvalidTokenError("token from an issuer this platform does not trust")

    def _verify_own(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.settings.jwt_secret,
                algorithms=[OWN_ALGORITHM],
                audience=TOKEN_AUDIENCE,
                issuer=TOKEN_ISSUER,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(str(exc)) from exc
        return claims

    async def _verify_oidc(self, token: str) -> dict[str, Any]:
        assert self._jwks is not None
        try:
            # The key fetch is blocking I/O (urllib): keep it off the event loop.
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            claims: dict[str, Any] = jwt.decode(
                token,
                signing_key.key,
                algorithms=OIDC_ALGORITHMS,
                audience=self.settings.oidc_audience,
                issuer=self.settings.oidc_issuer,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(str(exc)) from exc
        return claims


def _principal(claims: dict[str, Any], role_claim: str, teams_claim: str) -> Principal:
    try:
        role = Role(str(claims.get(role_claim)))
    except ValueError as exc:
        raise InvalidTokenError("token carries no known role") from exc
    if role not in PEOPLE_ROLES:
        raise InvalidTokenError("tokens are for people; machines use API keys")
    teams = claims.get(teams_claim) or []
    if not isinstance(teams, list) or not all(isinstance(team, str) for team in teams):
        raise InvalidTokenError("teams claim must be a list of strings")
    subject = str(claims["sub"])
    return Principal(role=role, subject=subject, teams=frozenset(teams), credential=subject)
