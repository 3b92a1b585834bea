"""Sealing contact data with key ids, rotating keys, pseudonyms and masks: no I/O."""

import base64
import os

import pytest
from pydantic import ValidationError

from intake_service.config import Settings as IntakeSettings
from notification_service.config import Settings as NotificationSettings
from shared.pii import (
    DEV_ONLY_PII_KEY,
    PiiKeyring,
    SealError,
    customer_pseudonym,
    mask_email,
    mask_phone,
    seal,
    token_key_id,
    unseal,
)

CONTACT = {"name": "张三", "phone": "13800138000", "email": "zhang.san@example.com"}
PRODUCTION = {
    "environment": "production",
    "database_url": "postgresql+asyncpg://u:secret@db/x",
    "kafka_security_protocol": "SASL_SSL",
}


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def legacy_seal(data: dict[str, str], key_b64: str) -> str:
    """A token as sealed before key ids: bare base64url, the same cipher and label."""
    keyring = PiiKeyring.single(key_b64)
    return seal(data, keyring).removeprefix(f"{keyring.current_key_id}.")


class TestSealing:
    def test_round_trip(self):
        keyring = PiiKeyring.single(DEV_ONLY_PII_KEY)
        assert unseal(seal(CONTACT, keyring), keyring) == CONTACT

    def test_token_names_the_current_key_and_hides_the_contact(self):
        token = seal(CONTACT, PiiKeyring.single(new_key(), "2026-11"))
        assert token.startswith("2026-11.")
        assert token_key_id(token) == "2026-11"
        for value in CONTACT.values():
            assert value not in token
            assert value.encode() not in base64.urlsafe_b64decode(token.split(".", 1)[1])

    def test_token_from_before_key_ids_names_no_key(self):
        assert token_key_id(legacy_seal(CONTACT, DEV_ONLY_PII_KEY)) is None

    def test_tampered_token_is_refused(self):
        keyring = PiiKeyring.single(DEV_ONLY_PII_KEY)
        key_id, body = seal({"phone": "1"}, keyring).split(".", 1)
        sealed = bytearray(base64.urlsafe_b64decode(body))
        sealed[-1] ^= 0x01  # one bit of the authentication tag
        tampered = f"{key_id}.{base64.urlsafe_b64encode(bytes(sealed)).decode()}"
        with pytest.raises(SealError, match="wrong key or tampered"):
            unseal(tampered, keyring)

    def test_a_token_is_refused_by_another_key_under_the_same_id(self):
        token = seal(CONTACT, PiiKeyring.single(new_key()))
        with pytest.raises(SealError, match="'k1'"):
            unseal(token, PiiKeyring.single(new_key()))


class TestRotation:
    def test_old_tokens_open_and_new_ones_are_sealed_with_the_new_key(self):
        first, second = new_key(), new_key()
        before = PiiKeyring.single(first, "k1")
        old_token = seal(CONTACT, before)

        after = PiiKeyring({"k1": first, "k2": second}, current_key_id="k2")
        new_token = seal(CONTACT, after)

        assert unseal(old_token, after) == CONTACT
        assert token_key_id(new_token) == "k2"
        assert unseal(new_token, after) == CONTACT
        with pytest.raises(SealError, match="'k2'"):
            unseal(new_token, before)

    def test_token_from_before_key_ids_opens_with_the_current_key_by_default(self):
        keyring = PiiKeyring.single(DEV_ONLY_PII_KEY)
        assert keyring.legacy_key_id == "k1"
        assert unseal(legacy_seal(CONTACT, DEV_ONLY_PII_KEY), keyring) == CONTACT

    def test_token_from_before_key_ids_opens_with_the_configured_legacy_key(self):
        old, new = new_key(), new_key()
        keyring = PiiKeyring({"k1": old, "k2": new}, current_key_id="k2", legacy_key_id="k1")
        assert unseal(legacy_seal(CONTACT, old), keyring) == CONTACT

    def test_legacy_token_under_the_wrong_legacy_key_says_what_to_set(self):
        old, new = new_key(), new_key()
        keyring = PiiKeyring({"k1": old, "k2": new}, current_key_id="k2")
        with pytest.raises(SealError, match="pii_legacy_key_id"):
            unseal(legacy_seal(CONTACT, old), keyring)

    def test_unknown_key_id_is_refused_naming_it(self):
        token = seal(CONTACT, PiiKeyring.single(new_key(), "k9"))
        with pytest.raises(SealError, match=r"key id 'k9'.*holds k1"):
            unseal(token, PiiKeyring.single(new_key(), "k1"))

    @pytest.mark.parametrize(
        ("keys", "current", "legacy", "message"),
        [
            ({"k1": DEV_ONLY_PII_KEY}, "k2", None, "current PII key id 'k2'"),
            ({"k1": DEV_ONLY_PII_KEY}, "k1", "k0", "legacy PII key id 'k0'"),
            ({"k.1": DEV_ONLY_PII_KEY}, "k.1", None, "must match"),
            ({"k1": "too-short"}, "k1", None, "32 bytes"),
        ],
    )
    def test_a_keyring_that_cannot_work_is_refused(self, keys, current, legacy, message):
        with pytest.raises(ValueError, match=message):
            PiiKeyring(keys, current_key_id=current, legacy_key_id=legacy)


