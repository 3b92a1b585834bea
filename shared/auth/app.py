"""Wires access control into a service's app: sign-in route, guarded docs, body limit, OpenAPI."""

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.auth.access import Access
from shared.auth.dependencies import ROLES_EXTENSION, allow, declared_roles
from shared.auth.principal import Role
from shared.auth.routes import token_router
from shared.auth.settings import AuthSettings
from shared.errors import PROBLEM_JSON, Problem, problem_responses
from shared.http_limits import BodyLimitMiddleware

# Routes anyone may call: liveness, readiness, signing in, and answering a survey (its signed,
# expiring link is the credential: notification_service/domain/surveys.py).
ANONYMOUS_PATHS = frozenset({"/healthz", "/readyz", "/v1/auth/token", "/v1/surveys/{token}"})
# Open in development, admin-only when operations are protected.
OPERATIONS_PATHS = frozenset({"/metrics", "/docs", "/openapi.json", "/docs/oauth2-redirect"})
AUTH_PROBLEMS = (401, 403, 413, 422, 429)


def operations_guard(protected: bool) -> list[Any]:
    """Dependencies for /metrics (and the docs): an admin when protected, none otherwise."""
    return [Depends(allow(Role.ADMIN))] if protected else []


def app_options(protected: bool) -> dict[str, Any]:
    """FastAPI() options: the built-in docs routes only when operations are open."""
    return {"docs_url": None, "redoc_url": None, "openapi_url": None} if protected else {}


def install_access(
    app: FastAPI,
    *,
    schema: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: AuthSettings,
    protect_operations: bool,
    body_limits_by_path_prefix: Mapping[str, int] | None = None,
) -> None:
    """Adds Access to the app state, the sign-in route, the body limit and the OpenAPI hook."""
    app.state.access = Access(schema=schema, sessionmaker=sessionmaker, settings=settings)
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        path_limits=body_limits_by_path_prefix,
    )
    app.include_router(token_router())
    if protect_operations:
        guard = operations_guard(True)

        @app.get("/openapi.json", include_in_schema=False, dependencies=guard)
        async def openapi_json() -> JSONResponse:
            return JSONResponse(app.openapi())

        @app.get("/docs", include_in_schema=False, dependencies=guard)
        async def docs() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

    app.openapi = _openapi_with_access(app)  # type: ignore[method-assign]


def api_routes(app: FastAPI) -> list[Any]:
    """Every API route of the app as served (APIRoute or FastAPI's view of an included one)."""
    try:  # FastAPI >= 0.160 keeps included routers as such
        from fastapi.openapi.utils import _get_api_route_for_openapi
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI flattens on include
        return [route for route in app.routes if isinstance(route, APIRoute)]
    routes: list[Any] = []
    for context in iter_route_contexts(app.routes):
        route = _get_api_route_for_openapi(context)
        if route is not None and getattr(route, "dependant", None) is not None:
            routes.append(route)
    return routes


def route_roles(route: Any) -> frozenset[Role] | None:
    """The roles a route's `allow()` dependency admits, None when it declares none."""
    return _find_roles(route.dependant)


def _find_roles(dependant: Dependant) -> frozenset[Role] | None:
    for sub in dependant.dependencies:
        roles = declared_roles(sub.call)
        if roles is not None:
            return roles
        found = _find_roles(sub)
        if found is not None:
            return found
    return None


def _openapi_with_access(app: FastAPI) -> Callable[[], dict[str, Any]]:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for route in api_routes(app):
            if not route.include_in_schema:
                continue
            roles = route_roles(route)
            for method in route.methods or ():
                operation = schema["paths"].get(route.path_format, {}).get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                if roles is not None:
                    operation[ROLES_EXTENSION] = sorted(role.value for role in roles)
                    for status, spec in problem_responses(*AUTH_PROBLEMS).items():
                        responses.setdefault(str(status), spec)
                # Every error leaves as problem+json, validation errors included.
                if "422" in responses:
                    responses["422"] = problem_responses(422)[422]
                for status, spec in list(responses.items()):
                    if status[:1] in "45" and PROBLEM_JSON not in spec.get("content", {}):
                        spec["content"] = {
                            PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                        }
        return schema

    return openapi
