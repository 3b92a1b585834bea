"""Message templates: `templates/<message type>/<channel>.<locale>.j2`, rendered in a sandbox.

Each file starts with `{# version: N #}` (the delivery log records which version a message
was rendered from) and defines the blocks its channel needs: `text` for SMS; `subject` (the
title) and `text` for app push; `subject`, `text` and `html` for email. Templates run in
Jinja2's immutable sandbox with strict undefined values: a template can read its context and
nothing else, and a missing value is an error, never an empty gap in a customer's message.
Printing None is an error too: optional values are guarded with `{% if %}`.

The html block is rendered with autoescaping (a rejection reason holding `<script>` arrives as
text); subject and text are not (an SMS must not read `&amp;`). Dates and times print in the
reader's time zone and amounts with their currency, per locale, through Babel: the filters
`datetime`, `date`, `time` and `money`. A locale without its own file falls back to zh-CN.
"""

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_date, format_time
from babel.numbers import format_currency
from jinja2 import (
    BaseLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    pass_context,
)
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup
from pydantic import BaseModel, ValidationError

from notification_service.domain.contexts import CONTEXT_MODELS
from notification_service.domain.routing import DeliveryChannel

DEFAULT_LOCALE = "zh-CN"
SUPPORTED_LOCALES = ("zh-CN", "en")
DEFAULT_TIME_ZONE = "Asia/Shanghai"
TEMPLATE_SUFFIX = ".j2"
EMAIL_LAYOUT = "_layouts/email.html.j2"
REQUIRED_BLOCKS: dict[str, tuple[str, ...]] = {
    DeliveryChannel.SMS: ("text",),
    DeliveryChannel.APP_PUSH: ("subject", "text"),
    DeliveryChannel.EMAIL: ("subject", "text", "html"),
}
_VERSION_HEADER = re.compile(r"\A\{#-?\s*version:\s*(\d+)\s*-?#\}")
_TEMPLATE_NAME = re.compile(
    r"\A(?P<type>[a-z0-9_.]+)/(?P<channel>[a-z_]+)\.(?P<locale>[A-Za-z-]+)\.j2\Z"
)
_BLANK_LINES = re.compile(r"\n{3,}")


class TemplateDefinitionError(ValueError):
    """A template file that cannot be used: no version header, a missing block, bad syntax."""


class TemplateNotFoundError(LookupError):
    """No template for this message type and channel, in any locale."""


class TemplateContextError(ValueError):
    """The context given for a message lacks a value or holds a wrong one."""


class TemplateRenderError(ValueError):
    """A template failed while rendering: an undefined value, None printed, a sandbox refusal."""


@dataclass(frozen=True)
class Message:
    """A rendered message, ready for a channel: the subject (email, push title) and the bodies."""

    subject: str | None
    text: str
    html: str | None = None
    # Where it came from, for the delivery log: the template's name, version and locale.
    template: str | None = None
    template_version: int | None = None
    locale: str | None = None


@dataclass(frozen=True)
class TemplateInfo:
    """One template file: what it renders and its version."""

    message_type: str
    channel: str
    locale: str
    version: int
    name: str


def resolve_locale(requested: str | None) -> str:
    """The supported locale closest to a requested one (en-US -> en, zh_Hans -> zh-CN)."""
    if not requested:
        return DEFAULT_LOCALE
    tag = requested.replace("_", "-").lower()
    for supported in SUPPORTED_LOCALES:
        if tag == supported.lower():
            return supported
    language = tag.split("-", 1)[0]
    for supported in SUPPORTED_LOCALES:
        if supported.lower().split("-", 1)[0] == language:
            return supported
    return DEFAULT_LOCALE


@cache
def _parsed_locale(tag: str) -> Locale:
    return Locale.parse(tag, sep="-")


def _babel_locale(context: Context) -> Locale:
    return _parsed_locale(str(context["locale"]))


