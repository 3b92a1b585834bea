"""Group complaints (which group a complaint joins) and manual re-triage (what a change means)."""

from datetime import timedelta

import pytest

from shared.events.vocabulary import Priority
from triage_service.domain.groups import (
    GroupCount,
    group_keys,
    group_reason,
    joined_group,
    merchant_group,
    sku_group,
)
from triage_service.domain.retriage import RetriageError, TriageTags, apply_retriage
from triage_service.domain.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()
DAMAGED = TriageTags("product_quality", "damaged", Priority.GENERAL)


class TestGroups:
    def test_keys_name_the_merchant_and_every_sku_once_in_lock_order(self):
        assert group_keys("m-1", ["B-2", "A-1", "B-2"]) == ["merchant:m-1", "sku:A-1", "sku:B-2"]

    def test_below_k_customers_there_is_no_group(self):
        counts = [GroupCount(merchant_group("m-1"), 4), GroupCount(sku_group("A-1"), 2)]
        assert joined_group(counts, threshold=5) is None

    def test_the_kth_customer_completes_the_group(self):
        group = joined_group([GroupCount("merchant:m-1", 5)], threshold=5)
        assert group == GroupCount("merchant:m-1", 5)

    def test_the_largest_group_wins_and_a_product_beats_its_merchant_on_a_tie(self):
        merchant, product = GroupCount("merchant:m-1", 6), GroupCount("sku:A-1", 6)
        assert joined_group([merchant, product], threshold=5) == product
        bigger = GroupCount("merchant:m-1", 9)
        assert joined_group([bigger, product], threshold=5) == bigger

    def test_the_reason_names_the_group_the_count_and_the_rule(self):
        reason = group_reason(GroupCount("sku:A-1", 5), threshold=5, window=timedelta(hours=24))
        assert (
            reason == "group_complaint: 5 customers complained about sku:A-1 within 24 h "
            "(threshold 5)"
        )


class TestRetriage:
    def test_a_subcategory_names_its_category(self):
        changed = apply_retriage(DAMAGED, taxonomy=TAXONOMY, subcategory="lost")
        assert changed == TriageTags("logistics", "lost", Priority.GENERAL)

    def test_a_category_and_a_subcategory_of_another_category_are_refused(self):
        with pytest.raises(RetriageError, match="belongs to 'logistics'"):
            apply_retriage(DAMAGED, taxonomy=TAXONOMY, category="after_sales", subcategory="lost")

    def test_a_category_alone_keeps_a_tag_that_belongs_there(self):
        changed = apply_retriage(DAMAGED, taxonomy=TAXONOMY, category="product_quality")
        assert changed == DAMAGED

    def test_a_category_alone_takes_its_only_tag(self):
        changed = apply_retriage(DAMAGED, taxonomy=TAXONOMY, category="other")
        assert changed == TriageTags("other", "other", Priority.GENERAL)

    def test_a_category_with_several_tags_needs_the_tag(self):
        with pytest.raises(RetriageError, match="name one"):
            apply_retriage(DAMAGED, taxonomy=TAXONOMY, category="logistics")

    def test_a_new_tag_raises_the_priority_to_its_floor(self):
        changed = apply_retriage(DAMAGED, taxonomy=TAXONOMY, subcategory="injury_or_hazard")
        assert changed.priority is Priority.URGENT

    def test_a_named_priority_is_taken_as_it_is_even_lower(self):
        urgent = TriageTags("logistics", "lost", Priority.URGENT)
        changed = apply_retriage(urgent, taxonomy=TAXONOMY, priority=Priority.GENERAL)
        assert changed == TriageTags("logistics", "lost", Priority.GENERAL)

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({}, "name a category"),
            ({"category": "pet_safety"}, "unknown category"),
            ({"subcategory": "feeder_overheats"}, "unknown subcategory"),
        ],
    )
    def test_what_cannot_be_applied_says_why(self, change: dict[str, str], message: str):
        with pytest.raises(RetriageError, match=message):
            apply_retriage(DAMAGED, taxonomy=TAXONOMY, **change)  # type: ignore[arg-type]
