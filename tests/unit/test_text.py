"""Text fields refuse control characters: a NUL is a 422 naming the field, never a 500."""

import copy
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError

from intake_service.router import Writer
from intake_service.router import router as intake_router
from intake_service.schemas import ComplaintCreate
from shared.auth import Principal, Role
from shared.errors import PROBLEM_JSON, install_problem_handlers
from shared.text import LENIENT_TEXT, FreeText, SingleLine, first_forbidden_character
from shared.web import SessionDep

C0_BUT_LINE_BREAKS_AND_TAB = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"]
C1_AND_DEL = [chr(c) for c in range(0x7F, 0xA0)]


class Note(BaseModel):
    body: FreeText
    title: SingleLine


def note(body: str = "fine", title: str = "fine") -> Note:
    return Note.model_validate({"body": body, "title": title})


class TestFreeText:
    @pytest.mark.parametrize("text", ["line one\nline two", "a\tb", "crlf\r\n", "坏了 🙁", ""])
    def test_keeps_line_breaks_tabs_and_any_script(self, text: str):
        assert note(body=text).body == text

    @pytest.mark.parametrize("char", C0_BUT_LINE_BREAKS_AND_TAB + C1_AND_DEL, ids=ascii)
    def test_refuses_every_other_control_character(self, char: str):
        with pytest.raises(ValidationError, match="control characters"):
            note(body=f"broken{char}kettle")

    def test_refuses_an_unpaired_surrogate(self):
        with pytest.raises(ValidationError, match="U\\+D800"):
            note(body="half \ud800 a character")


class TestSingleLine:
    @pytest.mark.parametrize(
        "char", ["\t", "\n", "\r", "\u2028", "\u2029", *C0_BUT_LINE_BREAKS_AND_TAB, *C1_AND_DEL]
    )
    def test_refuses_every_control_character_and_line_break(self, char: str):
        with pytest.raises(ValidationError, match="control characters"):
            note(title=f"Zhang{char}San")

    def test_keeps_ordinary_text(self):
        assert note(title="张三 O'Brien-Smith +86 138").title == "张三 O'Brien-Smith +86 138"


class TestTheError:
    def test_names_the_code_point_and_position_never_the_value(self):
        with pytest.raises(ValidationError) as caught:
            note(title="13900139000\x00")
        error = caught.value.errors()[0]
        assert error["loc"] == ("title",)
        assert error["type"] == "control_character"
        assert error["msg"] == (
            "must be one line without control characters (found U+0000 at position 11)"
        )
        assert "13900139000" not in error["msg"]

    def test_first_forbidden_character_tells_the_two_kinds_apart(self):
        assert first_forbidden_character("a\nb", multiline=True) is None
        assert first_forbidden_character("a\nb", multiline=False) == 1


class TestReaders:
    def test_a_lenient_reader_takes_text_as_it_is(self):
        data = {"body": "old\x01event", "title": "old\x00title"}
        assert Note.model_validate(data, context=LENIENT_TEXT).title == "old\x00title"


VALID: dict[str, Any] = {
    "customer": {
        "customer_id": "cust-1",
        "name": "张三",
        "phone": "13800138000",
        "email": "zhang@example.test",
        "preferred_channel": "sms",
    },
    "order": {
        "number": "2024042800123",
        "items": [{"sku": "KT-1", "name": "Electric kettle", "spec": "1.7L"}],
    },
    "merchant_id": "m-1",
    "description": "kettle arrived cracked\nsecond line\twith a tab",
    "demands": [{"type": "refund"}],
}
# Every text field a storefront sends, by its path in the body.
TEXT_FIELDS = [
    ("customer", "customer_id"),
    ("customer", "name"),
    ("customer", "phone"),
    ("customer", "email"),
    ("order", "number"),
    ("order", "items", 0, "sku"),
    ("order", "items", 0, "name"),
    ("order", "items", 0, "spec"),
    ("merchant_id",),
    ("description",),
]


def with_value(path: tuple[str | int, ...], value: str) -> dict[str, Any]:
    body = copy.deepcopy(VALID)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


def field_name(path: tuple[str | int, ...]) -> str:
    """A body path as the problem's `field` names it: order.items.0.sku."""
    return ".".join(str(part) for part in path)


class TestComplaintBody:
    def test_the_valid_body_is_accepted(self):
        ComplaintCreate.model_validate(VALID)

    @pytest.mark.parametrize("path", TEXT_FIELDS, ids=field_name)
    def test_every_text_field_refuses_a_nul(self, path: tuple[str | int, ...]):
        original = VALID
        for key in path:
            original = original[key]
        with pytest.raises(ValidationError) as caught:
            ComplaintCreate.model_validate(with_value(path, f"{original[:3]}\x00{original[3:]}"))
        assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [
            (path, "control_character")
        ]


class TestOverHttp:
    @pytest.fixture
    def client(self) -> Iterator[TestClient]:
        app = FastAPI()
        install_problem_handlers(app)
        app.include_router(intake_router)

        async def no_session() -> AsyncIterator[None]:
            yield None  # invalid requests never reach the service

        app.dependency_overrides[SessionDep.__metadata__[0].dependency] = no_session
        app.dependency_overrides[Writer.__metadata__[0].dependency] = lambda: Principal(
            role=Role.STOREFRONT, subject="sf-test", storefront_id="sf-test"
        )
        with TestClient(app) as client:
            yield client

    @pytest.mark.parametrize("path", TEXT_FIELDS, ids=field_name)
    def test_a_nul_is_a_422_problem_naming_the_field(self, client: TestClient, path):
        response = client.post("/v1/complaints", json=with_value(path, "bad\x00value"))
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM_JSON
        problem = response.json()
        assert [error["field"] for error in problem["errors"]] == [field_name(path)]
        assert problem["errors"][0]["type"] == "control_character"
        assert "bad" not in response.text, "the problem never echoes the value"

    @pytest.mark.parametrize("key", [b"key\x01one", b"key\x7f", b"key\x85"], ids=ascii)
    def test_an_idempotency_key_with_control_characters_is_a_422(self, client, key: bytes):
        response = client.post("/v1/complaints", json=VALID, headers=[(b"Idempotency-Key", key)])
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM_JSON
        assert [error["field"] for error in response.json()["errors"]] == ["header.Idempotency-Key"]
