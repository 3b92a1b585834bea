"""HTTP models of the resolution API."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from shared.events.vocabulary import CaseStatus, Category, Priority


class CaseView(BaseModel):
    """Resolution's view of a complaint: its case."""

    case_id: UUID
    complaint_id: UUID
    complaint_number: str
    merchant_id: str
    category: Category
    priority: Priority
    team: str
    status: CaseStatus
    first_response_due_at: datetime
    opened_at: datetime
    updated_at: datetime
