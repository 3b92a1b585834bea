"""Notification HTTP endpoints."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends

from notification_service import service
from notification_service.config import get_settings
from notification_service.schemas import ComplaintNotificationsView
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
