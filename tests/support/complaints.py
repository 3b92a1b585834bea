"""Building and posting complaints like a storefront would.

Every body carries personal data distinct to its `n` (name, phone, email), and every value
handed out is registered in `SUBMITTED_PII`, so the log scan in tests/e2e/test_no_pii_in_logs.py
can look for all of them in everything the run wrote.
"""

import uuid
from typing import Any

import httpx

from tests.support.auth import STOREFRONT

# Personal values submitted by this test session, whatever test submitted them.
SUBMITTED_PII: set[str] = set()


def personal_data(n: int) -> dict[str, str]:
    """Name, phone and email for customer `n`, distinct per `n` and registered for the log scan.

    The phone keeps the last four digits 8000, so its masked form reads 138****8000 for any `n`.
    """
    values = {
        "name": f"张测{n:04d}",
        "phone": f"138{n % 10_000:04d}8000",
        "email": f"pii.customer{n:04d}@example.test",
    }
    SUBMITTED_PII.update(values.values())
    return values


def register_pii(*values: str) -> None:
    """Adds personal values a test submits outside `complaint_body` to the log scan."""
    SUBMITTED_PII.update(value for value in values if value)


def complaint_body(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid complaint body; `n` makes customer, contact and order distinct."""
    body: dict[str, Any] = {
        "customer": {
            "customer_id": f"cust-{n}",
            **personal_data(n),
            "preferred_channel": "sms",
        },
        "order_number": f"2024042800{n:03d}",
        "merchant_id": f"m-{n % 7}",
        "channel": "app",
        "target": "product",
        "category_hint": "product_quality",
        "description": "Item A arrived broken; asking for return and refund plus a coupon.",
        "demands": [
            {"type": "return"},
            {"type": "refund"},
            {"type": "compensation", "amount": "100"},
        ],
    }
    body.update(overrides)
    return body


async def post_complaint(
    client: httpx.AsyncClient, intake_url: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    """POSTs a complaint as the test storefront, with a fresh correlation id unless one is given."""
    headers.setdefault("X-Correlation-ID", f"test-{uuid.uuid4().hex[:12]}")
    for name, value in STOREFRONT.headers().items():
        headers.setdefault(name, value)
    customer = body.get("customer")
    if isinstance(customer, dict):
        register_pii(*(str(customer.get(key) or "") for key in ("name", "phone", "email")))
    return await client.post(f"{intake_url}/v1/complaints", json=body, headers=headers)
