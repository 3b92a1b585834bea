"""HTTP models of the triage API."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel


class TriageView(BaseModel):
    """Triage's view of a complaint."""

    complaint_id: UUID
    complaint_number: str
    merchant_id: str
    # Open values (shared.events.vocabulary lists the known ones): shown as stored.
    category: str
    priority: str
    team: str
    provisional: bool
    reason: str
    received_at: datetime
    first_response_due_at: datetime
    triaged_at: datetime
