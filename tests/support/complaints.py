"""Building and posting complaints like a storefront would.

Every body carries personal data distinct to its `n` (name, phone, email), and every value
handed out is registered in `SUBMITTED_PII`, so the log scan in tests/e2e/test_no_pii_in_logs.py
can look for all of them in everything the run wrote.
"""

import uuid
from datetime import UTC, datetime, timedelta
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


def order_for(n: int, **overrides: Any) -> dict[str, Any]:
    """A new order delivered yesterday (inside every after-sales window), one item, 299 yuan.

    Each call is a different order: the same customer, order and target again would be linked
    to the open complaint as a duplicate. Pass `number` to complain about one order twice.
    """
    now = datetime.now(UTC)
    order: dict[str, Any] = {
        "number": f"2024042800{n:03d}-{uuid.uuid4().hex[:10]}",
        "placed_at": (now - timedelta(days=4)).isoformat(),
        "delivered_at": (now - timedelta(days=1)).isoformat(),
        "amount": "299.00",
        "currency": "CNY",
        "items": [
            {"sku": f"SKU-{n % 50}", "name": "Item A", "spec": "1.5L", "unit_price": "299.00"}
        ],
    }
    order.update(overrides)
    return order


def complaint_body(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """A complete complaint that passes intake's checks; `n` makes customer and order distinct.

    A return and refund (no reason given: the 7-day no-reason window applies) plus a coupon,
    for an order delivered yesterday.
    """
    body: dict[str, Any] = {
        "customer": {
            "customer_id": f"cust-{n}",
            **personal_data(n),
            "preferred_channel": "sms",
        },
        "order": order_for(n),
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
