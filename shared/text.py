"""Text that refuses control characters: a NUL or an escape sequence is a 422, never a 500.

Postgres refuses NUL in text (the request would fail after validation, with the SQL in the
traceback), and other control characters forge log lines or terminal output. Free text keeps
line breaks and tabs; single-line fields (names, ids, emails, phones, product names) refuse
every control character, Unicode line separators included. Unpaired surrogates, which JSON can
carry but UTF-8 cannot encode, are refused as well.

Producers refuse; readers tolerate: events decoded with `LENIENT_TEXT` skip the check, so an
event written before a rule tightened never goes to the dead-letter topic for it.
"""

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo
from pydantic_core import PydanticCustomError

# C0 except tab, line feed and carriage return; DEL; C1; unpaired surrogates.
_FORBIDDEN_IN_FREE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# Every C0 and C1 control character, DEL, the Unicode line and paragraph separators.
_FORBIDDEN_IN_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

LENIENT_TEXT_KEY = "lenient_text"
LENIENT_TEXT: dict[str, Any] = {LENIENT_TEXT_KEY: True}
"""Validation context for readers of stored or published data: text is not re-checked."""

ERROR_TYPE = "control_character"


def first_forbidden_character(value: str, *, multiline: bool) -> int | None:
    """Position of the first character the kind of field refuses, or None when clean."""
    pattern = _FORBIDDEN_IN_FREE_TEXT if multiline else _FORBIDDEN_IN_SINGLE_LINE
    found = pattern.search(value)
    return found.start() if found else None


def _checker(*, multiline: bool) -> Any:
    rule = "must not contain" if multiline else "must be one line without"

    def check(value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or (info.context or {}).get(LENIENT_TEXT_KEY):
            return value
        position = first_forbidden_character(value, multiline=multiline)
        if position is None:
            return value
        # Names the code point and where it is, never the value: it may be personal data.
        raise PydanticCustomError(
            ERROR_TYPE,
            "{rule} control characters (found U+{code} at position {position})",
            {"rule": rule, "code": f"{ord(value[position]):04X}", "position": position},
        )

    return check


FreeText = Annotated[str, BeforeValidator(_checker(multiline=True))]
"""Free text (a description): line breaks and tabs allowed, other control characters not."""

SingleLine = Annotated[str, BeforeValidator(_checker(multiline=False))]
"""A one-line value (name, id, email, phone, product name): no control characters at all."""
