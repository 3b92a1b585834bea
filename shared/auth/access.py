"""Authenticates callers of one service against the principals in its own schema."""

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.auth.keys import KEY_PREFIX, matches, split_key
from shared.auth.passwords import verify_password
from shared.auth.principal import Principal, Role
from shared.auth.ratelimit import TokenBuckets, retry_after_header
from shared.auth.settings import AuthSettings, RateLimit
from shared.auth.tables import schema_access_tables
from shared.auth.tokens import InvalidTokenError, TokenVerifier, issue_token
from shared.errors import TooManyRequestsError, UnauthorizedError

MAX_CACHED_KEYS = 10_000
WWW_AUTHENTICATE = 'Bearer realm="complaints-platform"'
# Password guessing: per username, a handful of attempts, then one every few seconds.
LOGIN_LIMIT = RateLimit(per_second=0.2, burst=10)


@dataclass(frozen=True)
class _CachedKey:
    expires_at: float
    secret_sha256: str | None  # None: no such key (or revoked)
    principal: Principal | None


def unauthorized(detail: str, error: str | None = None) -> UnauthorizedError:
    """A 401 that tells the client how to authenticate."""
    challenge = WWW_AUTHENTICATE + (f', error="{error}"' if error else "")
    return UnauthorizedError(detail, headers={"WWW-Authenticate": challenge})


class Access:
    """API keys, tokens and rate limits of one service process."""

    def __init__(
        self,
        *,
        schema: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: AuthSettings,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.api_keys, self.users = schema_access_tables(schema)
        self.tokens = TokenVerifier(settings)
        self.buckets = TokenBuckets()
        self._keys: dict[str, _CachedKey] = {}

    async def authenticate(self, *, api_key: str | None, bearer: str | None) -> Principal:
        """The caller named by an X-API-Key header or a bearer credential; 401 otherwise."""
        if api_key:
            return await self._from_api_key(api_key)
        if bearer:
            if bearer.startswith(KEY_PREFIX):
                return await self._from_api_key(bearer)
            try:
                return await self.tokens.verify(bearer)
            except InvalidTokenError as exc:
                raise unauthorized(f"bearer token not accepted: {exc}", "invalid_token") from exc
        raise unauthorized("credentials required: an X-API-Key header or a bearer token")

    def note_failure(self, client: str, *, what: str = "authentications") -> None:
        """Spends one of a client address's failure tokens; 429 once it has none left.

        Each kind of failure (`what`: authentications, survey links...) has its own bucket.
        """
        wait = self.buckets.take(f"failed-{what}:{client}", self.settings.failed_auth_limit)
        if wait is not None:
            raise TooManyRequestsError(
                f"too many failed {what} from this address; retry later",
                headers={"Retry-After": retry_after_header(wait)},
            )

    def enforce_rate_limit(self, principal: Principal) -> None:
        """Spends one of the caller's tokens, or 429 with Retry-After."""
        wait = self.buckets.take(principal.id, self.settings.limit_for(principal.role))
        if wait is not None:
            raise TooManyRequestsError(
                f"rate limit of {principal.role.value} callers reached; retry later",
                headers={"Retry-After": retry_after_header(wait)},
            )

    async def _from_api_key(self, presented: str) -> Principal:
        parts = split_key(presented)
        if parts is None:
            raise unauthorized("malformed API key", "invalid_token")
        key_id, secret = parts
        now = time.monotonic()
        cached = self._keys.get(key_id)
        if cached is None or cached.expires_at <= now:
            cached = await self._load_key(key_id, now)
        if cached.secret_sha256 is None or cached.principal is None:
            raise unauthorized("unknown or revoked API key", "invalid_token")
        if not matches(secret, cached.secret_sha256):
            raise unauthorized("unknown or revoked API key", "invalid_token")
        return cached.principal

    async def _load_key(self, key_id: str, now: float) -> _CachedKey:
        table = self.api_keys
        async with self.sessionmaker() as session:
            row = (
                await session.execute(
                    select(table).where(table.c.key_id == key_id, table.c.revoked_at.is_(None))
                )
            ).first()
        expires = now + self.settings.key_cache_ttl_seconds
        if row is None:
            entry = _CachedKey(expires, None, None)
        else:
            role = Role(row.role)
            subject = row.merchant_id if role is Role.MERCHANT else row.storefront_id
            entry = _CachedKey(
                expires,
                row.secret_sha256,
                Principal(
                    role=role,
                    subject=str(subject),
                    merchant_id=row.merchant_id,
                    storefront_id=row.storefront_id,
                    teams=frozenset(row.teams or ()),
                    credential=f"{KEY_PREFIX}{key_id}",
                ),
            )
        if len(self._keys) >= MAX_CACHED_KEYS:
            self._keys.clear()
        self._keys[key_id] = entry
        return entry

    async def sign_in(self, username: str, password: str, *, client: str) -> tuple[str, int]:
        """A token for a person whose password matches; 401 otherwise."""
        try:
            return await self._sign_in(username, password)
        except UnauthorizedError:
            self.note_failure(client)
            raise

    async def _sign_in(self, username: str, password: str) -> tuple[str, int]:
        if not username or len(username) > 200 or len(password) > 1024 or "\x00" in username:
            # Nothing to look up (Postgres text cannot even hold a NUL).
            raise unauthorized("wrong username or password", "invalid_grant")
        wait = self.buckets.take(f"login:{username}", LOGIN_LIMIT)
        if wait is not None:
            raise TooManyRequestsError(
                "too many sign-in attempts for this user; retry later",
                headers={"Retry-After": retry_after_header(wait)},
            )
        table = self.users
        async with self.sessionmaker() as session:
            row = (await session.execute(select(table).where(table.c.username == username))).first()
        stored = row.password_hash if row is not None and not row.disabled else None
        # argon2 is deliberately slow: keep it off the event loop.
        if not await asyncio.to_thread(verify_password, password, stored) or row is None:
            raise unauthorized("wrong username or password", "invalid_grant")
        return issue_token(
            self.settings,
            username=row.username,
            role=Role(row.role),
            teams=frozenset(row.teams or ()),
        )
