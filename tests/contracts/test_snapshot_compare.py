"""The snapshot rule: `compare` tells widening (allowed after review) from narrowing (refused)."""

import json
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from shared.events import snapshots
from shared.events.snapshots import (
    Change,
    ChangeKind,
    NarrowingChangeError,
    compare,
    narrowing,
    render,
    write_snapshots,
)
from shared.events.vocabulary import ContactChannel, ContactChannelCode, OpenCode

WIDENING, NARROWING, ANNOTATION = ChangeKind.WIDENING, ChangeKind.NARROWING, ChangeKind.ANNOTATION


def obj(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), **extra}


def payload(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """An envelope-like schema whose payload is a $ref, as pydantic renders them."""
    return {
        "$defs": {"P": obj(properties, required)},
        **obj({"event_id": {"type": "string"}, "payload": {"$ref": "#/$defs/P"}}, ("payload",)),
    }


STR = {"type": "string"}
OPTIONAL_STR = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
CHANNELS = {"type": "string", "enum": ["sms", "email"]}


def kinds(changes: list[Change]) -> set[tuple[ChangeKind, str]]:
    return {(change.kind, change.path) for change in changes}


class TestIdenticalSchemas:
    def test_no_changes(self):
        schema = payload({"a": STR, "b": OPTIONAL_STR}, ("a",))
        assert compare(schema, json.loads(json.dumps(schema))) == []


# (name, old payload props, old required, new payload props, new required, expected path)
WIDENINGS = [
    ("new optional field", {"a": STR}, ("a",), {"a": STR, "b": OPTIONAL_STR}, ("a",), "payload.b"),
    (
        "new enum value",
        {"c": CHANNELS},
        ("c",),
        {"c": {"type": "string", "enum": ["sms", "email", "wechat"]}},
        ("c",),
        "payload.c",
    ),
    (
        "enum opened to an open code",
        {"c": CHANNELS},
        ("c",),
        {"c": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}},
        ("c",),
        "payload.c",
    ),
    ("field no longer required", {"a": STR}, ("a",), {"a": STR}, (), "payload.a"),
    (
        "longer maxLength",
        {"a": {"type": "string", "maxLength": 10}},
        (),
        {"a": {"type": "string", "maxLength": 20}},
        (),
        "payload.a",
    ),
    (
        "maxLength removed",
        {"a": {"type": "string", "maxLength": 10}},
        (),
        {"a": STR},
        (),
        "payload.a",
    ),
    (
        "lower minimum",
        {"n": {"type": "integer", "minimum": 1}},
        (),
        {"n": {"type": "integer", "minimum": 0}},
        (),
        "payload.n",
    ),
    (
        "pattern removed",
        {"a": {"type": "string", "pattern": "^[a-z]+$"}},
        (),
        {"a": STR},
        (),
        "payload.a",
    ),
    ("null accepted too", {"a": STR}, (), {"a": OPTIONAL_STR}, (), "payload.a"),
    (
        "const opened",
        {"k": {"type": "string", "const": "acknowledgement"}},
        (),
        {"k": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}},
        (),
        "payload.k",
    ),
]

NARROWINGS = [
    ("field removed", {"a": STR, "b": STR}, ("a",), {"a": STR}, ("a",), "payload.b"),
    ("new required field", {"a": STR}, ("a",), {"a": STR, "b": STR}, ("a", "b"), "payload.b"),
    (
        "field now required",
        {"a": STR, "b": STR},
        ("a",),
        {"a": STR, "b": STR},
        ("a", "b"),
        "payload.b",
    ),
    ("type changed", {"a": STR}, (), {"a": {"type": "integer"}}, (), "payload.a"),
    (
        "enum value removed",
        {"c": CHANNELS},
        (),
        {"c": {"type": "string", "enum": ["sms"]}},
        (),
        "payload.c",
    ),
    ("open string closed to an enum", {"c": STR}, (), {"c": CHANNELS}, (), "payload.c"),
    (
        "pattern added",
        {"a": STR},
        (),
        {"a": {"type": "string", "pattern": "^[a-z]+$"}},
        (),
        "payload.a",
    ),
    (
        "pattern changed",
        {"a": {"type": "string", "pattern": "^[a-z]+$"}},
        (),
        {"a": {"type": "string", "pattern": "^[a-z]{1,5}$"}},
        (),
        "payload.a",
    ),
    (
        "shorter maxLength",
        {"a": {"type": "string", "maxLength": 20}},
        (),
        {"a": {"type": "string", "maxLength": 10}},
        (),
        "payload.a",
    ),
    (
        "maxLength added",
        {"a": STR},
        (),
        {"a": {"type": "string", "maxLength": 10}},
        (),
        "payload.a",
    ),
    (
        "higher minimum",
        {"n": {"type": "integer", "minimum": 0}},
        (),
        {"n": {"type": "integer", "minimum": 1}},
        (),
        "payload.n",
    ),
    ("null no longer accepted", {"a": OPTIONAL_STR}, (), {"a": STR}, (), "payload.a"),
    (
        "enum opened to a pattern that refuses a listed value",
        {"c": {"type": "string", "enum": ["sms", "App-Push"]}},
        (),
        {"c": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}},
        (),
        "payload.c",
    ),
    (
        "format added",
        {"t": STR},
        (),
        {"t": {"type": "string", "format": "date-time"}},
        (),
        "payload.t",
    ),
    (
        "array items narrowed",
        {"d": {"type": "array", "items": CHANNELS}},
        (),
        {"d": {"type": "array", "items": {"type": "string", "enum": ["sms"]}}},
        (),
        "payload.d[]",
    ),
]


