"""Reading complaint text: segmentation, negation, money amounts, and the lexicon's checks."""

import json
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest

from triage_service.domain.signals import (
    SignalLexiconError,
    chinese_number,
    default_reader,
    lexicon_from_dict,
)
from triage_service.domain.text import clauses, feature_words, normalize


def codes(text: str) -> set[str]:
    return {hit.code for hit in default_reader().read(text)}


class TestText:
    def test_full_width_text_is_folded_to_half_width(self):
        assert normalize("\uff21\uff22\uff23\uff11\uff12\uff13\uff01") == "abc123!"

    def test_chinese_is_segmented_into_words(self):
        assert feature_words(normalize("快递三天了还没到")) == ["快递", "三天", "了", "还", "没到"]

    def test_english_contractions_stay_one_word(self):
        assert "didn't" in feature_words(normalize("I didn't get it"))

    def test_numbers_fold_to_one_shape(self):
        assert feature_words(normalize("order 20240611778")) == ["order", "0"]

    def test_a_comma_between_words_splits_them(self):
        assert feature_words(normalize("stitches，sorry")) == ["stitches", "sorry"]

    def test_contrast_words_end_a_clause(self):
        parts = clauses(normalize("没有受伤但是箱子破了"))
        assert [part.tokens for part in parts] == [("没有", "受伤"), ("箱子", "破", "了")]


class TestSignals:
    @pytest.mark.parametrize(
        ("text", "code"),
        [
            ("我要去12315投诉你们", "regulator_threat"),
            ("再不处理我就找市场监管局", "regulator_threat"),
            ("I'll take this to the consumer council", "regulator_threat"),
            ("已经联系记者了", "media_threat"),
            ("I have already contacted a lawyer", "legal_threat"),
            ("不给说法就去法院起诉", "legal_threat"),
            ("孩子的手被烫伤了", "health_risk"),
            ("my son has a small burn on his hand", "health_risk"),
            ("宝宝喝了过期的奶粉", "health_risk"),
            ("my mother fell down and needed stitches", "personal_injury"),
            ("充电宝充电时冒烟着火", "safety_hazard"),
            ("我们小区几十户准备联名投诉", "group_complaint"),
            ("我是十年老用户了", "loyalty_risk"),
            ("I've been a loyal customer for years", "loyalty_risk"),
            ("已经发小红书避雷了", "brand_risk"),
            ("这是第三次投诉了", "repeat_contact"),
            ("我不想要了，想退货", "customer_changed_mind"),
            ("因为台风快递停运", "force_majeure"),
        ],
    )
    def test_reads_the_signal(self, text: str, code: str):
        assert code in codes(text)

    @pytest.mark.parametrize(
        "text",
        ["幸好没有受伤，就是箱子破了", "nobody was hurt, the box is crushed", "孩子没受伤"],
    )
    def test_a_denied_injury_is_not_an_injury(self, text: str):
        assert not codes(text) & {"personal_injury", "health_risk"}

    def test_negation_stops_at_the_clause(self):
        assert "personal_injury" in codes("没关系，不急，但是我妈摔倒受伤了")

    def test_a_negation_inside_a_word_denies_it(self):
        # 不过期 segments as 不过|期, so the 不 sits inside the word that holds the match.
        assert "health_risk" not in codes("宝宝喝的奶粉应该不过期吧")

    def test_expired_goods_nobody_ate_are_no_health_risk(self):
        assert "health_risk" not in codes("酸奶已经过期3天了，还好没喝")

    def test_english_prefix_terms_match_inflections(self):
        assert "personal_injury" in codes("she was injured by the door")

    def test_words_are_matched_whole(self):
        # "sue" must not fire inside "issue".
        assert "legal_threat" not in codes("there is an issue with my order")


class TestAmounts:
    @pytest.mark.parametrize(
        ("text", "largest"),
        [
            ("退款12800元到现在没到账", Decimal(12800)),
            ("价值一万五的相机镜头丢了", Decimal(15000)),
            ("一共六千多块", Decimal(6000)),
            ("我8999买的冰箱", Decimal(8999)),
            ("I paid 23,000 for a gold necklace", Decimal(23000)),
            ("a ¥1,200.50 coat", Decimal("1200.50")),
            ("1.2万元的沙发", Decimal(12000)),
        ],
    )
    def test_reads_sums_of_money(self, text: str, largest: Decimal):
        assert default_reader().amounts(text)[0] == largest

    @pytest.mark.parametrize(
        "text",
        [
            "订单号2024051200871",
            "the power bank has 30,000 mAh",
            "快递三天了还没到",
            "几十户都遇到了",
            "on 2024-05-10 at 10:30",
        ],
    )
    def test_numbers_that_are_not_money_are_ignored(self, text: str):
        assert default_reader().amounts(text) == ()

    @pytest.mark.parametrize(
        ("numeral", "value"),
        [("一万五", 15000), ("三千五", 3500), ("一千零五", 1005), ("十五", 15), ("两万", 20000)],
    )
    def test_chinese_numerals(self, numeral: str, value: int):
        assert chinese_number(numeral) == value

    def test_a_unit_alone_is_no_number(self):
        assert chinese_number("万") is None


def packaged_lexicon() -> dict[str, Any]:
    text = resources.files("triage_service").joinpath("signals.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


class TestLexiconValidation:
    def test_the_packaged_lexicon_is_valid(self):
        assert default_reader().lexicon.version >= 1

    def test_refuses_duplicate_codes(self):
        data = packaged_lexicon()
        data["signals"].append(data["signals"][0])
        with pytest.raises(SignalLexiconError, match="duplicate signal code: personal_injury"):
            lexicon_from_dict(data)

    def test_refuses_a_signal_without_terms(self):
        data = packaged_lexicon()
        data["signals"][0]["terms"] = []
        with pytest.raises(SignalLexiconError, match="neither terms nor combinations"):
            lexicon_from_dict(data)

    def test_refuses_an_unknown_priority(self):
        data = packaged_lexicon()
        data["signals"][0]["priority"] = "whenever"
        with pytest.raises(SignalLexiconError, match="priority"):
            lexicon_from_dict(data)
