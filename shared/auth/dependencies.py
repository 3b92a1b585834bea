"""The one place a route declares who may call it: `Annotated[Principal, Depends(allow(...))]`."""

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from shared.auth.access import Access
from shared.auth.principal import Principal, Role
from shared.errors import ForbiddenError, UnauthorizedError

TOKEN_PATH = "/v1/auth/token"
CUSTOMER_HEADER = "X-Customer-ID"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"

API_KEY_SCHEME = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="Machine callers (storefront, merchant): `cpk_<id>_<secret>`.",
    auto_error=False,
)
BEARER_SCHEME = OAuth2PasswordBearer(
    tokenUrl=TOKEN_PATH,
    scheme_name="BearerToken",
    description="People (agent, supervisor, admin): a token from POST /v1/auth/token or the "
    "configured OpenID Connect issuer. An API key is accepted as a bearer credential too.",
    auto_error=False,
)

# The attribute a route's dependency carries so tests and the OpenAPI can read its roles.
ROLES_ATTRIBUTE = "__allowed_roles__"
ROLES_EXTENSION = "x-allowed-roles"

Authorizer = Callable[..., Awaitable[Principal]]


def access_of(request: Request) -> Access:
    """The service's Access (built by shared.runtime)."""
    access: Access = request.app.state.access
    return access


def allow(*roles: Role) -> Authorizer:
    """A dependency admitting only these roles: 401 without credentials, 403 for other roles."""
    admitted = frozenset(roles)
    if not admitted:
        raise ValueError("allow() needs at least one role")
    names = ", ".join(sorted(role.value for role in admitted))

    async def authorize(
        request: Request,
        api_key: Annotated[str | None, Depends(API_KEY_SCHEME)],
        bearer: Annotated[str | None, Depends(BEARER_SCHEME)],
        # Not named customer_id: routes have a customer_id path parameter of their own.
        signed_in_customer: Annotated[
            str | None,
            Header(
                alias=CUSTOMER_HEADER,
                pattern=ID_PATTERN,
                description="Storefronts: the signed-in customer the call is made for; "
                "complaints of other customers are then not found.",
            ),
        ] = None,
    ) -> Principal:
        access = access_of(request)
        try:
            principal = await access.authenticate(api_key=api_key, bearer=bearer)
        except UnauthorizedError:
            if api_key or bearer:  # a wrong credential, not a missing one: maybe guessing
                access.note_failure(client_address(request))
            raise
        access.enforce_rate_limit(principal)
        if principal.role not in admitted:
            raise ForbiddenError(f"this operation is for {names}; you are {principal.role.value}")
        if principal.role is Role.STOREFRONT and signed_in_customer:
            principal = replace(principal, customer_id=signed_in_customer)
        request.state.principal = principal
        return principal

    setattr(authorize, ROLES_ATTRIBUTE, admitted)
    authorize.__name__ = f"allow_{'_'.join(sorted(role.value for role in admitted))}"
    return authorize


def client_address(request: Request) -> str:
    """The peer address (uvicorn's --proxy-headers puts the real client here behind a proxy)."""
    return request.client.host if request.client else "unknown"


def declared_roles(dependency: Any) -> frozenset[Role] | None:
    """The roles an `allow()` dependency admits, None for any other callable."""
    roles: frozenset[Role] | None = getattr(dependency, ROLES_ATTRIBUTE, None)
    return roles
