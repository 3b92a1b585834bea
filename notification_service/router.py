"""Notification HTTP endpoints."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from notification_service import service
from notification_service.config import get_settings
from notification_service.domain.preferences import CustomerPreferences
from notification_service.domain.surveys import SurveyAnswer
from notification_service.schemas import (
    ComplaintNotificationsView,
    ParcelReport,
    ParcelView,
    PreferencesView,
    PreviewRequest,
    PreviewView,
    StaffContactPut,
    StaffContactView,
    SurveyList,
    SurveyReceipt,
    SurveyRequest,
    SurveyView,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointList,
)
from shared.auth import Principal, Role, allow
from shared.auth.dependencies import access_of, client_address
from shared.errors import NotFoundError, problem_responses
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


# The complaint's merchant reports where its parcel is (admins for anyone): the progress
# updates of a delayed delivery say it, and a delivered parcel ends them.
ParcelReporter = Annotated[Principal, Depends(allow(Role.MERCHANT, Role.ADMIN))]


@router.put(
    "/{complaint_id}/parcel",
    response_model=ParcelView,
    responses=problem_responses(404, 422),
    summary="Report where the complaint's parcel is (carrier, tracking number, latest status)",
)
async def put_parcel(
    complaint_id: UUID, body: ParcelReport, session: SessionDep, caller: ParcelReporter
) -> ParcelView:
    """Keeps the newest report; the next progress update carries it; delivered stops them."""
    return await service.report_parcel(
        session, complaint_id=complaint_id, report=body, principal=caller
    )


# Ops ask for a resolved case's survey (until resolution publishes that a case is resolved).
SurveyRequester = Annotated[Principal, Depends(allow(Role.ADMIN))]


@router.post(
    "/{complaint_id}/survey",
    status_code=status.HTTP_201_CREATED,
    response_model=SurveyView,
    responses=problem_responses(404, 409, 503),
    summary="Ask the customer of a resolved case how it went (one survey per case)",
)
async def request_survey(
    complaint_id: UUID, session: SessionDep, caller: SurveyRequester, body: SurveyRequest
) -> SurveyView:
    """Schedules the survey invitation after the resolution, and its one reminder."""
    return await service.request_survey(
        session,
        complaint_id=complaint_id,
        request=body,
        settings=get_settings(),
        principal=caller,
    )


# --- Satisfaction surveys ---------------------------------------------------------------------

surveys_router = APIRouter(prefix="/v1/surveys", tags=["surveys"])
# Results feed the KPIs of agents, merchants and the platform: ops and supervisors read them.
SurveyReader = Annotated[Principal, Depends(allow(Role.SUPERVISOR, Role.ADMIN))]


@surveys_router.post(
    "/{token}",
    status_code=status.HTTP_201_CREATED,
    response_model=SurveyReceipt,
    responses=problem_responses(404, 409, 410, 422, 429, 503),
    summary="Answer a survey, without signing in: the link's token is the credential",
)
async def answer_survey(
    token: Annotated[str, Path(min_length=16, max_length=512, pattern=r"^[A-Za-z0-9_.\-]+$")],
    body: SurveyAnswer,
    session: SessionDep,
    request: Request,
) -> SurveyReceipt:
    """Takes the one answer of the survey the token names (expired: 410; answered: 409).

    A link that names no survey (tampered, guessed) costs its address a failure token, as a
    wrong credential does: a burst of them is 429 with Retry-After.
    """
    try:
        return await service.answer_survey(
            session, token=token, answer=body, settings=get_settings()
        )
    except NotFoundError:
        access_of(request).note_failure(client_address(request), what="survey links")
        raise


@surveys_router.get(
    "",
    response_model=SurveyList,
    summary="Survey results (newest first), optionally of one merchant and answered or not",
)
async def list_surveys(
    session: SessionDep,
    caller: SurveyReader,
    merchant_id: Annotated[str | None, Query(max_length=64)] = None,
    answered: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SurveyList:
    """Lists surveys with their answers, the number answered and the average score."""
    return await service.list_surveys(
        session, merchant_id=merchant_id, answered=answered, limit=limit, principal=caller
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


# --- The staff directory ---------------------------------------------------------------------

staff_router = APIRouter(prefix="/v1/staff", tags=["staff"])
# Ops admins and supervisors keep it; an agent may keep their own entry (others: 404).
StaffActor = Annotated[Principal, Depends(allow(Role.AGENT, Role.SUPERVISOR, Role.ADMIN))]
StaffId = Annotated[
    str, Path(pattern=r"^(agent|supervisor|admin):[A-Za-z0-9][A-Za-z0-9_.@\-]{0,127}$")
]


@staff_router.put(
    "/{staff_id}/contact",
    response_model=StaffContactView,
    responses=problem_responses(404, 422),
    summary="Set a staff member's own address (their assignments and SLA alerts go there)",
)
async def put_staff_contact(
    staff_id: StaffId, body: StaffContactPut, session: SessionDep, caller: StaffActor
) -> StaffContactView:
    """Stores the address sealed; messages queued from now on use it."""
    return await service.put_staff_contact(
        session, staff_id=staff_id, request=body, settings=get_settings(), principal=caller
    )


@staff_router.get(
    "/{staff_id}/contact",
    response_model=StaffContactView,
    responses=problem_responses(404),
    summary="A staff member's directory entry (address masked)",
)
async def get_staff_contact(
    staff_id: StaffId, session: SessionDep, caller: StaffActor
) -> StaffContactView:
    """Shows the entry, the address masked."""
    return await service.get_staff_contact(
        session, staff_id=staff_id, settings=get_settings(), principal=caller
    )


@staff_router.delete(
    "/{staff_id}/contact",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
    summary="Remove a staff member's address (their messages go to the team's again)",
)
async def delete_staff_contact(
    staff_id: StaffId, session: SessionDep, caller: StaffActor
) -> Response:
    """Forgets the address."""
    await service.delete_staff_contact(session, staff_id=staff_id, principal=caller)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
