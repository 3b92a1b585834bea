"""The labelled set: shape of every line, coverage of every tag, and a clean split."""

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from shared.events.vocabulary import Channel, ComplaintTarget, DemandType, Priority
from tests.triage.conftest import DATA
from triage_service.domain.taxonomy import load_taxonomy

FIELDS = {"text", "target", "demands", "channel", "category", "subcategory", "priority", "lang"}


def rows(name: str) -> list[dict[str, Any]]:
    with (DATA / name).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def test_train_split_is_the_packaged_file_seen_through_a_relative_link():
    link = DATA / "train.jsonl"
    assert link.is_symlink()
    assert not Path(link.readlink()).is_absolute()
    packaged = Path(__file__).resolve().parents[2] / "triage_service" / "data" / "train.jsonl"
    assert link.resolve() == packaged.resolve()


@pytest.mark.parametrize("name", ["train.jsonl", "test.jsonl"])
def test_every_line_has_the_agreed_fields_and_known_values(name: str):
    taxonomy = load_taxonomy()
    for row in rows(name):
        assert set(row) == FIELDS, row["text"]
        assert row["text"].strip()
        assert row["subcategory"] in taxonomy.subcategory_codes
        assert row["category"] == taxonomy.category_of(row["subcategory"])
        assert row["target"] in set(ComplaintTarget)
        assert row["channel"] in set(Channel)
        assert set(row["demands"]) <= set(DemandType)
        assert row["priority"] in set(Priority)
        assert row["lang"] in {"zh", "en", "mixed"}


def test_every_tag_has_at_least_eight_examples():
    counts = Counter(row["subcategory"] for row in rows("train.jsonl") + rows("test.jsonl"))
    assert set(counts) == set(load_taxonomy().subcategory_codes)
    assert min(counts.values()) >= 8, counts.most_common()[-3:]


def test_the_set_is_large_and_in_both_languages():
    every = rows("train.jsonl") + rows("test.jsonl")
    assert len(every) >= 360
    assert Counter(row["lang"] for row in every).keys() == {"zh", "en", "mixed"}


def test_train_and_test_share_no_complaint_and_split_about_three_to_one():
    train = {row["text"] for row in rows("train.jsonl")}
    test = {row["text"] for row in rows("test.jsonl")}
    assert not train & test
    assert 0.2 <= len(test) / (len(train) + len(test)) <= 0.3


def test_every_tag_is_in_the_test_split():
    assert {row["subcategory"] for row in rows("test.jsonl")} == set(
        load_taxonomy().subcategory_codes
    )


def test_drift_examples_are_new_to_both_splits_and_split_for_correction():
    drift = rows("drift.jsonl")
    known = {row["text"] for row in rows("train.jsonl") + rows("test.jsonl")}
    assert not {row["text"] for row in drift} & known
    for split in ("correction", "held_out"):
        assert {row["subcategory"] for row in drift if row["split"] == split} == {
            row["subcategory"] for row in drift
        }
