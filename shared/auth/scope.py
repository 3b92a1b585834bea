"""Scope checks: what a caller may see of one resource. Outside the scope is 404, never 403."""

from shared.auth.principal import Principal, Role
from shared.errors import NotFoundError


def can_see(
    principal: Principal,
    *,
    merchant_id: str | None = None,
    team: str | None = None,
    storefront_id: str | None = None,
    customer_id: str | None = None,
) -> bool:
    """Whether the caller's scope covers a resource with these owners."""
    role = principal.role
    if role is Role.ADMIN:
        return True
    if role is Role.MERCHANT:
        return merchant_id is not None and merchant_id == principal.merchant_id
    if role is Role.STOREFRONT:
        if storefront_id is None or storefront_id != principal.storefront_id:
            return False
        return principal.customer_id is None or principal.customer_id == customer_id
    if role in (Role.AGENT, Role.SUPERVISOR):
        return team is not None and team in principal.teams
    return False


def ensure_visible(
    principal: Principal,
    detail: str,
    *,
    merchant_id: str | None = None,
    team: str | None = None,
    storefront_id: str | None = None,
    customer_id: str | None = None,
) -> None:
    """Raises NotFoundError, worded as for a missing resource, when the caller may not see it."""
    if not can_see(
        principal,
        merchant_id=merchant_id,
        team=team,
        storefront_id=storefront_id,
        customer_id=customer_id,
    ):
        raise NotFoundError(detail)