def _local(context: Context, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise TemplateRenderError(f"expected an aware datetime, got {value!r}")
    return value.astimezone(ZoneInfo(str(context["time_zone"])))


def _plain_spaces(text: str) -> str:
    # CLDR puts narrow and non-breaking spaces in times and amounts ("6:00\u202fPM"): outside
    # the GSM alphabet, one of them turns an English SMS into UCS-2 and halves its length.
    return text.replace("\u202f", " ").replace("\xa0", " ")


@pass_context
def _format_datetime(context: Context, value: datetime) -> str:
    local = _local(context, value)
    locale = _babel_locale(context)
    # The locale's own way of joining a date and a time: "2024年5月3日 18:00" and
    # "May 3, 2024, 6:00 PM".
    joined: str = locale.datetime_formats["medium"]
    return _plain_spaces(
        joined.format(
            format_time(local, "short", locale=locale), format_date(local, "medium", locale=locale)
        )
    )


@pass_context
def _format_date(context: Context, value: datetime) -> str:
    return _plain_spaces(
        format_date(_local(context, value), "medium", locale=_babel_locale(context))
    )


@pass_context
def _format_time(context: Context, value: datetime) -> str:
    return _plain_spaces(
        format_time(_local(context, value), "short", locale=_babel_locale(context))
    )


@pass_context
def _format_money(context: Context, value: Mapping[str, Any]) -> str:
    amount = value["amount"]
    if not isinstance(amount, Decimal):
        raise TemplateRenderError(f"expected a Decimal amount, got {amount!r}")
    return _plain_spaces(
        format_currency(amount, str(value["currency"]), locale=_babel_locale(context))
    )


def _refuse_none(value: Any) -> Any:
    # A customer must never read "None": optional values are guarded in the template.
    if value is None:
        raise TemplateRenderError("a template printed None: guard optional values with {% if %}")
    return value


def _environment(loader: BaseLoader, *, autoescape: bool) -> ImmutableSandboxedEnvironment:
    environment = ImmutableSandboxedEnvironment(
        loader=loader,
        autoescape=autoescape,
        undefined=StrictUndefined,
        finalize=_refuse_none,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.filters.update(
        datetime=_format_datetime, date=_format_date, time=_format_time, money=_format_money
    )
    return environment


class TemplateCatalog:
    """The templates of one loader (the packaged files by default), compiled once each."""

    def __init__(self, loader: BaseLoader | None = None) -> None:
        loader = loader or PackageLoader("notification_service", "templates")
        # One source, compiled twice: subject and text as they are, html escaped.
        self._plain = _environment(loader, autoescape=False)
        self._html = _environment(loader, autoescape=True)
        self._versions: dict[str, int] = {}

    def templates(self) -> tuple[TemplateInfo, ...]:
        """Every message template the loader holds, with its version."""
        found = []
        for name in self._plain.list_templates():
            match = _TEMPLATE_NAME.match(name)
            if match is None or name.startswith("_"):
                continue
            found.append(
                TemplateInfo(
                    message_type=match["type"],
                    channel=match["channel"],
                    locale=match["locale"],
                    version=self.version(name),
                    name=name,
                )
            )
        return tuple(found)

    def version(self, name: str) -> int:
        """The version a template file declares in its first line."""
        if name not in self._versions:
            loader = self._plain.loader
            assert loader is not None
            source = loader.get_source(self._plain, name)[0]
            match = _VERSION_HEADER.match(source)
            if match is None:
                raise TemplateDefinitionError(
                    f"{name}: the first line must be '{{# version: N #}}'"
                )
            self._versions[name] = int(match[1])
        return self._versions[name]

    def find(self, message_type: str, channel: str, locale: str | None) -> str:
        """The file that renders a message: the locale's own, else zh-CN's."""
        wanted = resolve_locale(locale)
        candidates = [f"{message_type}/{channel}.{wanted}{TEMPLATE_SUFFIX}"]
        if wanted != DEFAULT_LOCALE:
            candidates.append(f"{message_type}/{channel}.{DEFAULT_LOCALE}{TEMPLATE_SUFFIX}")
        loader = self._plain.loader
        assert loader is not None
        for name in candidates:
            try:
                loader.get_source(self._plain, name)
            except TemplateNotFound:
                continue
            return name
        raise TemplateNotFoundError(f"no {channel} template for {message_type}")

    def has_template(self, message_type: str, channel: str) -> bool:
        """Whether a message type can be rendered for a channel (in the default locale at least)."""
        try:
            self.find(message_type, channel, DEFAULT_LOCALE)
        except TemplateNotFoundError:
            return False
        return True

    def render(
        self,
        message_type: str,
        channel: str,
        locale: str | None,
        context: Mapping[str, Any] | BaseModel,
        *,
        time_zone: str = DEFAULT_TIME_ZONE,
    ) -> Message:
        """Renders one message for a channel and locale, with times in the reader's zone."""
        blocks = REQUIRED_BLOCKS.get(channel)
        if blocks is None:
            raise TemplateNotFoundError(f"channel {channel!r} has no templates")
        name = self.find(message_type, channel, locale)
        match = _TEMPLATE_NAME.match(name)
        assert match is not None
        values = {
            **_validated(message_type, context),
            "locale": match["locale"],
            "time_zone": _checked_zone(time_zone),
        }
        version = self.version(name)
        parts = {
            block: self._render_block(name, block, values, html=block == "html") for block in blocks
        }
        html = parts.get("html")
        if html is not None:
            html = self._render_layout(
                {**values, "subject": parts["subject"], "content": Markup(html)}
            )
        return Message(
            subject=parts.get("subject"),
            text=parts["text"],
            html=html,
            template=name,
            template_version=version,
            locale=match["locale"],
        )

    def _render_block(self, name: str, block: str, values: dict[str, Any], *, html: bool) -> str:
        environment = self._html if html else self._plain
        try:
            template = environment.get_template(name)
        except TemplateSyntaxError as exc:
            raise TemplateDefinitionError(f"{name}:{exc.lineno}: {exc.message}") from exc
        render_block: Callable[[Context], Iterator[str]] | None = template.blocks.get(block)
        if render_block is None:
            raise TemplateDefinitionError(f"{name}: no '{block}' block")
        try:
            rendered = "".join(render_block(template.new_context(values)))
        except UndefinedError as exc:
            raise TemplateRenderError(f"{name} ({block}): {exc.message}") from exc
        except SecurityError as exc:
            raise TemplateRenderError(f"{name} ({block}): refused by the sandbox: {exc}") from exc
        except TemplateRenderError as exc:
            raise TemplateRenderError(f"{name} ({block}): {exc}") from exc
        except TemplateError as exc:
            raise TemplateRenderError(f"{name} ({block}): {exc.message}") from exc
        return _tidy(rendered, single_line=block == "subject")

    def _render_layout(self, values: dict[str, Any]) -> str:
        try:
            return self._html.get_template(EMAIL_LAYOUT).render(values).strip() + "\n"
        except (TemplateError, TemplateRenderError) as exc:
            raise TemplateDefinitionError(f"{EMAIL_LAYOUT}: {exc}") from exc


def _tidy(rendered: str, *, single_line: bool) -> str:
    if single_line:
        return " ".join(rendered.split())
    lines = [line.rstrip() for line in rendered.strip().splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines))


def _validated(message_type: str, context: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    model = CONTEXT_MODELS.get(message_type)
    if model is None:
        data = context.model_dump() if isinstance(context, BaseModel) else dict(context)
        return data
    try:
        checked = (
            context
            if isinstance(context, model)
            else model.model_validate(
                context.model_dump() if isinstance(context, BaseModel) else context
            )
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'context'}: {error['msg']}"
            for error in exc.errors()
        )
        raise TemplateContextError(f"{message_type}: {problems}") from exc
    # Plain values for the sandbox: dicts and lists, Decimals and datetimes kept as they are.
    return checked.model_dump()


def _checked_zone(time_zone: str) -> str:
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TemplateContextError(f"unknown time zone {time_zone!r}") from exc
    return time_zone


@cache
def default_catalog() -> TemplateCatalog:
    """The packaged templates, shared by the process."""
    return TemplateCatalog()


def render(
    message_type: str,
    channel: str,
    locale: str | None,
    context: Mapping[str, Any] | BaseModel,
    *,
    time_zone: str = DEFAULT_TIME_ZONE,
) -> Message:
    """Renders one message from the packaged templates (see `TemplateCatalog.render`)."""
    return default_catalog().render(message_type, channel, locale, context, time_zone=time_zone)
