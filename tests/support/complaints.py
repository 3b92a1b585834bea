"""Building and posting complaints like a storefront would."""

import uuid
from typing import Any

import httpx


def complaint_body(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid complaint body; `n` makes customer and order distinct."""
    body: dict[str, Any] = {
        "customer": {
            "customer_id": f"cust-{n}",
            "name": "张三",
            "phone": "13800138000",
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
    """POSTs a complaint with a fresh correlation id unless one is given."""
    headers.setdefault("X-Correlation-ID", f"test-{uuid.uuid4().hex[:12]}")
    return await client.post(f"{intake_url}/v1/complaints", json=body, headers=headers)
