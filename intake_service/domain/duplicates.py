"""Duplicates and abuse: one complaint per problem, a cap on open complaints per customer.

A submission from the same customer about the same order and target, while an earlier one is
still open and was received within the window, is the same problem asked again: it is linked
to the open complaint (its words added to that record) instead of opening a second case.
Without an order number two complaints cannot be told apart, so none is linked.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID


@dataclass(frozen=True)
class OpenComplaint:
    """A complaint of the customer that is not yet completed, closed, rejected or withdrawn."""

    complaint_id: UUID
    complaint_number: str
    order_number: str | None
    target: str
    received_at: datetime


def find_duplicate(
    open_complaints: Iterable[OpenComplaint],
    *,
    order_number: str | None,
    target: str,
    now: datetime,
    window: timedelta,
) -> OpenComplaint | None:
    """The open complaint a new submission repeats, the most recent if several do."""
    if not order_number:
        return None
    candidates = [
        complaint
        for complaint in open_complaints
        if complaint.order_number == order_number
        and complaint.target == target
        and now - complaint.received_at <= window
    ]
    return max(candidates, key=lambda c: c.received_at, default=None)


def over_open_cap(open_count: int, cap: int) -> bool:
    """Whether one more open complaint would exceed the customer's cap."""
    return open_count >= cap
