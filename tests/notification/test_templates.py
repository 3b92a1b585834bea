"""Templates: every one renders in both locales, says what a reader needs, and stays sandboxed."""

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from jinja2 import DictLoader
from pydantic import ValidationError

from notification_service.domain.contexts import (
    CONTEXT_MODELS,
    Coupon,
    Money,
    ProgressUpdate,
    Refund,
    Resolution,
    minimal_context,
    sample_context,
)
from notification_service.domain.routing import DeliveryChannel, load_rules
from notification_service.domain.templates import (
    DEFAULT_LOCALE,
    SUPPORTED_LOCALES,
    Message,
    TemplateCatalog,
    TemplateContextError,
    TemplateDefinitionError,
    TemplateNotFoundError,
    TemplateRenderError,
    default_catalog,
    render,
    resolve_locale,
)

CATALOG = default_catalog()
TEMPLATED = sorted(
    (message_type, channel)
    for message_type, channel in load_rules().channels_in_use()
    if channel != DeliveryChannel.WEBHOOK
)
NUMBER = "202405-000123"


def rendered(message_type: str, channel: str, locale: str, **changes: object) -> Message:
    context = sample_context(message_type).model_copy(update=changes)
    return render(message_type, channel, locale, context)


def everything(message: Message) -> str:
    return "\n".join(part for part in (message.subject, message.text, message.html) if part)


class TestEveryTemplate:
    @pytest.mark.parametrize(("message_type", "channel"), TEMPLATED)
    @pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
    def test_every_routed_message_has_its_own_template_in_each_locale(
        self, message_type, channel, locale
    ):
        name = CATALOG.find(message_type, channel, locale)
        assert name == f"{message_type}/{channel}.{locale}.j2"

    @pytest.mark.parametrize(
        "info", CATALOG.templates(), ids=[info.name for info in CATALOG.templates()]
    )
    @pytest.mark.parametrize("variant", ["full", "minimal"])
    def test_renders_with_sample_data(self, info, variant):
        sample = sample_context(info.message_type)
        context = sample if variant == "full" else minimal_context(sample)
        message = CATALOG.render(info.message_type, info.channel, info.locale, context)
        assert message.template == info.name
        assert message.template_version == info.version >= 1
        assert message.locale == info.locale
        assert NUMBER in message.text
        assert "None" not in everything(message)
        assert "{{" not in everything(message)
        if info.channel == DeliveryChannel.EMAIL:
            assert message.subject
            assert NUMBER in message.subject
            assert message.html is not None
            assert message.html.startswith("<!DOCTYPE html>")
            assert f'lang="{info.locale}"' in message.html
            assert NUMBER in message.html
        elif info.channel == DeliveryChannel.APP_PUSH:
            assert message.subject
            assert message.html is None
        else:
            assert message.subject is None
            assert "\n" not in message.text

    @pytest.mark.parametrize(("message_type", "channel"), TEMPLATED)
    def test_chinese_templates_are_written_in_chinese(self, message_type, channel):
        message = rendered(message_type, channel, "zh-CN")
        assert message.locale == "zh-CN"
        assert any("\u4e00" <= character <= "\u9fff" for character in message.text)

    def test_every_context_model_is_routed(self):
        assert set(CONTEXT_MODELS) == set(load_rules().message_types) - {
            "case.merchant_verification_requested"  # merchants only: a webhook, no template
        }


