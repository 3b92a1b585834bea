"""Notification HTTP endpoints."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Response, status

from notification_service import service
from notification_service.config import get_settings
from notification_service.domain.preferences import CustomerPreferences
from notification_service.schemas import (
    ComplaintNotificationsView,
    PreferencesView,
    PreviewRequest,
    PreviewView,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointList,
)
from shared.auth import Principal, Role, allow
from shared.errors import problem_responses
from shared.web import SessionDep

router = APIRouter(prefix="/v1/complaints", tags=["notifications"])

# What the customer was told, with their (masked) contact: for the storefront that posted the
# complaint and for admins. Merchants never get customer contact data; agents and supervisors
# work from triage and resolution, whose rows know the owning team (notification's do not).
Reader = Annotated[Principal, Depends(allow(Role.STOREFRONT, Role.ADMIN))]


@router.get(
    "/{complaint_id}",
    response_model=ComplaintNotificationsView,
    responses=problem_responses(404),
)
async def get_notifications(
    complaint_id: UUID, session: SessionDep, caller: Reader
) -> ComplaintNotificationsView:
    """Shows what the customer was told about a complaint (nothing yet, or not yours: 404)."""
    return await service.get_complaint_notifications(
        session, complaint_id=complaint_id, settings=get_settings(), principal=caller
    )


# --- Merchants' webhook endpoints ------------------------------------------------------------

merchants_router = APIRouter(prefix="/v1/merchants", tags=["webhooks"])
# A merchant manages its own endpoints (another merchant's read as missing); admins any.
EndpointManager = Annotated[Principal, Depends(allow(Role.MERCHANT, Role.ADMIN))]
MerchantId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")]


@merchants_router.post(
    "/{merchant_id}/webhook-endpoints",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookEndpointCreated,
    responses=problem_responses(404, 422),
    summary="Register a webhook endpoint; the answer holds its secret, shown only now",
)
async def create_webhook_endpoint(
    merchant_id: MerchantId,
    body: WebhookEndpointCreate,
    session: SessionDep,
    caller: EndpointManager,
) -> WebhookEndpointCreated:
    """Registers an endpoint: every event the routing rules send merchants is posted to it."""
    return await service.create_endpoint(
        session, merchant_id=merchant_id, request=body, settings=get_settings(), principal=caller
    )


@merchants_router.get(
    "/{merchant_id}/webhook-endpoints",
    response_model=WebhookEndpointList,
    responses=problem_responses(404),
    summary="List a merchant's webhook endpoints (without secrets)",
)
async def list_webhook_endpoints(
    merchant_id: MerchantId, session: SessionDep, caller: EndpointManager
) -> WebhookEndpointList:
    """Lists the merchant's endpoints."""
    return await service.list_endpoints(session, merchant_id=merchant_id, principal=caller)


@merchants_router.post(
    "/{merchant_id}/webhook-endpoints/{endpoint_id}/secret",
    response_model=WebhookEndpointCreated,
    responses=problem_responses(404),
    summary="Rotate an endpoint's secret; the answer holds the new one, shown only now",
)
async def rotate_webhook_secret(
    merchant_id: MerchantId, endpoint_id: UUID, session: SessionDep, caller: EndpointManager
) -> WebhookEndpointCreated:
    """Gives the endpoint a new secret; deliveries from now on are signed with it."""
    return await service.rotate_endpoint_secret(
        session,
        merchant_id=merchant_id,
        endpoint_id=endpoint_id,
        settings=get_settings(),
        principal=caller,
    )


@merchants_router.delete(
    "/{merchant_id}/webhook-endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
    summary="Delete a webhook endpoint",
)
async def delete_webhook_endpoint(
    merchant_id: MerchantId, endpoint_id: UUID, session: SessionDep, caller: EndpointManager
) -> Response:
    """Deletes the endpoint: nothing more is posted to it."""
    await service.delete_endpoint(
        session, merchant_id=merchant_id, endpoint_id=endpoint_id, principal=caller
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- Customer preferences --------------------------------------------------------------------

customers_router = APIRouter(prefix="/v1/customers", tags=["preferences"])
# The customer states them through the storefront; ops admins may act for them.
CustomerActor = Annotated[Principal, Depends(allow(Role.STOREFRONT, Role.ADMIN))]
CustomerId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")]


@customers_router.get(
    "/{customer_id}/preferences",
    response_model=PreferencesView,
    responses=problem_responses(404),
    summary="A customer's channel order, opt-out, quiet hours, locale and time zone",
)
async def get_preferences(
    customer_id: CustomerId, session: SessionDep, caller: CustomerActor
) -> PreferencesView:
    """Shows the customer's preferences (the defaults until they state some)."""
    return await service.get_preferences(session, customer_id=customer_id, principal=caller)


@customers_router.put(
    "/{customer_id}/preferences",
    response_model=PreferencesView,
    responses=problem_responses(404, 422),
    summary="Replace a customer's preferences",
)
async def put_preferences(
    customer_id: CustomerId,
    body: CustomerPreferences,
    session: SessionDep,
    caller: CustomerActor,
) -> PreferencesView:
    """Replaces the preferences; messages planned from now on follow them."""
    return await service.put_preferences(
        session, customer_id=customer_id, preferences=body, principal=caller
    )


# --- Template preview (ops) ------------------------------------------------------------------

templates_router = APIRouter(prefix="/v1/templates", tags=["templates"])
Ops = Annotated[Principal, Depends(allow(Role.ADMIN))]


@templates_router.post(
    "/{message_type}/{channel}/{locale}/preview",
    response_model=PreviewView,
    responses=problem_responses(404, 422),
    summary="Render a template with its sample data or a given context",
)
async def preview_template(
    message_type: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")],
    channel: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")],
    locale: Annotated[str, Path(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")],
    caller: Ops,
    body: PreviewRequest | None = None,
) -> PreviewView:
    """Renders one message as its reader would see it (nothing is sent or stored)."""
    return service.preview_template(
        message_type=message_type,
        channel=channel,
        locale=locale,
        request=body or PreviewRequest(),
    )
