"""Pure rules, no I/O: numbering, fingerprints, classification, settings guards.

Sealing contact data has its own tests in test_pii.py.
"""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from intake_service.config import Settings as IntakeSettings
from intake_service.schemas import ComplaintCreate
from intake_service.service import request_fingerprint
from shared.errors import NotFoundError, install_problem_handlers
from shared.events import ComplaintReceived
from shared.events.vocabulary import (
    Channel,
    ComplaintTarget,
    ContactChannel,
    Priority,
)
from shared.messaging.consumer import RetryPolicy
from triage_service.config import Settings as TriageSettings

VALID = {
    "customer": {"customer_id": "cust-1", "phone": "13800138000", "preferred_channel": "sms"},
    "merchant_id": "m-1",
    "description": "kettle arrived cracked",
}


class TestIdempotencyFingerprint:
    def test_same_body_same_fingerprint_regardless_of_key_order(self):
        a = ComplaintCreate.model_validate(VALID)
        b = ComplaintCreate.model_validate(dict(reversed(list(VALID.items()))))
        assert request_fingerprint(a) == request_fingerprint(b)

    def test_different_body_different_fingerprint(self):
        a = ComplaintCreate.model_validate(VALID)
        b = ComplaintCreate.model_validate({**VALID, "description": "kettle arrived broken"})
        assert request_fingerprint(a) != request_fingerprint(b)


class TestComplaintValidation:
    def test_channel_needs_an_address(self):
        with pytest.raises(ValidationError, match=r"needs customer\.email"):
            ComplaintCreate.model_validate(
                {**VALID, "customer": {"customer_id": "c", "preferred_channel": "email"}}
            )

    def test_unknown_fields_are_refused(self):
        with pytest.raises(ValidationError, match="extra"):
            ComplaintCreate.model_validate({**VALID, "priority": "urgent"})

    def test_delivery_cannot_be_in_the_future(self):
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        with pytest.raises(ValidationError, match="future"):
            ComplaintCreate.model_validate(
                {**VALID, "order": {"number": "o-1", "delivered_at": future}}
            )

    def test_a_demand_type_appears_once(self):
        with pytest.raises(ValidationError, match="once"):
            ComplaintCreate.model_validate(
                {**VALID, "demands": [{"type": "refund"}, {"type": "refund"}]}
            )

    def test_negative_amounts_are_refused(self):
        with pytest.raises(ValidationError):
            ComplaintCreate.model_validate(
                {**VALID, "demands": [{"type": "compensation", "amount": "-1"}]}
            )


def received(**overrides: object) -> ComplaintReceived:
    values: dict[str, object] = {
        "complaint_number": "202405-000001",
        "customer_id": "c",
        "sealed_contact": "x",
        "preferred_contact_channel": ContactChannel.SMS,
        "merchant_id": "m",
        "channel": Channel.APP,
        "target": ComplaintTarget.PRODUCT,
        "description": "broken",
        "received_at": datetime(2024, 5, 10, tzinfo=UTC),
    }
    values.update(overrides)
    return ComplaintReceived.model_validate(values)


class TestTriageSettings:
    # Classification, priority and responsibility are tested in tests/triage (the pure domain).
    settings = TriageSettings()

    def test_deadlines_follow_the_manuals(self):
        hours = self.settings.first_response_hours
        assert (hours[Priority.URGENT], hours[Priority.IMPORTANT], hours[Priority.GENERAL]) == (
            2,
            24,
            48,
        )


class TestSettingsGuards:
    def test_production_refuses_local_database_passwords(self):
        with pytest.raises(ValidationError, match="local development password"):
            IntakeSettings(
                environment="production", pii_key="B" * 43 + "=", kafka_security_protocol="SASL_SSL"
            )

    def test_production_refuses_the_dev_pii_key(self):
        with pytest.raises(ValidationError, match="PII_KEY"):
            IntakeSettings(
                environment="production",
                database_url="postgresql+asyncpg://u:secret@db/x",
                kafka_security_protocol="SASL_SSL",
            )

    def test_production_refuses_plaintext_kafka(self):
        with pytest.raises(ValidationError, match="SASL_SSL"):
            IntakeSettings(
                environment="production",
                database_url="postgresql+asyncpg://u:secret@db/x",
                pii_key="B" * 43 + "=",
            )

    def test_sasl_settings_become_aiokafka_options(self):
        options = IntakeSettings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_username="intake",
            kafka_sasl_password="pw",
        ).kafka_client_options()
        assert options["sasl_mechanism"] == "SCRAM-SHA-512"
        assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("intake", "pw")
        assert IntakeSettings().kafka_client_options() == {"security_protocol": "PLAINTEXT"}

    def test_env_prefix_is_per_service(self, monkeypatch: pytest.MonkeyPatch):
        monkeypatch.setenv("INTAKE_TOPIC_PREFIX", "tenant-a.")
        monkeypatch.setenv("TRIAGE_TOPIC_PREFIX", "tenant-b.")
        assert IntakeSettings().topic_prefix == "tenant-a."
        assert TriageSettings().topic_prefix == "tenant-b."


class TestRetryPolicy:
    def test_backoff_doubles_up_to_the_cap(self):
        policy = RetryPolicy(max_attempts=6, backoff_s=0.1, max_backoff_s=0.5)
        assert [policy.delay(n) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.5, 0.5]


class TestProblemResponses:
    def make_client(self) -> TestClient:
        app = FastAPI()
        install_problem_handlers(app)

        @app.get("/things/{thing_id}")
        async def get_thing(thing_id: uuid.UUID) -> dict[str, str]:
            raise NotFoundError(f"thing {thing_id} not found")

        @app.post("/things")
        async def post_thing(body: ComplaintCreate) -> dict[str, str]:
            return {"ok": "yes"}

        return TestClient(app)

    def test_domain_errors_are_problem_json(self):
        response = self.make_client().get(f"/things/{uuid.uuid4()}")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["title"] == "Not found"

    def test_validation_errors_name_the_field(self):
        response = self.make_client().post("/things", json={**VALID, "merchant_id": "bad id"})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == ["merchant_id"]

    def test_malformed_json_is_a_clear_422(self):
        response = self.make_client().post(
            "/things", content=b'{"customer": ', headers={"content-type": "application/json"}
        )
        assert response.status_code == 422
        assert "malformed JSON" in response.json()["detail"]


def test_topic_administration_takes_the_admin_principal_from_the_environment():
    from services.environment import StackConfig

    config = StackConfig.from_env(
        {
            "COMPLAINTS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "COMPLAINTS_KAFKA_SASL_USERNAME": "admin",
            "COMPLAINTS_KAFKA_SASL_PASSWORD": "pw",
        }
    )
    options = config.kafka_admin_options()
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("admin", "pw")
    assert StackConfig.from_env({}).kafka_admin_options() == {"security_protocol": "PLAINTEXT"}