class TestContents:
    def test_receipt_gives_the_number_and_the_promised_time(self):
        message = rendered("complaint.received", "sms", "zh-CN")
        assert message.text.startswith(f"您的投诉已受理，编号{NUMBER}。")
        assert "2024年5月4日 10:00前答复您" in message.text

    def test_information_request_lists_every_missing_item_at_once(self):
        for locale, expected in (
            ("zh-CN", ["订单号", "照片或视频", "whether the order was a gift"]),
            ("en", ["order number", "photo or video", "Whether the order was a gift"]),
        ):
            message = rendered("complaint.info_requested", "email", locale)
            for item in expected:
                assert item in message.text
                assert item in (message.html or "")
            assert "3" in message.text

    def test_rejection_gives_the_reason_and_the_alternative(self):
        zh = rendered("complaint.rejected", "email", "zh-CN").text
        assert "已超过售后期限" in zh
        assert "12315" in zh
        en = rendered("complaint.rejected", "email", "en").text
        assert "Reason: return requested 40 days after delivery, the window is 15 days." in en
        assert "the national consumer complaint platform 12315" in en

    def test_rejection_with_a_code_it_does_not_know_shows_intakes_words(self):
        message = rendered(
            "complaint.rejected",
            "email",
            "zh-CN",
            reason_code="new_rule",
            reason="a reason from a newer intake",
            alternative="somewhere else",
        )
        assert "a reason from a newer intake" in message.text
        assert "somewhere else" in message.text

    def test_offer_lists_each_remedy_with_its_amount(self):
        zh = rendered("case.remedy_offered", "email", "zh-CN").text
        assert "- 退款 ¥199.00" in zh
        assert "- 优惠券 ¥50.00（满100可用）" in zh
        assert "- 书面致歉" in zh
        en = rendered("case.remedy_offered", "email", "en").text
        assert "- Refund: CN¥199.00" in en

    def test_an_offer_without_a_decision_date_asks_without_one(self):
        for channel in ("email", "sms", "app_push"):
            for locale in SUPPORTED_LOCALES:
                message = rendered("case.remedy_offered", channel, locale, respond_by=None)
                assert "None" not in everything(message), (channel, locale)

    def test_resolution_says_what_happens_next(self):
        for locale in SUPPORTED_LOCALES:
            text = rendered("case.resolved", "email", locale).text
            for detail in ("199.00", "SF1234567890123", "SORRY-7Q2X-K9", "50.00"):
                assert detail in text
        assert "2024年5月8日前退回原支付账户" in rendered("case.resolved", "sms", "zh-CN").text

    def test_resolution_without_anything_to_wait_for_says_so(self):
        message = render(
            "case.resolved",
            "email",
            "en",
            Resolution(complaint_number=NUMBER, resolved_at=datetime(2024, 5, 5, tzinfo=UTC)),
        )
        assert "Nothing more is needed from you." in message.text

    def test_progress_update_names_the_parcel_and_the_next_update(self):
        text = rendered("notification.progress_update", "sms", "zh-CN").text
        assert "ZTO78451296300" in text
        assert "到达【上海转运中心】" in text
        assert "2024年5月5日 10:00前再告知您" in text

    def test_progress_update_without_a_tracking_feed_says_the_carrier_is_asked(self):
        context = ProgressUpdate(
            complaint_number=NUMBER, next_update_at=datetime(2024, 5, 5, 2, tzinfo=UTC)
        )
        text = render("notification.progress_update", "sms", "zh-CN", context).text
        assert "我们正在向快递公司核实包裹的最新位置" in text
        with pytest.raises(ValidationError):
            ProgressUpdate(
                complaint_number=NUMBER,
                tracking_number="ZTO1",
                next_update_at=datetime(2024, 5, 5, 2, tzinfo=UTC),
            )

    def test_survey_messages_carry_the_link_and_its_expiry(self):
        for message_type in ("notification.survey_invitation", "notification.survey_reminder"):
            for channel in ("sms", "email"):
                text = rendered(message_type, channel, "en").text
                assert "https://shop.example.com/survey/eyJjIjo" in text
                assert "May 12, 2024" in text

    def test_sla_breach_tells_the_supervisor_to_step_in(self):
        message = rendered("complaint.sla_breached", "email", "en")
        assert message.subject is not None
        assert message.subject.startswith("[SLA breached]")
        assert "Supervisor, please step in now" in message.text


class TestFormatting:
    def test_times_print_in_the_readers_zone_and_locale(self):
        at = datetime(2024, 5, 4, 2, 0, tzinfo=UTC)
        context = sample_context("case.opened").model_copy(update={"first_response_due_at": at})
        shanghai = render("case.opened", "sms", "zh-CN", context)
        assert "2024年5月4日 10:00" in shanghai.text
        berlin = render("case.opened", "sms", "en", context, time_zone="Europe/Berlin")
        assert "May 4, 2024, 4:00 AM" in berlin.text

    def test_amounts_print_with_their_currency_per_locale(self):
        refund = Refund(
            amount=Money(amount=Decimal("1234.50"), currency="USD"),
            expected_by=datetime(2024, 5, 8, tzinfo=UTC),
        )
        context = Resolution(
            complaint_number=NUMBER, resolved_at=datetime(2024, 5, 5, tzinfo=UTC), refund=refund
        )
        assert "US$1,234.50" in render("case.resolved", "sms", "zh-CN", context).text
        assert "$1,234.50" in render("case.resolved", "sms", "en", context).text
        coupon = Coupon(
            code="X1",
            value=Money(amount=Decimal("50")),
            expires_at=datetime(2024, 5, 31, tzinfo=UTC),
        )
        context = context.model_copy(update={"refund": None, "coupon": coupon})
        assert "CN¥50.00" in render("case.resolved", "sms", "en", context).text

    def test_an_unknown_time_zone_is_refused(self):
        with pytest.raises(TemplateContextError, match="Mars/Olympus"):
            render(
                "case.opened", "sms", "en", sample_context("case.opened"), time_zone="Mars/Olympus"
            )