class TestWidening:
    @pytest.mark.parametrize(
        ("old", "old_required", "new", "new_required", "path"),
        [case[1:] for case in WIDENINGS],
        ids=[case[0] for case in WIDENINGS],
    )
    def test_is_classified_widening(self, old, old_required, new, new_required, path):
        changes = compare(payload(old, old_required), payload(new, new_required))
        assert (WIDENING, path) in kinds(changes), changes
        assert narrowing(changes) == []

    def test_opening_an_enum_field_to_an_open_code_is_widening(self):
        class Before(BaseModel):
            channel: ContactChannel
            kind: Literal["acknowledgement"] = "acknowledgement"

        class After(BaseModel):
            channel: ContactChannelCode
            kind: OpenCode = "acknowledgement"

        changes = compare(Before.model_json_schema(), After.model_json_schema())
        assert {(WIDENING, "channel"), (WIDENING, "kind")} <= kinds(changes)
        assert narrowing(changes) == []

    def test_the_known_values_stay_documented(self):
        class After(BaseModel):
            channel: ContactChannelCode

        field = After.model_json_schema()["properties"]["channel"]
        assert "enum" not in field
        assert field["examples"] == [member.value for member in ContactChannel]


class TestNarrowing:
    @pytest.mark.parametrize(
        ("old", "old_required", "new", "new_required", "path"),
        [case[1:] for case in NARROWINGS],
        ids=[case[0] for case in NARROWINGS],
    )
    def test_is_classified_narrowing(self, old, old_required, new, new_required, path):
        changes = compare(payload(old, old_required), payload(new, new_required))
        assert (NARROWING, path) in kinds(narrowing(changes)), changes

    def test_forbidding_extra_fields_narrows(self):
        old = obj({"a": STR})
        new = obj({"a": STR}, additionalProperties=False)
        assert kinds(narrowing(compare(old, new))) == {(NARROWING, "")}

    def test_an_unrecognised_keyword_is_reviewed_as_narrowing(self):
        changes = compare(payload({"a": STR}), payload({"a": {**STR, "contentEncoding": "x"}}))
        assert kinds(narrowing(changes)) == {(NARROWING, "payload.a")}

    def test_a_narrowing_reads_clearly(self):
        changes = compare(payload({"a": STR, "b": STR}), payload({"a": STR}))
        assert [str(change) for change in changes] == ["narrowing at payload.b: field removed"]


class TestAnnotations:
    def test_documentation_changes_are_neither(self):
        old = payload({"a": {"type": "string", "description": "old words"}})
        new = payload({"a": {"type": "string", "description": "new words", "examples": ["x"]}})
        assert {change.kind for change in compare(old, new)} == {ANNOTATION}

    def test_a_real_model_change_is_found_through_refs(self):
        class Nested(BaseModel):
            name: str = Field(max_length=200)

        class NestedShorter(BaseModel):
            name: str = Field(max_length=100)

        class Old(BaseModel):
            product: Nested | None = None

        class New(BaseModel):
            product: NestedShorter | None = None

        changes = narrowing(compare(Old.model_json_schema(), New.model_json_schema()))
        assert kinds(changes) == {(NARROWING, "product.name")}


class TestWritingSnapshots:
    @pytest.fixture
    def snapshot_dir(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        monkeypatch.setattr(snapshots, "SNAPSHOT_DIR", tmp_path)
        return tmp_path

    def test_writes_a_widened_contract(self, snapshot_dir: Path, monkeypatch: pytest.MonkeyPatch):
        (snapshot_dir / "x.v1.json").write_text(render(payload({"a": STR})), encoding="utf-8")
        widened = payload({"a": STR, "b": OPTIONAL_STR})
        monkeypatch.setattr(snapshots, "current_schemas", lambda: {"x.v1.json": widened})
        assert write_snapshots() == [snapshot_dir / "x.v1.json"]
        assert json.loads((snapshot_dir / "x.v1.json").read_text(encoding="utf-8")) == widened

    def test_refuses_to_write_a_narrowed_contract(
        self, snapshot_dir: Path, monkeypatch: pytest.MonkeyPatch
    ):
        original = render(payload({"a": STR, "b": STR}))
        (snapshot_dir / "x.v1.json").write_text(original, encoding="utf-8")
        monkeypatch.setattr(
            snapshots, "current_schemas", lambda: {"x.v1.json": payload({"a": STR})}
        )
        with pytest.raises(NarrowingChangeError, match=r"payload\.b: field removed"):
            write_snapshots()
        assert (snapshot_dir / "x.v1.json").read_text(encoding="utf-8") == original


class TestAlternatives:
    def test_an_untyped_enum_opened_to_a_string_is_widening(self):
        old = payload({"c": {"enum": ["sms", "email"]}})
        new = payload({"c": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}})
        changes = compare(old, new)
        assert narrowing(changes) == []
        assert (WIDENING, "payload.c") in kinds(changes)

    def test_alternatives_of_one_kind_are_compared_in_order(self):
        def two_strings(second_max: int) -> dict[str, Any]:
            return {"anyOf": [{"type": "string"}, {"type": "string", "maxLength": second_max}]}

        changes = compare(payload({"a": two_strings(20)}), payload({"a": two_strings(10)}))
        assert kinds(narrowing(changes)) == {(NARROWING, "payload.a")}
