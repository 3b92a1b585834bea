"""Notification HTTP endpoints."""

from uuid import UUID

from fastapi import APIRouter

from notification_service import service
from notification_service.config import get_settings
from notification_service.schemas import ComplaintNotificationsView
from shared.errors import PROBLEM_JSON
from shared.web import SessionDep

router = APIRouter(prefix="/v1/complaints", tags=["notifications"])


@router.get(
    "/{complaint_id}",
    response_model=ComplaintNotificationsView,
    responses={404: {"description": "Nothing recorded (yet)", "content": {PROBLEM_JSON: {}}}},
)
async def get_notifications(complaint_id: UUID, session: SessionDep) -> ComplaintNotificationsView:
    """Shows what the customer was told about a complaint."""
    return await service.get_complaint_notifications(
        session, complaint_id=complaint_id, settings=get_settings()
    )
