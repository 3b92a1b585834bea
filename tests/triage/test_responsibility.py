"""Responsibility hypothesis: the tag's default, moved by what the customer says."""

import pytest

from triage_service.domain.responsibility import Responsibility, hypothesize_responsibility


@pytest.mark.parametrize(
    ("subcategory", "party"),
    [
        ("lost", Responsibility.LOGISTICS),
        ("delayed", Responsibility.LOGISTICS),
        ("wrong_item", Responsibility.MERCHANT),
        ("not_as_described", Responsibility.MERCHANT),
        ("payment_error", Responsibility.THIRD_PARTY),
        ("injury_or_hazard", Responsibility.UNDETERMINED),
    ],
)
def test_the_tag_gives_the_default(subcategory: str, party: Responsibility):
    hypothesis = hypothesize_responsibility("随便说说", subcategory=subcategory)
    assert hypothesis.party is party
    assert hypothesis.default is party
    assert hypothesis.reasons == (f"default for {subcategory}: {party}",)


@pytest.mark.parametrize(
    "text",
    ["衣服没问题，就是我不想要了", "I changed my mind, it's fine otherwise", "尺码买错了，想退"],
)
def test_a_change_of_mind_points_to_the_customer(text: str):
    hypothesis = hypothesize_responsibility(text, subcategory="return_refused")
    assert hypothesis.party is Responsibility.CUSTOMER
    assert hypothesis.default is Responsibility.MERCHANT


@pytest.mark.parametrize("text", ["因为台风快递停运了一周", "delayed by the typhoon"])
def test_a_typhoon_is_force_majeure(text: str):
    assert hypothesize_responsibility(text, subcategory="delayed").party is (
        Responsibility.FORCE_MAJEURE
    )


def test_damage_in_transit_points_to_the_carrier():
    text = "电饭煲外壳裂了，明显是运输途中被压的，箱子都扁了"
    hypothesis = hypothesize_responsibility(text, subcategory="damaged")
    assert hypothesis.party is Responsibility.LOGISTICS
    assert hypothesis.reasons[-1].startswith("transit_damage:")


def test_force_majeure_outranks_a_change_of_mind():
    text = "疫情封控快递一直不到，现在我也不想要了"
    assert hypothesize_responsibility(text, subcategory="delayed").party is (
        Responsibility.FORCE_MAJEURE
    )


def test_an_unknown_tag_is_undetermined():
    hypothesis = hypothesize_responsibility("x", subcategory="teleport")
    assert hypothesis.party is Responsibility.UNDETERMINED
