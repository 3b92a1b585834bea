"""The two-level complaint taxonomy (标签体系), loaded from `triage_service/taxonomy.json`.

This module is the only source of category codes: the classifier, the priority floors and
the responsibility defaults all read them from here. Codes are plain strings because events
carry them as open codes; a code this taxonomy does not know is routed to the fallback team.
"""

import json
from collections import Counter
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from shared.events.vocabulary import CODE_PATTERN, Priority

TAXONOMY_RESOURCE = "taxonomy.json"


class TaxonomyError(ValueError):
    """A taxonomy file that cannot be trusted: duplicate codes, unknown teams, empty levels."""


class Responsibility(StrEnum):
    """Who is presumed to answer for a complaint until investigation confirms it (责任判定)."""

    MERCHANT = "merchant"
    LOGISTICS = "logistics"
    CUSTOMER = "customer"
    THIRD_PARTY = "third_party"
    FORCE_MAJEURE = "force_majeure"
    UNDETERMINED = "undetermined"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Subcategory(_Strict):
    """A level-2 tag with its labels, default responsibility and optional priority floor."""

    code: str = Field(pattern=CODE_PATTERN)
    label_zh: str = Field(min_length=1)
    label_en: str = Field(min_length=1)
    responsibility: Responsibility
    # Some tags are never "general" whatever the wording (an expired product is a health
    # question; an injury is always urgent): the floor is data so reviewers can change it.
    priority_floor: Priority | None = None
    # Words that usually describe the tag: features for the classifier, never rules.
    keywords: tuple[str, ...] = ()


class Category(_Strict):
    """A level-1 tag, the team that owns it and its level-2 tags."""

    code: str = Field(pattern=CODE_PATTERN)
    label_zh: str = Field(min_length=1)
    label_en: str = Field(min_length=1)
    team: str = Field(pattern=CODE_PATTERN)
    subcategories: tuple[Subcategory, ...]

    @model_validator(mode="after")
    def _has_subcategories(self) -> Self:
        if not self.subcategories:
            raise ValueError(f"category {self.code!r} has no subcategories")
        return self


class Taxonomy(_Strict):
    """A validated, versioned taxonomy: level-1 categories, their level-2 tags and teams."""

    version: int = Field(ge=1)
    comment: str = ""
    teams: tuple[str, ...]
    fallback_team: str
    categories: tuple[Category, ...]
    _categories_by_code: dict[str, Category] = PrivateAttr(default_factory=dict)
    _subcategories_by_code: dict[str, tuple[Category, Subcategory]] = PrivateAttr(
        default_factory=dict
    )

    def model_post_init(self, context: Any, /) -> None:
        """Indexes the codes once: lookups run for every complaint."""
        self._categories_by_code = {category.code: category for category in self.categories}
        self._subcategories_by_code = {
            sub.code: (category, sub)
            for category in self.categories
            for sub in category.subcategories
        }

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.categories:
            raise ValueError("the taxonomy has no categories")
        if not self.teams:
            raise ValueError("the taxonomy names no teams")
        _refuse_duplicates("team", self.teams)
        _refuse_duplicates("category code", [c.code for c in self.categories])
        # Level-2 codes are unique across the whole taxonomy: the classifier predicts a
        # level-2 code alone and derives its category from it.
        _refuse_duplicates(
            "subcategory code", [s.code for c in self.categories for s in c.subcategories]
        )
        known_teams = set(self.teams)
        if self.fallback_team not in known_teams:
            raise ValueError(f"fallback team {self.fallback_team!r} is not in teams")
        for category in self.categories:
            if category.team not in known_teams:
                raise ValueError(f"category {category.code!r} names unknown team {category.team!r}")
        return self

    @property
    def category_codes(self) -> tuple[str, ...]:
        """Level-1 codes in file order."""
        return tuple(category.code for category in self.categories)

    @property
    def subcategory_codes(self) -> tuple[str, ...]:
        """Level-2 codes in file order."""
        return tuple(sub.code for category in self.categories for sub in category.subcategories)

    def category(self, code: str) -> Category:
        """The level-1 category with this code; KeyError when unknown."""
        return self._categories_by_code[code]

    def subcategory(self, code: str) -> Subcategory:
        """The level-2 tag with this code; KeyError when unknown."""
        return self._subcategories_by_code[code][1]

    def category_of(self, subcategory_code: str) -> str:
        """The level-1 code a level-2 code belongs to; KeyError when unknown."""
        return self._subcategories_by_code[subcategory_code][0].code

    def team_for(self, category_code: str) -> str:
        """The team owning a level-1 code; an unknown code goes to the fallback team."""
        found = self._categories_by_code.get(category_code)
        return found.team if found is not None else self.fallback_team


def _refuse_duplicates(what: str, codes: Any) -> None:
    repeated = sorted(code for code, count in Counter(codes).items() if count > 1)
    if repeated:
        raise ValueError(f"duplicate {what}: {', '.join(repeated)}")


def taxonomy_from_dict(data: Any) -> Taxonomy:
    """Validates a taxonomy in its file form; TaxonomyError says what is wrong."""
    try:
        return Taxonomy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'taxonomy'}: {error['msg']}"
            for error in exc.errors()
        )
        raise TaxonomyError(f"invalid taxonomy: {problems}") from exc


def taxonomy_from_json(text: str) -> Taxonomy:
    """Parses and validates a taxonomy from JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaxonomyError(f"taxonomy is not valid JSON: {exc}") from exc
    return taxonomy_from_dict(data)


@cache
def load_taxonomy() -> Taxonomy:
    """The packaged taxonomy, validated once per process."""
    text = resources.files("triage_service").joinpath(TAXONOMY_RESOURCE).read_text("utf-8")
    return taxonomy_from_json(text)