class TestSettings:
    @pytest.mark.parametrize("settings_class", [IntakeSettings, NotificationSettings])
    def test_pii_key_stays_the_current_key_under_its_id(self, settings_class):
        key = new_key()
        settings = settings_class(pii_key=key)
        assert settings.pii_keyring.current_key_id == "k1"
        assert unseal(seal(CONTACT, settings.pii_keyring), PiiKeyring.single(key)) == CONTACT

    def test_older_keys_come_from_the_environment_as_json(self, monkeypatch: pytest.MonkeyPatch):
        old, new = new_key(), new_key()
        monkeypatch.setenv("NOTIFICATION_PII_KEY", new)
        monkeypatch.setenv("NOTIFICATION_PII_KEY_ID", "k2")
        monkeypatch.setenv("NOTIFICATION_PII_KEYS", f'{{"k1": "{old}"}}')
        monkeypatch.setenv("NOTIFICATION_PII_LEGACY_KEY_ID", "k1")
        keyring = NotificationSettings().pii_keyring
        assert (keyring.current_key_id, keyring.legacy_key_id, keyring.key_ids) == (
            "k2",
            "k1",
            ("k1", "k2"),
        )
        assert unseal(legacy_seal(CONTACT, old), keyring) == CONTACT

    def test_the_current_id_cannot_name_two_keys(self):
        with pytest.raises(ValidationError, match="current key id 'k1' with another key"):
            IntakeSettings(pii_key=new_key(), pii_keys={"k1": new_key()})

    def test_a_bad_key_fails_at_startup_without_printing_it(self):
        with pytest.raises(ValidationError) as refused:
            IntakeSettings(pii_key="not-a-real-key-value")
        assert "32 bytes" in str(refused.value)
        assert "not-a-real-key-value" not in str(refused.value)

    @pytest.mark.parametrize("settings_class", [IntakeSettings, NotificationSettings])
    def test_production_refuses_the_dev_key_current_or_older(self, settings_class):
        with pytest.raises(ValidationError, match="PII_KEY"):
            settings_class(**PRODUCTION)
        with pytest.raises(ValidationError, match="PII_KEYS"):
            settings_class(**PRODUCTION, pii_key=new_key(), pii_keys={"k0": DEV_ONLY_PII_KEY})
        assert settings_class(**PRODUCTION, pii_key=new_key()).environment == "production"


class TestPseudonymsAndMasks:
    def test_pseudonym_is_stable_per_customer_and_names_no_one(self):
        assert customer_pseudonym("cust-42") == customer_pseudonym("cust-42")
        assert customer_pseudonym("cust-42") != customer_pseudonym("cust-43")
        assert customer_pseudonym("cust-42").startswith("erased:")
        assert "cust-42" not in customer_pseudonym("cust-42")

    def test_masks(self):
        assert mask_phone("13800138000") == "138****8000"
        assert mask_email("zhang@example.com") == "z***@example.com"