class TestLocales:
    @pytest.mark.parametrize(
        ("requested", "resolved"),
        [
            (None, "zh-CN"),
            ("", "zh-CN"),
            ("zh-CN", "zh-CN"),
            ("zh_CN", "zh-CN"),
            ("zh-TW", "zh-CN"),
            ("en", "en"),
            ("en-US", "en"),
            ("EN_gb", "en"),
            ("fr-FR", "zh-CN"),
        ],
    )
    def test_a_requested_locale_resolves_to_the_closest_supported_one(self, requested, resolved):
        assert resolve_locale(requested) == resolved

    def test_a_missing_translation_falls_back_to_chinese(self):
        catalog = TemplateCatalog(
            DictLoader(
                {
                    "complaint.withdrawn/sms.zh-CN.j2": "{# version: 3 #}"
                    "{% block text %}已撤回 {{ complaint_number }}{% endblock %}"
                }
            )
        )
        message = catalog.render(
            "complaint.withdrawn", "sms", "en", sample_context("complaint.withdrawn")
        )
        assert message.locale == DEFAULT_LOCALE
        assert message.template_version == 3
        assert message.text == f"已撤回 {NUMBER}"


def catalog_of(source: str, *, channel: str = "sms") -> TemplateCatalog:
    return TemplateCatalog(DictLoader({f"test.message/{channel}.zh-CN.j2": source}))


class TestSafety:
    def test_html_is_escaped_and_text_is_not(self):
        message = rendered(
            "complaint.rejected",
            "email",
            "en",
            reason="<script>alert(1)</script> & more",
        )
        assert "<script>alert(1)</script> & more" in message.text
        assert message.html is not None
        assert "<script>" not in message.html
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in message.html

    def test_an_undefined_value_is_an_error_naming_it(self):
        catalog = catalog_of("{# version: 1 #}{% block text %}{{ missing_value }}{% endblock %}")
        with pytest.raises(TemplateRenderError, match="missing_value"):
            catalog.render("test.message", "sms", "zh-CN", {})

    def test_printing_none_is_an_error(self):
        catalog = catalog_of("{# version: 1 #}{% block text %}{{ nothing }}{% endblock %}")
        with pytest.raises(TemplateRenderError, match="None"):
            catalog.render("test.message", "sms", "zh-CN", {"nothing": None})

    @pytest.mark.parametrize(
        "expression",
        [
            "''.__class__.__mro__",
            "complaint_number.__class__",
            "cycler.__init__.__globals__",
            "items.append(1)",
        ],
    )
    def test_the_sandbox_refuses_to_reach_outside_the_context(self, expression):
        catalog = catalog_of(
            f"{{# version: 1 #}}{{% block text %}}{{{{ {expression} }}}}{{% endblock %}}"
        )
        with pytest.raises(TemplateRenderError):
            catalog.render(
                "test.message", "sms", "zh-CN", {"complaint_number": NUMBER, "items": []}
            )

    def test_a_template_without_a_version_is_refused(self):
        catalog = catalog_of("{% block text %}hello{% endblock %}")
        with pytest.raises(TemplateDefinitionError, match="version"):
            catalog.render("test.message", "sms", "zh-CN", {})

    def test_a_template_without_a_block_its_channel_needs_is_refused(self):
        catalog = catalog_of(
            "{# version: 1 #}{% block text %}hello{% endblock %}", channel="app_push"
        )
        with pytest.raises(TemplateDefinitionError, match="subject"):
            catalog.render("test.message", "app_push", "zh-CN", {})

    def test_a_template_with_bad_syntax_is_refused_with_its_line(self):
        catalog = catalog_of("{# version: 1 #}\n{% block text %}{{ oops {% endblock %}")
        with pytest.raises(TemplateDefinitionError, match=re.escape("test.message/sms.zh-CN.j2:2")):
            catalog.render("test.message", "sms", "zh-CN", {})


class TestContexts:
    def test_a_context_missing_a_value_is_refused_before_rendering(self):
        with pytest.raises(TemplateContextError, match="respond_by"):
            render(
                "complaint.received",
                "sms",
                "zh-CN",
                {"complaint_number": NUMBER, "received_at": datetime.now(UTC)},
            )

    def test_a_naive_timestamp_is_refused(self):
        context = {
            "complaint_number": NUMBER,
            "received_at": datetime(2024, 5, 3, 10, 0),
            "respond_by": datetime(2024, 5, 4, 10, 0),
        }
        with pytest.raises(TemplateContextError, match="received_at"):
            render("complaint.received", "sms", "zh-CN", context)

    def test_a_plain_mapping_is_validated_like_the_model(self):
        context = sample_context("complaint.received").model_dump()
        assert render("complaint.received", "sms", "en", context) == rendered(
            "complaint.received", "sms", "en"
        )

    def test_unknown_message_types_and_channels_have_no_template(self):
        with pytest.raises(TemplateNotFoundError):
            render("case.unheard_of", "sms", "zh-CN", {})
        with pytest.raises(TemplateNotFoundError):
            render("complaint.received", "fax", "zh-CN", sample_context("complaint.received"))
        assert not CATALOG.has_template("complaint.sla_warning", "sms")
        assert CATALOG.has_template("complaint.sla_warning", "email")
