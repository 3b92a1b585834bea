"""Group complaints (群体投诉): many customers complaining about one merchant or one product.

K complaints (5 by default) from different customers about the same merchant, or about an
order line with the same SKU, received within the window of each other (24 h by default),
make a group complaint. All of them are urgent and linked under the group's key: the complaint
that completes the group is triaged urgent, and each earlier member is raised with its own
reason. Customers are counted, not complaints, so one customer writing five times is a repeat
complainant (`domain/priority.py`), not a group.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

MERCHANT_PREFIX = "merchant:"
SKU_PREFIX = "sku:"


@dataclass(frozen=True)
class GroupCount:
    """How many customers complained within the window about one merchant or SKU."""

    key: str
    customers: int

    @property
    def is_product(self) -> bool:
        """True for a SKU's group, False for a merchant's."""
        return self.key.startswith(SKU_PREFIX)


def merchant_group(merchant_id: str) -> str:
    """The group key of a merchant."""
    return f"{MERCHANT_PREFIX}{merchant_id}"


def sku_group(sku: str) -> str:
    """The group key of a product (one SKU, whichever merchant sells it)."""
    return f"{SKU_PREFIX}{sku}"


def group_keys(merchant_id: str, skus: Iterable[str]) -> list[str]:
    """Every group a complaint could belong to, sorted (the order locks are taken in)."""
    return sorted({merchant_group(merchant_id), *(sku_group(sku) for sku in skus)})


def joined_group(counts: Iterable[GroupCount], *, threshold: int) -> GroupCount | None:
    """The group a complaint completes or joins: the largest at or above K, a SKU on ties.

    A product's group is more specific than its merchant's, so it names the problem better.
    """
    reached = [count for count in counts if count.customers >= threshold]
    if not reached:
        return None
    return max(reached, key=lambda count: (count.customers, count.is_product, count.key))


def group_reason(group: GroupCount, *, threshold: int, window: timedelta) -> str:
    """Why a member of a group is urgent, in the words of the priority reasons."""
    hours = window.total_seconds() / 3600
    return (
        f"group_complaint: {group.customers} customers complained about {group.key} "
        f"within {hours:g} h (threshold {threshold})"
    )
