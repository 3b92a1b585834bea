"""Redaction: the delivery log keeps what a customer was told, never whom it reached."""

import string

from hypothesis import given
from hypothesis import strategies as st

from notification_service.domain.redaction import redact, redact_message
from notification_service.domain.templates import Message


class TestGivenContact:
    def test_masks_the_recipients_own_phone_email_and_name(self):
        text = "张伟，您好，我们会拨打13800138000或发邮件到 zhang.wei@example.com 联系张伟。"
        redacted = redact(
            text, names=["张伟"], phones=["+8613800138000"], emails=["zhang.wei@example.com"]
        )
        assert redacted == "张*，您好，我们会拨打138****8000或发邮件到 z***@example.com 联系张*。"

    def test_finds_a_given_phone_however_it_is_written(self):
        for written in ("138 0013 8000", "138-0013-8000", "+86 13800138000", "8613800138000"):
            redacted = redact(f"call {written} now", phones=["13800138000"])
            assert "0013" not in redacted
            assert "138****8000" in redacted

    def test_latin_names_are_masked_as_whole_words_only(self):
        redacted = redact("Dear Li, your delivery by LI Express is late.", names=["Li"])
        assert redacted == "Dear L*, your delivery by L* Express is late."
        assert "delivery" in redacted

    def test_html_escaped_names_are_masked_too(self):
        redacted = redact("<p>Hello O&#39;Brien,</p>", names=["O'Brien"])
        assert "Brien" not in redacted

    def test_ignores_blank_and_one_letter_names(self):
        assert redact("a b c", names=["", None, " ", "a"]) == "a b c"


class TestPatterns:
    def test_masks_emails_and_phones_nobody_named(self):
        text = (
            "客户留言：请联系我妻子 13912345678 或 li.na+shop@mail.example.cn，或 +44 20 7946 0958"
        )
        redacted = redact(text)
        assert "13912345678" not in redacted
        assert "139****5678" in redacted
        assert "l***@mail.example.cn" in redacted
        assert "7946" not in redacted

    def test_keeps_what_a_message_is_for(self):
        text = (
            "投诉202405-000123，订单O2024050112345，运单SF1234567890123，"
            "退款¥199.00，优惠券SORRY-7Q2X-K9，2024年5月8日前到账，客服热线400-820-8820。"
        )
        assert redact(text) == text

    @given(
        prefix=st.text(alphabet=string.ascii_letters + "，。 投诉您好", max_size=20),
        suffix=st.text(alphabet=string.ascii_letters + "，。 投诉您好", max_size=20),
        second=st.sampled_from("3456789"),
        rest=st.text(alphabet=string.digits, min_size=9, max_size=9),
    )
    def test_no_mainland_mobile_number_survives(self, prefix, suffix, second, rest):
        phone = f"1{second}{rest}"
        redacted = redact(f"{prefix} {phone} {suffix}")
        assert phone not in redacted
        assert phone[-4:] in redacted  # masked, not removed: 1xx****dddd

    @given(
        local=st.text(alphabet=string.ascii_lowercase + string.digits + "._", min_size=2),
        domain=st.sampled_from(["example.com", "qq.com", "mail.example.cn"]),
    )
    def test_no_email_address_survives(self, local, domain):
        address = f"a{local}@{domain}"
        assert address not in redact(f"write to {address} today")


class TestMessages:
    def test_redacts_subject_text_and_html(self):
        message = Message(
            subject="张伟，您的投诉已受理",
            text="张伟，您好，短信已发至13800138000。",
            html="<p>张伟，您好，</p>",
            template="complaint.received/email.zh-CN.j2",
            template_version=2,
            locale="zh-CN",
        )
        redacted = redact_message(message, names=["张伟"], phones=["13800138000"])
        assert redacted.subject == "张*，您的投诉已受理"
        assert redacted.text == "张*，您好，短信已发至138****8000。"
        assert redacted.html == "<p>张*，您好，</p>"
        assert redacted.template_version == 2

    def test_keeps_a_message_without_html_without_html(self):
        message = Message(subject=None, text="call 13800138000")
        assert redact_message(message).html is None
        assert redact_message(message).text == "call 138****8000"
