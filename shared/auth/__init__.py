"""Access control every service shares: callers, credentials, route declarations, scope.

A route declares the roles it admits once, with `allow()`:

    Caller = Annotated[Principal, Depends(allow(Role.MERCHANT, Role.ADMIN))]

and checks the resource it touches with `ensure_visible`, which answers 404 for anything
outside the caller's scope.
"""

from shared.auth.dependencies import CUSTOMER_HEADER, allow, declared_roles
from shared.auth.principal import Principal, Role
from shared.auth.scope import can_see, ensure_visible

__all__ = [
    "CUSTOMER_HEADER",
    "Principal",
    "Role",
    "allow",
    "can_see",
    "declared_roles",
    "ensure_visible",
]
