"""Intake's OpenAPI: examples in both languages, problem+json for every error."""

import re

from intake_service.main import app

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_the_create_request_has_chinese_and_english_examples():
    schema = app.openapi()["components"]["schemas"]["ComplaintCreate"]
    descriptions = [example["description"] for example in schema["examples"]]
    assert any(CJK.search(text) for text in descriptions)
    assert any(text.isascii() for text in descriptions)


def test_receipts_and_views_show_examples():
    schemas = app.openapi()["components"]["schemas"]
    statuses = {example["status"] for example in schemas["ComplaintReceipt"]["examples"]}
    assert statuses == {"received", "needs_info", "rejected"}
    assert schemas["ComplaintView"]["examples"][0]["timeline"]


def test_every_error_response_is_problem_json():
    paths = app.openapi()["paths"]
    errors = 0
    for path, operations in paths.items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    errors += 1
                    assert "application/problem+json" in response.get("content", {}), (
                        method,
                        path,
                        status,
                    )
    assert errors > 20
