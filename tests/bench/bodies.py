"""The complaint every load generator posts: one template, unique per request.

wrk fills the template in Lua (tests/bench/wrk_complaint.lua), vegeta gets it pre-filled from
Python; both must post the same shape, so both read it from here. `@N@` is unique to the
request (phase, run token, number: it also makes the order number), `@C@` its customer (a
few thousand customers per phase and run, each with a short history: intake caps the open
complaints one customer may have, so runs must not pile onto the same customers).
The order was delivered yesterday: its return is within the after-sales window.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

CUSTOMERS = 5000
COMPLAINTS_PATH = "/v1/complaints"

_TEMPLATE: dict[str, Any] = {
    "customer": {
        "customer_id": "bench-cust-@C@",
        "name": "张三",
        "phone": "13800138000",
        "preferred_channel": "sms",
    },
    "order": {
        "number": "bench-order-@N@",
        "placed_at": (datetime.now(UTC) - timedelta(days=3)).isoformat(),
        "delivered_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "amount": "299.00",
        "items": [
            {
                "sku": "ITEM-A",
                "name": "Item A",
                "spec": "1.5L",
                "quantity": 1,
                "unit_price": "299.00",
            }
        ],
    },
    "merchant_id": "m-4471",
    "channel": "chat",
    "target": "product",
    "category_hint": "product_quality",
    "description": (
        "Item A arrived broken: the glass lid was cracked and the base dented. "
        "Asking for return and refund plus a coupon for the trouble."
    ),
    "demands": [
        {"type": "return"},
        {"type": "refund"},
        {"type": "compensation", "amount": "100"},
    ],
}

BODY_TEMPLATE = json.dumps(_TEMPLATE, ensure_ascii=False, separators=(",", ":"))


def complaint_json(token: str, n: int) -> str:
    """The body of request n, as JSON text; `token` (phase and run) keeps it unique."""
    return BODY_TEMPLATE.replace("@N@", f"{token}-{n}").replace("@C@", f"{token}-{n % CUSTOMERS}")


def idempotency_key(token: str, n: int) -> str:
    """A key no other request of any run uses."""
    return f"bench-{token}-{n}"


def correlation_id(phase: str, token: str, n: int) -> str:
    """`<phase>.<token>.<n>`: lets the bench find a phase's complaints in the databases."""
    return f"{correlation_prefix(phase, token)}{n}"


def correlation_prefix(phase: str, token: str) -> str:
    """The common start of a phase's correlation ids (a LIKE prefix: no `%` or `_`)."""
    return f"{phase}.{token}."
