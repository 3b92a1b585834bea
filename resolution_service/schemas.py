"""HTTP models of the resolution API."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel


class CaseView(BaseModel):
    """Resolution's view of a complaint: its case."""

    case_id: UUID
    complaint_id: UUID
    complaint_number: str
    merchant_id: str
    # Open values (shared.events.vocabulary lists the known ones): shown as stored.
    category: str
    priority: str
    team: str
    status: str
    first_response_due_at: datetime
    opened_at: datetime
    updated_at: datetime
