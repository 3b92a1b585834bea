"""Manual re-triage (人工改派): what an agent's change of category, tag or priority comes to.

An agent names any of category, subcategory and priority, with a reason:
- a subcategory names its category (level-2 codes are unique); a category named beside it
  must be that one;
- a category alone keeps the current subcategory when it belongs there, takes the category's
  only subcategory when it has one (safety, other), and otherwise is refused: the agent must
  say which tag, because the tag is what the classifier learns from;
- a priority named is taken as it is: the agent may lower one too, and says why. Without one,
  the current priority stays, raised to the new tag's floor if it has one.
"""

from dataclasses import dataclass

from shared.events.vocabulary import Priority
from triage_service.domain.priority import highest
from triage_service.domain.taxonomy import Taxonomy


class RetriageError(ValueError):
    """A re-triage that cannot be applied: an unknown code, or a category without its tag."""


@dataclass(frozen=True)
class TriageTags:
    """The part of a triage an agent can change."""

    category: str
    subcategory: str | None
    priority: Priority


def apply_retriage(
    current: TriageTags,
    *,
    taxonomy: Taxonomy,
    category: str | None = None,
    subcategory: str | None = None,
    priority: Priority | None = None,
) -> TriageTags:
    """The tags after an agent's change; RetriageError says what is wrong with the request."""
    if category is None and subcategory is None and priority is None:
        raise RetriageError("name a category, a subcategory or a priority to change")
    if category is not None and category not in taxonomy.category_codes:
        raise RetriageError(f"unknown category {category!r}")
    new_subcategory: str | None
    if subcategory is not None:
        if subcategory not in taxonomy.subcategory_codes:
            raise RetriageError(f"unknown subcategory {subcategory!r}")
        owner = taxonomy.category_of(subcategory)
        if category is not None and category != owner:
            raise RetriageError(
                f"subcategory {subcategory!r} belongs to {owner!r}, not {category!r}"
            )
        new_category, new_subcategory = owner, subcategory
    elif category is not None:
        new_category = category
        new_subcategory = _subcategory_within(category, current.subcategory, taxonomy)
    else:
        new_category, new_subcategory = current.category, current.subcategory

    if priority is not None:
        new_priority = priority
    else:
        floor = (
            taxonomy.subcategory(new_subcategory).priority_floor
            if new_subcategory in taxonomy.subcategory_codes
            else None
        )
        new_priority = highest([current.priority, *([floor] if floor else [])])
    return TriageTags(category=new_category, subcategory=new_subcategory, priority=new_priority)


def _subcategory_within(category: str, current: str | None, taxonomy: Taxonomy) -> str:
    tags = [sub.code for sub in taxonomy.category(category).subcategories]
    if current is not None and current in tags:
        return current
    if len(tags) == 1:
        return tags[0]
    raise RetriageError(
        f"category {category!r} has several subcategories ({', '.join(tags)}): name one"
    )
