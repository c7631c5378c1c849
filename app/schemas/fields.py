"""The field types of taskchat's schemas, and the cleaning they do.

Each checks more than marshmallow's field it extends (an `Id` is an integer or a
string of digits within the database's range, a `Text` is trimmed and must not be
blank) and states those rules for the OpenAPI document through an `openapi()`
method (app/api/openapi.py reads it). `clean_text` and `clean_token` are the
cleaning of `Text` and `Token` as plain functions, for the inputs' fast paths.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError as SchemaError
from marshmallow import fields, validate

from ..models import MAX_DB_INT


# 1 to 2**31-1 in decimal, no leading zero: the URL converter's regex (app/api/__init__.py) and
# the document's string form of an id. [0-9], not \d: a JSON Schema reader may take \d for
# any Unicode digit (Python's re does), and Id takes ASCII digits only.
ID_DIGITS = (
    r"(?:[1-9][0-9]{0,8}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}"
    r"|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]|214748364[0-7])"
)
# What str.strip() removes (str.isspace), spelled out for the document's patterns: JSON Schema's
# `\s` (ECMA-262) is another set (it lacks U+001C..U+001F and U+0085, and has U+FEFF).
_SPACE = r"\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


class Id(fields.Field):
    """A positive integer id. Accepts JSON integers and strings of digits (the
    web frontend sends ids as it got them, sometimes as strings); refuses
    booleans, floats, and anything a database integer cannot hold."""

    default_error_messages = {"invalid": "Must be a positive integer id."}

    def __init__(self, *, minimum: int = 1, **kwargs: Any):
        assert minimum in (0, 1), "the documented string form knows only 0 and 1 as minimum"
        self.minimum = minimum
        super().__init__(**kwargs)

    def openapi(self) -> dict[str, Any]:
        """The document's word for it: either form, each with the same bounds."""
        digits = f"^0*{ID_DIGITS}$" if self.minimum else f"^0*{ID_DIGITS}?$"
        return {"anyOf": [
            {"type": "integer", "minimum": self.minimum, "maximum": MAX_DB_INT},
            {"type": "string", "pattern": digits, "minLength": 1, "maxLength": 19,
             "description": "the same id as a string of ASCII digits"},
        ]}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:  # noqa: ARG002 (marshmallow's signature)
        if isinstance(value, bool):
            raise self.make_error("invalid")
        # ASCII digits only, as sent: str.isdigit() is also true for "²" (which int()
        # refuses: a crash) and "١٢" (which int() reads as 12), and spaces are no id.
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
            value = int(value)
        if not isinstance(value, int) or not self.minimum <= value <= MAX_DB_INT:
            raise self.make_error("invalid")
        return value

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> int | None:  # noqa: ARG002 (marshmallow's signature)
        return value


class BoundedList(fields.List):
    """A list whose length is checked before its items: 30 000 bad items would
    otherwise give 30 000 error messages, an answer of megabytes."""

    def __init__(self, inner: fields.Field, *, max_length: int, **kwargs: Any):
        self.max_length = max_length
        super().__init__(inner, validate=validate.Length(max=max_length), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if isinstance(value, list) and len(value) > self.max_length:
            raise SchemaError(f"Longer than maximum length {self.max_length}.")
        return super()._deserialize(value, attr, data, **kwargs)


class Text(fields.String):
    """A string, trimmed, then checked for length."""

    def __init__(self, *, max_length: int, allow_blank: bool = False, **kwargs: Any):
        assert max_length >= 2
        self.max_length, self.allow_blank = max_length, allow_blank
        super().__init__(**kwargs)

    def openapi(self) -> dict[str, Any]:
        """The trimmed text's rules as one pattern: blanks around, then (unless blank text is
        allowed) 1 to max_length characters that start and end with a non-blank; no NUL.
        maxLength would be wrong: the blanks around do not count."""
        text = f"[^{_SPACE}\\u0000](?:[^\\u0000]{{0,{self.max_length - 2}}}[^{_SPACE}\\u0000])?"
        if self.allow_blank:
            text = f"(?:{text})?"
        blank = "may be blank" if self.allow_blank else "not blank"
        return {
            "pattern": f"^[{_SPACE}]*{text}[{_SPACE}]*$",
            "description": f"trimmed, then {blank} and at most {self.max_length} characters; no NUL character",
        }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return clean_text(super()._deserialize(value, attr, data, **kwargs), self.max_length, self.allow_blank)


def clean_text(text: str, max_length: int, allow_blank: bool = False) -> str:
    text = text.strip()
    if not text and not allow_blank:
        raise SchemaError("Must not be blank.")
    if len(text) > max_length:
        raise SchemaError(f"Must be at most {max_length} characters.")
    _refuse_unstorable(text)
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_surrogates(text: str) -> None:
    """A lone surrogate (JSON "\\ud800") is no character: it cannot be encoded as
    UTF-8, so neither database can store it and no hash can read it."""
    if _SURROGATE.search(text):
        raise SchemaError("Must not contain lone surrogates (invalid Unicode).")


def _refuse_unstorable(text: str) -> None:
    """PostgreSQL stores no NUL character in text or JSONB, and SQLite would: refused
    as bad input on both, rather than a database crash on one."""
    if "\x00" in text:
        raise SchemaError("Must not contain the NUL character.")
    _refuse_surrogates(text)


class Token(fields.String):
    """A short client-made string: a clientId or an emoji. Not trimmed, since
    it is compared as sent; control characters are refused."""

    def __init__(self, *, max_length: int, **kwargs: Any):
        self.max_length = max_length
        super().__init__(**kwargs)

    def openapi(self) -> dict[str, Any]:
        """Not blank (one non-blank character at least), no control character."""
        control = r"\u0000-\u001f\u007f"
        return {
            "pattern": f"^[^{control}]*[^{_SPACE}{control}][^{control}]*$",
            "minLength": 1, "maxLength": self.max_length,
        }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return clean_token(super()._deserialize(value, attr, data, **kwargs), self.max_length)


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def clean_token(text: str, max_length: int) -> str:
    if not text.strip():
        raise SchemaError("Must not be blank.")
    if len(text) > max_length:
        raise SchemaError(f"Must be at most {max_length} characters.")
    if _CONTROL.search(text):
        raise SchemaError("Must not contain control characters.")
    _refuse_surrogates(text)
    return text


class JsonBoolean(fields.Boolean):
    """true or false as JSON has them; marshmallow's Boolean also takes 1, "yes", "on"..."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:  # noqa: ARG002 (marshmallow's signature)
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class UtcDateTime(fields.DateTime):
    """ISO 8601 in UTC with a `Z`; SQLite hands back naive datetimes that are UTC."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:  # noqa: ARG002 (marshmallow's signature)
        return utc_iso(value)


def utc_iso(value: datetime | None) -> str | None:
    """The wire form of a time: ISO 8601 in UTC, milliseconds, with a `Z`."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        # SQLite hands back naive datetimes that are UTC; PostgreSQL, its session's zone.
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" written as "Z"


class Email(fields.Email):
    """An email address, surrounding spaces forgiven."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, str):
            value = value.strip()
            _refuse_unstorable(value)
        return super()._deserialize(value, attr, data, **kwargs)


class Password(fields.String):
    """Any characters (it is only hashed, never stored), but real ones: a lone
    surrogate cannot be encoded for the hash."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        _refuse_surrogates(text)
        return text

