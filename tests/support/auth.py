"""Test callers: fixed API keys and accounts seeded into every run's database, and tokens.

The keys are constants so every helper (post_complaint, the `http` fixture, the faults tier's
storefront) can send them without being handed a stack; they exist only in the throwaway
databases the harness creates.
"""

import asyncio
import json
from dataclasses import dataclass

import asyncpg

from shared.auth.keys import digest
from shared.auth.passwords import hash_password
from shared.auth.principal import Role
from shared.auth.settings import AuthSettings, RateLimit
from shared.auth.tokens import issue_token

SCHEMAS = ("intake", "triage", "resolution", "notification")
TEST_PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class TestKey:
    """A machine caller's key as the harness knows it."""

    key_id: str
    secret_part: str
    role: Role
    merchant_id: str | None = None
    storefront_id: str | None = None

    @property
    def secret(self) -> str:
        """The full key, as a caller sends it."""
        return f"cpk_{self.key_id}_{self.secret_part}"

    def headers(self) -> dict[str, str]:
        """Authorization header carrying the key (overrides a client's default bearer)."""
        return {"Authorization": f"Bearer {self.secret}"}


def _secret(tag: str) -> str:
    return (tag * 43)[:43]


STOREFRONT = TestKey("teststorefr1", _secret("S1x-"), Role.STOREFRONT, storefront_id="sf-test")
OTHER_STOREFRONT = TestKey(
    "teststorefr2", _secret("S2y_"), Role.STOREFRONT, storefront_id="sf-other"
)
# complaint_body(n) uses merchant m-{n % 7}; n=1 -> m-1, n=2 -> m-2.
MERCHANT = TestKey("testmerchnt1", _secret("M1z-"), Role.MERCHANT, merchant_id="m-1")
OTHER_MERCHANT = TestKey("testmerchnt2", _secret("M2w_"), Role.MERCHANT, merchant_id="m-2")
# Its own bucket, for the rate-limit test (merchant limits stay at their defaults in tests).
BURST_MERCHANT = TestKey("testmerchnt3", _secret("M3v-"), Role.MERCHANT, merchant_id="m-3")
TEST_KEYS = (STOREFRONT, OTHER_STOREFRONT, MERCHANT, OTHER_MERCHANT, BURST_MERCHANT)

# product_quality complaints go to merchant_management (triage's team table).
OWN_TEAM = "merchant_management"
OTHER_TEAM = "logistics"
USERS: dict[str, tuple[Role, list[str]]] = {
    "test-agent": (Role.AGENT, [OWN_TEAM]),
    "test-agent-other": (Role.AGENT, [OTHER_TEAM]),
    "test-supervisor": (Role.SUPERVISOR, [OWN_TEAM]),
    "test-supervisor-other": (Role.SUPERVISOR, [OTHER_TEAM]),
    "test-admin": (Role.ADMIN, []),
}


def bearer(username: str) -> dict[str, str]:
    """Authorization header with a token for a seeded user (signed with the test secret)."""
    role, teams = USERS[username]
    token, _ = issue_token(AuthSettings(), username=username, role=role, teams=frozenset(teams))
    return {"Authorization": f"Bearer {token}"}


def admin_headers() -> dict[str, str]:
    """What the harness's default client sends: an admin sees everything."""
    return bearer("test-admin")


def auth_test_env() -> dict[str, str]:
    """Service settings for tests: roomy limits for the roles tests drive hard.

    Merchants keep the production defaults: the rate-limit test bursts with a merchant key.
    """
    roomy = RateLimit(per_second=10_000, burst=10_000).model_dump()
    limits = {
        role.value: roomy for role in (Role.STOREFRONT, Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
    }
    return {"AUTH_RATE_LIMITS": json.dumps(limits), "COMPLAINTS_HTTP_HEADER_TIMEOUT_S": "3"}


async def seed_test_principals(admin_dsn: str) -> None:
    """Writes the test keys and users into every schema that has the access tables."""
    password_hash = await asyncio.to_thread(hash_password, TEST_PASSWORD)
    conn = await asyncpg.connect(admin_dsn)
    try:
        for schema in SCHEMAS:
            exists = await conn.fetchval("SELECT to_regclass($1)", f"{schema}.api_keys")
            if exists is None:
                continue
            for key in TEST_KEYS:
                await conn.execute(
                    f'INSERT INTO "{schema}".api_keys (key_id, secret_sha256, role, merchant_id, '
                    "storefront_id, name, created_at) VALUES ($1, $2, $3, $4, $5, $6, now()) "
                    "ON CONFLICT (key_id) DO NOTHING",
                    key.key_id,
                    digest(key.secret_part),
                    key.role.value,
                    key.merchant_id,
                    key.storefront_id,
                    f"test {key.key_id}",
                )
            for username, (role, teams) in USERS.items():
                await conn.execute(
                    f'INSERT INTO "{schema}".users (username, password_hash, role, teams, '
                    "created_at) VALUES ($1, $2, $3, $4, now()) ON CONFLICT (username) DO NOTHING",
                    username,
                    password_hash,
                    role.value,
                    teams,
                )
    finally:
        await conn.close()
