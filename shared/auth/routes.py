"""POST /v1/auth/token: people sign in with a password and get a short-lived bearer token."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from shared.auth.dependencies import TOKEN_PATH, access_of, client_address
from shared.errors import problem_responses


class TokenResponse(BaseModel):
    """An OAuth2 bearer token."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int


def token_router() -> APIRouter:
    """The sign-in endpoint every service offers (same users and secret on all four)."""
    router = APIRouter(tags=["auth"])

    @router.post(
        TOKEN_PATH,
        response_model=TokenResponse,
        responses=problem_responses(401, 413, 422, 429),
        summary="Exchange a username and password for a bearer token",
    )
    async def issue_token(
        request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]
    ) -> TokenResponse:
        """OAuth2 password grant: a token carrying the user's role and teams."""
        token, ttl = await access_of(request).sign_in(
            form.username, form.password, client=client_address(request)
        )
        return TokenResponse(access_token=token, expires_in=ttl)

    return router
