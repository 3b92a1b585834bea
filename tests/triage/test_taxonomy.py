"""The taxonomy file: the exact codes, their teams, and what validation refuses."""

import copy
import json
from importlib import resources
from typing import Any

import pytest

from shared.events.vocabulary import Category
from triage_service.domain.taxonomy import (
    Responsibility,
    TaxonomyError,
    load_taxonomy,
    taxonomy_from_dict,
    taxonomy_from_json,
)

EXPECTED = {
    "product_quality": [
        "damaged",
        "not_as_described",
        "expired",
        "malfunction",
        "counterfeit",
        "missing_parts",
    ],
    "logistics": ["delayed", "lost", "wrong_item", "misdelivered"],
    "after_sales": ["refund_not_received", "return_refused", "exchange_problem", "repair_problem"],
    "service_attitude": ["rude", "unresponsive", "misinformed"],
    "system_failure": ["payment_error", "app_error", "order_error"],
    "transaction_dispute": ["price_dispute", "fee_dispute", "order_cancelled"],
    "misleading_info": ["false_advertising", "unkept_promise"],
    "facilities": ["environment", "equipment"],
    "safety": ["injury_or_hazard"],
    "other": ["other"],
}
TEAMS = {
    "product_quality": "merchant_management",
    "transaction_dispute": "merchant_management",
    "misleading_info": "merchant_management",
    "logistics": "logistics",
    "after_sales": "cs_quality",
    "service_attitude": "cs_quality",
    "system_failure": "platform_engineering",
    "facilities": "mall_operations",
    "safety": "safety_response",
    "other": "intake_review",
}


def packaged_data() -> dict[str, Any]:
    text = resources.files("triage_service").joinpath("taxonomy.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


class TestPackagedTaxonomy:
    def test_has_exactly_the_agreed_codes_in_order(self):
        taxonomy = load_taxonomy()
        assert {
            category.code: [sub.code for sub in category.subcategories]
            for category in taxonomy.categories
        } == EXPECTED

    def test_each_category_is_owned_by_its_team(self):
        taxonomy = load_taxonomy()
        assert {code: taxonomy.team_for(code) for code in taxonomy.category_codes} == TEAMS

    def test_is_versioned(self):
        assert load_taxonomy().version >= 1

    def test_every_tag_has_both_labels_and_a_responsibility(self):
        for category in load_taxonomy().categories:
            assert category.label_zh
            assert category.label_en
            for sub in category.subcategories:
                assert sub.label_zh
                assert sub.label_en
                assert isinstance(sub.responsibility, Responsibility)

    def test_level_two_codes_lead_to_their_category(self):
        taxonomy = load_taxonomy()
        assert taxonomy.category_of("lost") == "logistics"
        assert taxonomy.category_of("other") == "other"

    def test_an_unknown_category_goes_to_the_fallback_team(self):
        assert load_taxonomy().team_for("pet_grooming") == "intake_review"

    def test_injury_is_never_below_urgent(self):
        assert load_taxonomy().subcategory("injury_or_hazard").priority_floor == "urgent"

    def test_the_shared_category_vocabulary_is_exactly_the_level_one_codes(self):
        # Intake's category_hint and every producer validate against the enum: it must not
        # drift from the taxonomy, the only source of category codes.
        assert [member.value for member in Category] == list(load_taxonomy().category_codes)


class TestValidationRefuses:
    def test_a_duplicate_category_code(self):
        data = packaged_data()
        data["categories"].append(copy.deepcopy(data["categories"][0]))
        with pytest.raises(TaxonomyError, match="duplicate category code: product_quality"):
            taxonomy_from_dict(data)

    def test_a_duplicate_subcategory_code_across_categories(self):
        data = packaged_data()
        data["categories"][1]["subcategories"].append(
            copy.deepcopy(data["categories"][0]["subcategories"][0])
        )
        with pytest.raises(TaxonomyError, match="duplicate subcategory code: damaged"):
            taxonomy_from_dict(data)

    def test_an_unknown_team(self):
        data = packaged_data()
        data["categories"][0]["team"] = "marketing"
        with pytest.raises(TaxonomyError, match="unknown team 'marketing'"):
            taxonomy_from_dict(data)

    def test_a_category_without_subcategories(self):
        data = packaged_data()
        data["categories"][0]["subcategories"] = []
        with pytest.raises(TaxonomyError, match="product_quality' has no subcategories"):
            taxonomy_from_dict(data)

    def test_a_taxonomy_without_categories(self):
        data = packaged_data()
        data["categories"] = []
        with pytest.raises(TaxonomyError, match="no categories"):
            taxonomy_from_dict(data)

    def test_a_fallback_team_that_is_not_a_team(self):
        data = packaged_data()
        data["fallback_team"] = "nobody"
        with pytest.raises(TaxonomyError, match="fallback team 'nobody'"):
            taxonomy_from_dict(data)

    def test_an_unknown_responsibility(self):
        data = packaged_data()
        data["categories"][0]["subcategories"][0]["responsibility"] = "the_moon"
        with pytest.raises(TaxonomyError, match="responsibility"):
            taxonomy_from_dict(data)

    def test_a_code_that_is_not_an_open_code(self):
        data = packaged_data()
        data["categories"][0]["code"] = "Product Quality"
        with pytest.raises(TaxonomyError, match=r"categories\.0\.code"):
            taxonomy_from_dict(data)

    def test_a_missing_version(self):
        data = packaged_data()
        del data["version"]
        with pytest.raises(TaxonomyError, match="version"):
            taxonomy_from_dict(data)

    def test_text_that_is_not_json(self):
        with pytest.raises(TaxonomyError, match="not valid JSON"):
            taxonomy_from_json("{categories:")
