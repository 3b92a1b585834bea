"""Errors that carry their HTTP status, rendered as application/problem+json (RFC 9457)."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.db.errors import DATABASE_ERROR_CLASSES, is_transient_database_error

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


# Members every problem document has: an extension may not replace them.
RESERVED_PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})


class ProblemError(Exception):
    """A domain or request error with its HTTP status and a human-readable detail."""

    status: int = 400
    title: str = "Bad request"
    type_slug: str = "bad-request"

    def __init__(
        self, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any
    ) -> None:
        clashing = RESERVED_PROBLEM_MEMBERS & extensions.keys()
        if clashing:
            raise ValueError(f"problem extensions may not be named {sorted(clashing)}")
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions
        self.headers = headers or {}


class UnauthorizedError(ProblemError):
    """No credentials, or credentials this platform does not accept."""

    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"


class ForbiddenError(ProblemError):
    """The caller's role may not use this operation at all (never used for one resource)."""

    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class NotFoundError(ProblemError):
    """The resource does not exist (or the caller may not know it exists)."""

    status = 404
    title = "Not found"
    type_slug = "not-found"


class ConflictError(ProblemError):
    """The request conflicts with the current state."""

    status = 409
    title = "Conflict"
    type_slug = "conflict"


class GoneError(ProblemError):
    """The resource existed and was deliberately removed (e.g. erased content)."""

    status = 410
    title = "Gone"
    type_slug = "gone"


class ContentTooLargeError(ProblemError):
    """The request carries more than this operation takes."""

    status = 413
    title = "Content too large"
    type_slug = "content-too-large"


class UnsupportedMediaTypeError(ProblemError):
    """The request (or a file in it) is in a format this operation does not take."""

    status = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"


class UnprocessableError(ProblemError):
    """The request is well-formed but cannot be accepted as it is."""

    status = 422
    title = "Unprocessable request"
    type_slug = "unprocessable"


class TooManyRequestsError(ProblemError):
    """The caller used up its rate limit; `Retry-After` says when to come back."""

    status = 429
    title = "Too many requests"
    type_slug = "rate-limited"


class ServiceUnavailableError(ProblemError):
    """A dependency (database, broker) is not reachable."""

    status = 503
    title = "Service unavailable"
    type_slug = "unavailable"


class Problem(BaseModel):
    """An RFC 9457 problem document (extension members vary by problem)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str


PROBLEM_DESCRIPTIONS = {
    400: "Malformed request",
    401: "No credentials, or credentials that are not accepted",
    403: "The caller's role may not use this operation",
    404: "Not found, or outside the caller's scope",
    409: "Conflicts with the current state",
    410: "Removed on purpose",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Rate limit reached; see Retry-After",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` documenting application/problem+json for the given statuses."""
    return {
        status: {
            "description": PROBLEM_DESCRIPTIONS.get(status, "Problem"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def problem_response(
    status: int, title: str, detail: str, *, type_slug: str, instance: str, **ext: Any
) -> JSONResponse:
    """Builds an RFC 9457 problem document response."""
    body = {
        "type": f"https://complaints.example/problems/{type_slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **ext,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "invalid JSON")
            errors.append(
                {
                    "field": "body",
                    "location": "body",
                    "message": f"malformed JSON at character {loc[-1]}: {reason}",
                    "type": "json_invalid",
                }
            )
            continue
        errors.append(
            {
                # "body.customer.email" reads better than ["body", "customer", "email"]
                "field": ".".join(loc[1:] if loc[:1] == ["body"] else loc) or "body",
                "location": loc[0] if loc else "body",
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "value_error"),
            }
        )
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    """Makes every error leave the service as application/problem+json."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        response = problem_response(
            exc.status,
            exc.title,
            exc.detail,
            type_slug=exc.type_slug,
            instance=request.url.path,
            **exc.extensions,
        )
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(
            422,
            "Invalid request",
            summary or "the request is invalid",
            type_slug="validation",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            exc.status_code,
            str(exc.detail) if exc.status_code >= 500 else _title(exc.status_code),
            str(exc.detail),
            type_slug=f"http-{exc.status_code}",
            instance=request.url.path,
        )

    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_transient_database_error(exc):
            # The transaction rolled back; the caller may retry (with its Idempotency-Key).
            logger.warning("database unavailable: %s", type(exc).__name__)
            response = problem_response(
                503,
                "Service unavailable",
                "the database is unavailable right now; nothing was stored; retry shortly",
                type_slug="unavailable",
                instance=request.url.path,
            )
            response.headers["Retry-After"] = "1"
            return response
        logger.exception("unhandled error")
        return problem_response(
            500,
            "Internal error",
            "an unexpected error occurred; nothing was stored",
            type_slug="internal",
            instance=request.url.path,
        )

    # Database and connection errors get their own registration: Starlette answers a handler
    # registered for Exception and then re-raises, so every outage request would also leave
    # a full traceback in the log. The catch-all stays for anything else.
    for exception_class in DATABASE_ERROR_CLASSES:
        app.add_exception_handler(exception_class, _unexpected)
    app.add_exception_handler(Exception, _unexpected)


def _title(status: int) -> str:
    return {
        404: "Not found",
        405: "Method not allowed",
        413: "Content too large",
        415: "Unsupported media type",
    }.get(status, "Request error")
