"""Redaction of contact data from what the delivery log keeps.

A message body is kept so ops can see what a customer was told, never whom it reached: the
recipient's own phone, email and name are replaced wherever they appear (the caller passes
them: only it knows them), and so is anything that looks like an email address or a phone
number. Redacted values keep the masks reads use elsewhere (138****8000, z***@example.com,
张*), so a reader can still tell two recipients apart without learning either.

Patterns are deliberately narrow for phones: mainland mobile numbers (11 digits from 13 to 19,
optionally after +86) and international numbers written with a leading `+`. A bare digit run
of any other shape stays, because complaint numbers, order numbers, tracking numbers and
amounts are exactly what a message is for.
"""

import re
from collections.abc import Iterable
from dataclasses import replace

from markupsafe import escape

from notification_service.domain.templates import Message
from shared.pii import mask_email, mask_name, mask_phone

# A name shorter than this would match inside ordinary words (a one-letter initial).
MIN_NAME_LENGTH = 2
# A given phone is matched on its last digits; fewer would match amounts and dates.
MIN_PHONE_DIGITS = 6
_MAINLAND_DIGITS = 11
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_SEPARATOR = r"[\s-]?"
_MAINLAND_MOBILE = re.compile(
    rf"(?<![\w+])(?:\+?86{_SEPARATOR})?1[3-9]\d(?:{_SEPARATOR}\d{{4}}){{2}}(?![\w])"
)
_INTERNATIONAL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[\s-]?\d){6,14}(?!\w)")
_LATIN = re.compile(r"[A-Za-z]")


def _digits(value: str) -> str:
    return "".join(character for character in value if character.isdigit())


def _masked_phone(match: re.Match[str]) -> str:
    digits = _digits(match.group())
    if digits.startswith("86") and len(digits) == _MAINLAND_DIGITS + 2:
        digits = digits[2:]
    return mask_phone(digits) or ""


def _given_phone_pattern(phone: str) -> re.Pattern[str] | None:
    digits = _digits(phone)
    if len(digits) < MIN_PHONE_DIGITS:
        return None
    # The national part, however it is written: 138 0013 8000, 138-0013-8000, +86 13800138000.
    national = digits[-_MAINLAND_DIGITS:]
    spaced = _SEPARATOR.join(re.escape(digit) for digit in national)
    return re.compile(rf"(?<!\d)(?:\+?\d{{1,3}}{_SEPARATOR})?{spaced}(?!\d)")


def _given_name_pattern(name: str) -> re.Pattern[str]:
    escaped = re.escape(name)
    if _LATIN.search(name):
        # Latin names only as whole words: "Li" must not eat "delivery".
        return re.compile(rf"(?<![A-Za-z]){escaped}(?![A-Za-z])", re.IGNORECASE)
    return re.compile(escaped)


def redact(
    text: str,
    *,
    names: Iterable[str | None] = (),
    phones: Iterable[str | None] = (),
    emails: Iterable[str | None] = (),
) -> str:
    """The text with the given contact data, and any email or phone number, masked."""
    for email in {value.strip() for value in emails if value and value.strip()}:
        text = re.sub(re.escape(email), mask_email(email) or "", text, flags=re.IGNORECASE)
    text = _EMAIL.sub(lambda match: mask_email(match.group()) or "", text)
    for phone in {value for value in phones if value}:
        pattern = _given_phone_pattern(phone)
        if pattern is not None:
            text = pattern.sub(_masked_phone, text)
    text = _MAINLAND_MOBILE.sub(_masked_phone, text)
    text = _INTERNATIONAL.sub(_masked_phone, text)
    given_names = {value.strip() for value in names if value and value.strip()}
    # Longest first, so "张伟" is not left half-masked by a shorter "张伟伟"'s pass.
    for name in sorted(given_names, key=len, reverse=True):
        if len(name) < MIN_NAME_LENGTH:
            continue
        # HTML bodies hold the escaped form (O&#39;Brien).
        for form in {name, str(escape(name))}:
            text = _given_name_pattern(form).sub(mask_name(name) or "", text)
    return text


def redact_message(
    message: Message,
    *,
    names: Iterable[str | None] = (),
    phones: Iterable[str | None] = (),
    emails: Iterable[str | None] = (),
) -> Message:
    """The message as the delivery log keeps it: subject and bodies redacted."""
    names, phones, emails = tuple(names), tuple(phones), tuple(emails)

    def clean(text: str) -> str:
        return redact(text, names=names, phones=phones, emails=emails)

    return replace(
        message,
        subject=clean(message.subject) if message.subject is not None else None,
        text=clean(message.text),
        html=clean(message.html) if message.html is not None else None,
    )
