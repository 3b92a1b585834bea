"""Priority rules: what makes a complaint urgent or important, and that nothing lowers it."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.events.vocabulary import Priority
from triage_service.domain.priority import RANK, PriorityRules, assess_priority, highest

POLITE = [
    "您好，打扰了",
    "不着急哈",
    "麻烦有空看一下，谢谢~",
    "辛苦了，谢谢您",
    "没关系，慢慢来",
    "Sorry to bother you.",
    "No rush at all, thank you so much!",
    "Not a big deal, but",
    "Whenever you have time, kind regards",
]
COMPLAINTS = [
    "快递三天了还没到",
    "the kettle arrived cracked",
    "孩子被电热毯烫伤了",
    "my son cut his hand on the broken glass and needed stitches",
    "再不退款我就去12315投诉",
    "I have contacted a lawyer about this",
    "宝宝喝了过期的奶粉开始拉肚子",
    "我是十年老用户了，太失望了",
    "客服态度太差",
    "退款12800元一直没到账",
    "the app keeps crashing",
]


def test_an_ordinary_complaint_is_general_without_reasons():
    decision = assess_priority("快递三天了还没到", subcategory="delayed")
    assert decision.priority is Priority.GENERAL
    assert decision.reasons == ()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("我妈在扶梯上摔倒了，额头缝了五针", "personal_injury"),
        ("the charger caught fire on my desk", "safety_hazard"),
        ("宝宝喝了过期奶粉上吐下泻", "health_risk"),
        ("my wife got an electric shock from the kettle", "health_risk"),
        ("用了面霜脸上过敏起疹子", "health_risk"),
        ("三天不解决我就去市场监管局投诉", "regulator_threat"),
        ("I will go to the media with this", "media_threat"),
        ("我已经找律师了，准备起诉", "legal_threat"),
        ("我们小区几十户都买了，准备联名投诉", "group_complaint"),
    ],
)
def test_safety_health_threats_and_groups_are_urgent(text: str, reason: str):
    decision = assess_priority(text)
    assert decision.priority is Priority.URGENT
    assert any(r.startswith(f"{reason}:") for r in decision.reasons), decision.reasons


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("用了你们家八年了，会员我不续了", "loyalty_risk"),
        ("Loyal customer for 9 years, switching to another platform", "loyalty_risk"),
        ("已经发小红书让大家避雷了", "brand_risk"),
        ("这已经是第三次投诉了", "repeat_contact"),
    ],
)
def test_loyalty_brand_and_repeat_are_important(text: str, reason: str):
    decision = assess_priority(text)
    assert decision.priority is Priority.IMPORTANT
    assert any(r.startswith(f"{reason}:") for r in decision.reasons)


def test_polite_but_hurt_is_still_urgent():
    text = (
        "您好，打扰了，不着急哈，就是想反映一下，宝宝餐椅的安全带扣子一碰就开，"
        "昨天宝宝差点摔下来，麻烦有空看一下，谢谢~"
    )
    assert assess_priority(text).priority is Priority.URGENT


def test_polite_english_burn_is_still_urgent():
    text = (
        "Hello, sorry to bother you. Not a big deal, but the heater sparked and my son has "
        "a small burn on his hand. Whenever you have time. Thank you so much!"
    )
    assert assess_priority(text).priority is Priority.URGENT


def test_a_denied_injury_does_not_raise():
    assert assess_priority("箱子摔坏了，还好人没有受伤").priority is Priority.GENERAL


class TestAmounts:
    def test_a_demanded_amount_at_the_threshold_is_urgent(self):
        decision = assess_priority("退钱", demanded_amounts=[Decimal(5000)])
        assert decision.priority is Priority.URGENT
        assert decision.reasons == ("large_sum: 5000 at or above 5000",)

    def test_just_below_the_threshold_is_not(self):
        assert assess_priority("退钱", demanded_amounts=[Decimal("4999.99")]).priority is (
            Priority.GENERAL
        )

    def test_the_order_amount_counts(self):
        assert assess_priority("退钱", order_amount=Decimal(8999)).priority is Priority.URGENT

    def test_a_sum_in_the_text_counts(self):
        assert assess_priority("一万五的相机镜头丢了").priority is Priority.URGENT

    def test_the_threshold_is_a_parameter(self):
        rules = PriorityRules(large_sum_threshold=Decimal(100))
        assert assess_priority("退我200元", rules=rules).priority is Priority.URGENT

    def test_an_order_number_is_not_a_sum(self):
        assert assess_priority("订单号2024051200871还没发货").priority is Priority.GENERAL


class TestCallerCounts:
    def test_k_complaints_on_the_same_merchant_make_a_group_complaint(self):
        decision = assess_priority("质量太差", similar_complaints=5)
        assert decision.priority is Priority.URGENT
        assert decision.reasons[0].startswith("group_complaint: 5 complaints")

    def test_fewer_than_k_do_not(self):
        assert assess_priority("质量太差", similar_complaints=4).priority is Priority.GENERAL

    def test_a_repeat_complainant_is_important(self):
        decision = assess_priority("质量太差", previous_complaints=2)
        assert decision.priority is Priority.IMPORTANT

    def test_k_is_a_parameter(self):
        rules = PriorityRules(group_threshold=2)
        assert assess_priority("x", similar_complaints=2, rules=rules).priority is Priority.URGENT


class TestSubcategoryFloors:
    def test_an_injury_tag_is_urgent_whatever_the_words(self):
        assert assess_priority("看一下", subcategory="injury_or_hazard").priority is Priority.URGENT

    def test_an_expired_product_is_at_least_important(self):
        assert assess_priority("过期了", subcategory="expired").priority is Priority.IMPORTANT

    def test_an_unknown_tag_has_no_floor(self):
        assert assess_priority("看一下", subcategory="teleport").priority is Priority.GENERAL


def test_reasons_list_the_most_pressing_first():
    decision = assess_priority("第三次投诉了，我要去12315")
    assert decision.reasons[0].startswith("regulator_threat:")
    assert decision.reasons[-1].startswith("repeat_contact:")


def test_highest_of_nothing_is_general():
    assert highest([]) is Priority.GENERAL


@settings(max_examples=60, deadline=None)
@given(
    complaint=st.sampled_from(COMPLAINTS),
    before=st.lists(st.sampled_from(POLITE), max_size=3),
    after=st.lists(st.sampled_from(POLITE), max_size=3),
)
def test_politeness_never_lowers_a_priority(complaint: str, before: list[str], after: list[str]):
    plain = assess_priority(complaint).priority
    polite = assess_priority("，".join([*before, complaint, *after])).priority
    assert RANK[polite] >= RANK[plain]


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(max_size=80),
    amount=st.decimals(min_value=0, max_value=10**7, places=2),
    similar=st.integers(min_value=0, max_value=50),
    previous=st.integers(min_value=0, max_value=50),
)
def test_more_evidence_never_lowers_a_priority(
    text: str, amount: Decimal, similar: int, previous: int
):
    base = assess_priority(text).priority
    more = assess_priority(
        text, demanded_amounts=[amount], similar_complaints=similar, previous_complaints=previous
    ).priority
    assert RANK[more] >= RANK[base]


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=120))
def test_any_text_gets_a_decision(text: str):
    decision = assess_priority(text)
    assert decision.priority in set(Priority)
    assert (decision.priority is Priority.GENERAL) == (not decision.reasons)
