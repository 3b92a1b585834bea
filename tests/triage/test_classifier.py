"""The classifier: fixed complaints in both languages, confidence, reasons, retraining."""

import json

import pytest

from tests.triage.conftest import DATA
from triage_service.domain.classifier import (
    Complaint,
    ExampleError,
    LabelledComplaint,
    TriageModel,
    examples_from_lines,
    load_examples,
    packaged_examples,
    retrain,
    train,
)


@pytest.mark.parametrize(
    ("complaint", "subcategory"),
    [
        (Complaint("收到的杯子碎了一地，包装太差了", target="product"), "damaged"),
        (Complaint("The mug arrived smashed into pieces, terrible packing"), "damaged"),
        (Complaint("物流五天没更新了，说好的次日达呢", target="logistics"), "delayed"),
        (Complaint("Still waiting on my parcel, two weeks late already"), "delayed"),
        (Complaint("退货寄回去半个月了，退款一直没到账"), "refund_not_received"),
        (Complaint("app 一打开就闪退，重装也没用"), "app_error"),
        (Complaint("付款失败但是钱被扣了两次", target="service"), "payment_error"),
        (Complaint("客服态度太差了，直接挂我电话", target="staff"), "rude"),
        (Complaint("商场卫生间太脏了，臭得进不去", target="facility"), "environment"),
        (Complaint("The sneakers are fake, serial number not genuine"), "counterfeit"),
    ],
)
def test_classifies_everyday_complaints(model: TriageModel, complaint: Complaint, subcategory: str):
    assert model.predict(complaint).subcategory == subcategory


def test_the_category_comes_from_the_taxonomy(model: TriageModel):
    prediction = model.predict(Complaint("快递显示签收了但我根本没收到，包裹丢了"))
    assert (prediction.category, prediction.subcategory) == ("logistics", "lost")


def test_says_which_features_decided(model: TriageModel):
    prediction = model.predict(Complaint("快递显示签收了但我根本没收到，包裹丢了"))
    assert prediction.signals
    assert any(signal.startswith(("word:", "chars:", "keyword:")) for signal in prediction.signals)


def test_confidence_is_a_probability_and_alternatives_are_less_likely(model: TriageModel):
    prediction = model.predict(Complaint("The kettle leaks and won't turn on"))
    assert 0 < prediction.confidence <= 1
    assert prediction.category_confidence >= prediction.confidence
    assert all(p <= prediction.confidence for _, p in prediction.alternatives)


def test_below_the_threshold_goes_to_manual_review(model: TriageModel):
    vague = Complaint("嗯")
    assert model.predict(vague, min_confidence=1.0).manual_review
    assert not model.predict(vague, min_confidence=0.0).manual_review


def test_predict_many_matches_predict(model: TriageModel):
    complaints = [Complaint("快递丢了"), Complaint("refund never arrived")]
    assert model.predict_many(complaints) == [model.predict(c) for c in complaints]


def test_training_refuses_a_tag_the_taxonomy_does_not_know():
    examples = [
        LabelledComplaint(Complaint("a"), "damaged"),
        LabelledComplaint(Complaint("b"), "teleportation_failure"),
    ]
    with pytest.raises(ExampleError, match="teleportation_failure"):
        train(examples)


class TestExamplesFromLines:
    def test_reads_demands_as_words_or_objects(self):
        line = json.dumps(
            {
                "text": "退钱",
                "subcategory": "refund_not_received",
                "demands": ["refund", {"type": "compensation", "amount": 50}],
            }
        )
        [example] = examples_from_lines([line])
        assert example.complaint.demands == ("refund", "compensation")

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ("not json", "line 1"),
            (json.dumps({"subcategory": "lost"}), "'text' must be a non-empty string"),
            (json.dumps({"text": "x", "subcategory": "nope"}), "unknown subcategory 'nope'"),
            (json.dumps({"text": "x", "subcategory": "lost", "demands": "refund"}), "list"),
        ],
    )
    def test_names_what_is_wrong(self, line: str, message: str):
        with pytest.raises(ExampleError, match=message):
            examples_from_lines([line])


def test_retraining_on_corrections_raises_accuracy_on_new_phrasing(model: TriageModel):
    rows = [json.loads(line) for line in (DATA / "drift.jsonl").read_text("utf-8").splitlines()]
    examples = load_examples(DATA / "drift.jsonl")
    corrections = [e for e, row in zip(examples, rows, strict=True) if row["split"] == "correction"]
    held_out = [e for e, row in zip(examples, rows, strict=True) if row["split"] == "held_out"]

    def accuracy(candidate: TriageModel) -> float:
        right = sum(candidate.predict(e.complaint).subcategory == e.subcategory for e in held_out)
        return right / len(held_out)

    before = accuracy(model)
    after = accuracy(retrain(packaged_examples(), corrections))
    assert after >= before + 0.25, (before, after)


def test_a_correction_replaces_the_base_example_with_the_same_text():
    base = packaged_examples()
    relabelled = LabelledComplaint(base[0].complaint, "other")
    corrected = retrain(base, [relabelled], correction_weight=20.0)
    assert corrected.training_size == len(base)
    assert corrected.predict(base[0].complaint).subcategory == "other"


def test_a_model_of_two_tags_predicts_like_any_other():
    two = [e for e in packaged_examples() if e.subcategory in {"lost", "rude"}]
    model = train(two)
    prediction = model.predict(Complaint("快递丢了，一直找不到"))
    assert prediction.subcategory == "lost"
    assert prediction.alternatives[0][0] == "rude"
    assert prediction.confidence + prediction.alternatives[0][1] == pytest.approx(1, abs=1e-3)
    assert model.predict_many([Complaint("快递丢了，一直找不到")]) == [prediction]
