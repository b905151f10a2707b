"""Field values between the wire (JSON, CSV, SOQL) and the store's Python values.

The store keeps typed values (str, bool, int, float, `date`, timezone-aware `datetime`); this module is the one
place that parses and formats them the way Salesforce does (`2026-11-23T10:15:00.000+0000`, `2026-11-23`).
Salesforce keeps datetimes to the second: a written value loses its milliseconds (`to_second`), so the
milliseconds it renders are always `000`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from .objects import FieldDef

STRING_TYPES = frozenset(
    {"id", "string", "email", "url", "picklist", "combobox", "textarea", "reference", "phone"}
)
NUMBER_TYPES = frozenset({"currency", "double", "percent", "int"})
_DATETIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$"
)
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")


class ValueError_(Exception):
    """A value does not fit its field; `code` is the Salesforce status code to report."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def to_second(value: dt.datetime) -> dt.datetime:
    """`value` in UTC without its fraction of a second: what a Salesforce datetime field holds."""
    return value.astimezone(dt.UTC).replace(microsecond=0)


def format_datetime(value: dt.datetime) -> str:
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> dt.datetime | None:
    m = _DATETIME_RE.match(text)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = (m.group(7) or "0")[:6].ljust(6, "0")
    zone = m.group(8)
    tz = dt.UTC
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return dt.datetime(year, month, day, hour, minute, second, int(frac), tzinfo=tz).astimezone(dt.UTC)
    except ValueError:
        return None


def parse_date(text: str) -> dt.date | None:
    m = _DATE_RE.match(text)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def to_json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def to_csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(to_json(value))


def id_suffix(id15: str) -> str:
    """The 3-character case-safe suffix Salesforce appends to a 15-character id."""
    out = []
    for chunk in range(3):
        flags = 0
        for pos, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                flags |= 1 << pos
        out.append(_ID_ALPHABET[flags])
    return "".join(out)


def normalize_id(text: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when it is not shaped like an id."""
    if not isinstance(text, str) or not _ID_RE.match(text):
        return None
    if len(text) == 15:
        return text + id_suffix(text)
    return text if id_suffix(text[:15]) == text[15:] else None


def coerce(fd: FieldDef, value: Any, *, from_csv: bool = False) -> Any:
    """A wire value as the typed value the store keeps for `fd` (raises `ValueError_`)."""
    if value is None:
        return None
    kind = fd.type
    if from_csv:
        return _coerce_text(fd, str(value))
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        raise _json_error(fd, value, "boolean")
    if kind in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _json_error(fd, value, "double")
        return _number(fd, value)
    if kind in ("date", "datetime"):
        if not isinstance(value, str):
            raise _json_error(fd, value, kind)
        return _coerce_text(fd, value)
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise _json_error(fd, value, "String")
    return _coerce_text(fd, str(value))


def _coerce_text(fd: FieldDef, text: str) -> Any:
    kind = fd.type
    if not text.strip() and kind != "boolean":
        return None  # Salesforce stores an empty string as null
    if kind == "boolean":
        low = text.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no", ""):
            return False
        raise ValueError_(
            "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{fd.label}: value not of required type: {text}"
        )
    if kind in NUMBER_TYPES:
        return _number(fd, text)
    if kind == "date":
        day = parse_date(text.strip())
        if day is None:
            moment = parse_datetime(text.strip())
            day = moment.date() if moment is not None else None
        if day is None:
            raise ValueError_(
                "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{fd.label}: value not of required type: {text}"
            )
        return day
    if kind == "datetime":
        when = parse_datetime(text.strip())
        if when is None:
            raise ValueError_(
                "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{fd.label}: value not of required type: {text}"
            )
        return to_second(when)
    if kind in ("reference", "id"):
        norm = normalize_id(text)
        if norm is None:
            raise ValueError_("MALFORMED_ID", f"{fd.label} ID: id value of incorrect type: {text}")
        return norm
    if kind == "email" and text and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", text):
        raise ValueError_("INVALID_EMAIL_ADDRESS", f"{fd.label}: invalid email address: {text}")
    if fd.length and len(text) > fd.length:
        raise ValueError_(
            "STRING_TOO_LONG", f"{fd.label}: data value too large: {text[:20]}... (max length={fd.length})"
        )
    return text


def _number(fd: FieldDef, value: int | float | str) -> int | float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError_(
            "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{fd.label}: value not of required type: {value}"
        ) from None
    if fd.type == "int":
        return int(number)
    return number


def _json_error(fd: FieldDef, value: Any, expected: str) -> ValueError_:
    return ValueError_(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {expected} from {type(value).__name__} value {value!r} "
        f"for field {fd.name}",
    )
