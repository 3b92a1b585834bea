"""Access settings shared by every service (env prefix AUTH_, the same values for all four)."""

from functools import lru_cache

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.auth.principal import Role
from shared.settings import LOCAL_SECRET_MARKERS

DEV_ONLY_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"
TOKEN_ISSUER = "complaints-platform"
TOKEN_AUDIENCE = "complaints-platform"


class RateLimit(BaseModel):
    """A token bucket: `burst` requests at once, refilled at `per_second`."""

    per_second: float = Field(gt=0)
    burst: int = Field(ge=1)


DEFAULT_RATE_LIMITS: dict[Role, RateLimit] = {
    Role.STOREFRONT: RateLimit(per_second=20, burst=60),
    Role.MERCHANT: RateLimit(per_second=5, burst=30),
    Role.AGENT: RateLimit(per_second=5, burst=30),
    Role.SUPERVISOR: RateLimit(per_second=5, burst=30),
    Role.ADMIN: RateLimit(per_second=20, burst=60),
}


class AuthSettings(BaseSettings):
    """Credentials, tokens, rate limits and request limits."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore", frozen=True)

    # HS256 key of the platform's own tokens; every service must have the same one.
    jwt_secret: str = DEV_ONLY_JWT_SECRET
    token_ttl_seconds: int = Field(default=900, ge=60, le=24 * 3600)
    # An external OpenID Connect issuer whose tokens are accepted too (all three or none).
    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_audience: str | None = None
    oidc_role_claim: str = "role"
    oidc_teams_claim: str = "teams"
    # A verified API key is trusted this long without asking the database again, so a
    # revocation takes effect within this many seconds.
    key_cache_ttl_seconds: float = Field(default=5.0, ge=0, le=300)
    # Per caller, per replica (see docs/adr/0005-access-control.md); missing roles use defaults.
    rate_limits: dict[Role, RateLimit] = Field(default_factory=dict)
    # Failed authentications (bad key, bad token, wrong password) per client address: guessing
    # and floods of made-up keys are slowed down without touching real callers' buckets.
    failed_auth_limit: RateLimit = Field(default_factory=lambda: RateLimit(per_second=5, burst=50))
    # Bodies larger than this are refused before they are parsed (413).
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # /metrics and /docs: None = open in development and test, admin-only in production.
    protect_operations: bool | None = None

    def limit_for(self, role: Role) -> RateLimit:
        """The bucket of a role."""
        return self.rate_limits.get(role) or DEFAULT_RATE_LIMITS[role]

    def operations_protected(self, environment: str) -> bool:
        """Whether /metrics and /docs need an admin in this environment."""
        if self.protect_operations is None:
            return environment == "production"
        return self.protect_operations

    @property
    def oidc_enabled(self) -> bool:
        """True when an external issuer is configured."""
        return bool(self.oidc_issuer and self.oidc_jwks_url and self.oidc_audience)

    def check_for(self, environment: str) -> None:
        """Refuses the development secret (or a short one) in production."""
        if environment != "production":
            return
        placeholder = any(marker in self.jwt_secret for marker in LOCAL_SECRET_MARKERS)
        if self.jwt_secret == DEV_ONLY_JWT_SECRET or placeholder:
            raise ValueError("AUTH_JWT_SECRET must be set to a real secret in production")
        if len(self.jwt_secret) < 32:
            raise ValueError("AUTH_JWT_SECRET must be at least 32 characters")


@lru_cache
def get_auth_settings() -> AuthSettings:
    """The process-wide access settings, read once from the environment."""
    return AuthSettings()
