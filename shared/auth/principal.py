"""Who is calling: roles and the principal every route receives."""

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """The kinds of caller the platform knows."""

    STOREFRONT = "storefront"
    MERCHANT = "merchant"
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


MACHINE_ROLES = frozenset({Role.STOREFRONT, Role.MERCHANT})
PEOPLE_ROLES = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN})


@dataclass(frozen=True)
class Principal:
    """An authenticated caller and the scope it is bound to."""

    role: Role
    # Stable per caller (not per key): idempotency keys and rate limits are scoped by it,
    # so rotating a key keeps both.
    subject: str
    merchant_id: str | None = None
    storefront_id: str | None = None
    teams: frozenset[str] = field(default_factory=frozenset)
    # The API key id or the token's username, for logs and support.
    credential: str = ""
    # Storefronts may name the signed-in customer a call is made for (X-Customer-ID).
    customer_id: str | None = None

    @property
    def id(self) -> str:
        """The caller's id, e.g. `storefront:sf-1`, `merchant:m-1`, `agent:alice`."""
        return f"{self.role.value}:{self.subject}"
