"""Generic field mapping shared by every mapper: rename, coerce to the schema type, translate picklists.

The YAML says which source field feeds which schema field (`fields: {Status: lead_status}`), which raw
picklist values mean what (`value_maps: {lead_status: {"Closed - Not Converted": qualified_out}}`) and which
date formats a file uses. Mapping is pure: no I/O, no client, no clock.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..errors import RecordError
from ..model import StrictModel
from ..schema import (
    CONTRACT_FIELDS,
    OPPORTUNITY_FIELDS,
    PERSON_FIELDS,
    FactKind,
    FieldType,
)
from ..suggest import did_you_mean
from . import email_check

# A field holding another system's record id (a vtiger field with the Salesforce Contact Id) maps to
# `xref.<source name>.<Object>`: identity resolution then merges the two records into one person.
XREF_PREFIX = "xref."
XREF_TARGET = re.compile(r"^xref\.[A-Za-z][A-Za-z0-9_.-]*\.[A-Za-z][A-Za-z0-9_]*$")
DEFAULT_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%d-%m-%Y", "%d/%m/%Y")
# SQLite stores integers in 64 bits; anything beyond is not a count, an amount or a score.
MAX_NUMBER = 2**63
MAX_NUMBER_CHARS = 40
TRUE_WORDS = {"1", "true", "yes", "y", "ja", "j", "on", "x"}
FALSE_WORDS = {"0", "false", "no", "n", "nee", "off", ""}


FieldStep = tuple[str, str, Mapping[str, Any] | None, FieldType]


def fields_for_kind(kind: FactKind) -> dict[str, FieldType]:
    return dict(_field_types(kind))


@functools.cache
def _field_types(kind: FactKind) -> Mapping[str, FieldType]:
    # built once per kind: mapping asked for a field's type per field per row
    if kind is FactKind.OPPORTUNITY:
        return MappingProxyType(dict(OPPORTUNITY_FIELDS))
    if kind is FactKind.CONTRACT:
        return MappingProxyType(dict(CONTRACT_FIELDS))
    return MappingProxyType({name: f.type for name, f in PERSON_FIELDS.items()})


class ObjectMapping(StrictModel):
    """How one object (a CRM object, or the rows of a file) maps onto the shared schema."""

    kind: FactKind = FactKind.PERSON
    fields: dict[str, str] = Field(default_factory=dict)  # source field -> schema field or `extra.<name>`
    value_maps: dict[str, dict[str, Any]] = Field(default_factory=dict)  # schema field -> raw -> meaning
    constants: dict[str, Any] = Field(default_factory=dict)  # schema field -> fixed value for every record
    date_formats: list[str] = Field(default_factory=lambda: list(DEFAULT_DATE_FORMATS))

    @field_validator("fields")
    @classmethod
    def _targets_are_names(cls, value: dict[str, str]) -> dict[str, str]:
        for target in value.values():
            if not target or not isinstance(target, str):
                raise ValueError("every mapped field needs a schema field name")
        return value

    @model_validator(mode="after")
    def _targets_exist(self) -> ObjectMapping:
        # every wrong name of the object in one message: an admin fixes them all in one round
        known = fields_for_kind(self.kind)
        problems: list[str] = []
        for src, target in self.fields.items():
            if target.startswith(XREF_PREFIX):
                if not XREF_TARGET.match(target):
                    problems.append(f"fields.{src}: '{target}' must look like xref.<source name>.<Object>")
                continue
            if not target.startswith("extra.") and target not in known:
                hint = did_you_mean(target, known)
                listed = f" (known: {', '.join(sorted(known))}; or use extra.<name>)"
                problems.append(
                    f"fields.{src}: '{target}' is not a {self.kind.value} schema field{hint or listed}"
                )
        for section, names in (("value_maps", self.value_maps), ("constants", self.constants)):
            for target in names:
                if not target.startswith("extra.") and target not in known:
                    hint = did_you_mean(target, known)
                    problems.append(
                        f"{section}.{target}: '{target}' is not a {self.kind.value} schema field{hint}"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def schema_type(self, target: str) -> FieldType:
        if target.startswith(("extra.", XREF_PREFIX)):
            return FieldType.STR
        return _field_types(self.kind)[target]

    @functools.cached_property
    def field_plan(self) -> tuple[FieldStep, ...]:
        """(source field, target, value map or None, schema type) per mapped field, worked out once: a
        mapping is applied to every row of a file. A cached property, not a private attribute: it is read
        per row, and pydantic serves private attributes through a slow `__getattr__` (equality ignores it)."""
        return tuple(
            (src, target, self.value_maps.get(target), self.schema_type(target))
            for src, target in self.fields.items()
        )


@dataclass
class Mapped:
    values: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    unknown: list[tuple[str, str]] = field(
        default_factory=list
    )  # (schema field, raw value) not in a value map
    dropped: list[str] = field(default_factory=list)  # why a CRM record's e-mail was left out


def parse_date(raw: Any, formats: list[str] | tuple[str, ...]) -> dt.date | None:
    """A date from a date, datetime or string in one of `formats`; raises ValueError when unreadable."""
    if raw is None:
        return None
    if isinstance(raw, dt.datetime):
        return raw.date() if raw.tzinfo is None else raw.astimezone(dt.UTC).date()
    if isinstance(raw, dt.date):
        return raw
    text = str(raw).strip()
    if not text:
        return None
    for fmt in formats:
        try:
            return dt.datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a calendar date, no zone
        except ValueError:
            continue
    # ISO datetimes with zone (Salesforce `2026-01-31T10:00:00.000+0000`) as a last resort
    try:
        parsed = dt.datetime.fromisoformat(text.replace("+0000", "+00:00"))
    except ValueError:
        raise ValueError(f"'{text}' is not a date in any of the formats {', '.join(formats)}") from None
    return parsed.astimezone(dt.UTC).date() if parsed.tzinfo else parsed.date()


def coerce(raw: Any, ftype: FieldType, formats: list[str] | tuple[str, ...]) -> Any:
    """Convert a raw value to the schema type; None for empty; ValueError with a readable reason otherwise."""
    if raw is None or (isinstance(raw, str) and not raw.strip() and ftype is not FieldType.BOOL):
        return None
    if ftype is FieldType.STR:
        return str(raw).strip()
    if ftype is FieldType.BOOL:
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(f"'{raw}' is not a yes/no value")
    if ftype in (FieldType.INT, FieldType.FLOAT):
        return _number(raw, ftype is FieldType.INT)
    return parse_date(raw, formats)


def _number(raw: Any, integer: bool) -> int | float:
    """A finite number within SQLite's integer range; counts and amounts never come near the bounds."""
    if isinstance(raw, bool):
        raise ValueError(f"'{raw}' is not a number")
    if isinstance(raw, int | float):
        number: float | int = raw
    else:
        text = str(raw).strip().replace(" ", "")
        if len(text) > MAX_NUMBER_CHARS:
            # int() of thousands of digits is refused (or slow); float() would quietly make it infinity
            raise ValueError(f"'{_short(text)}' ({len(text)} characters) is not a number")
        if "," in text and "." not in text:
            text = text.replace(",", ".")  # Dutch decimal comma
        elif "," in text and "." in text:
            text = (
                text.replace(".", "").replace(",", ".")
                if text.rfind(",") > text.rfind(".")
                else text.replace(",", "")
            )
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"'{_short(raw)}' is not a number") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"'{_short(raw)}' is not a finite number")
    try:
        result = int(number) if integer else float(number)
    except OverflowError:  # an int too large for a float
        raise ValueError(f"'{_short(raw)}' is out of range") from None
    # checked after the conversion: an int just below 2**63 can round up to it as a float
    if abs(result) >= MAX_NUMBER:
        raise ValueError(f"'{_short(raw)}' is out of range")
    return result


def _short(raw: Any) -> str:
    """A value as a reason may quote it: short, whatever it is."""
    try:
        text = str(raw)
    except ValueError:  # an int beyond Python's digit limit
        return f"a number of {int(raw).bit_length()} bits"
    return text if len(text) <= 40 else f"{text[:40]}…"


def checked_email(text: str) -> str:
    """The address lower-cased (the identity key's form), or ValueError when it is not an e-mail address.

    A real validator (RFC 5322/6531 syntax, no DNS): a spreadsheet formula, control characters or NUL would
    otherwise become identity keys and be written into segments.
    """
    candidate = text.strip()
    if candidate[:7].lower() == "mailto:":
        candidate = candidate[7:]
    problem = _email_problem(candidate)
    if problem is not None:
        raise ValueError(f"'{_short(text)}' is not an e-mail address ({problem})") from None
    return candidate.lower()


@functools.lru_cache(maxsize=1024)
def _email_problem(candidate: str) -> str | None:
    """Why `candidate` is not an e-mail address, or None. Cached: a row's address is checked once as a
    mapped field and once as its join key, and the validator was a fifth of a first run's CPU."""
    return email_check.problem(candidate)


def translate(target: str, raw: Any, value_map: Mapping[str, Any]) -> tuple[bool, Any]:
    """Look a raw picklist value up case-insensitively; (found, meaning)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return True, None
    key = str(raw).strip()
    if key in value_map:
        return True, value_map[key]
    folded = key.casefold()
    for candidate, meaning in value_map.items():
        if candidate.casefold() == folded:
            return True, meaning
    return False, None


def map_fields(
    raw: Mapping[str, Any],
    mapping: ObjectMapping,
    *,
    getter: Any = None,
    bad_email: Literal["reject", "drop"] = "reject",
) -> Mapped:
    """Apply `mapping` to one raw record. A value that cannot be coerced raises `RecordError` naming the field.

    `getter(raw, source_field)` reads a (possibly dotted, e.g. `Account.Name`) field; default is `raw.get`.
    `bad_email="drop"` (CRM records): an e-mail that is no address is left out (noted in `dropped`) instead of
    rejecting the record. A lead with "n/a" in its e-mail is still a lead sales works on and should carry its
    stage label; it just never becomes an identity key or a segment file's address. An enrichment row lives
    by its e-mail (the join key), so there it is a rejected row.
    """
    out = Mapped()
    get = getter or (lambda record, name: record.get(name))
    for target, value in mapping.constants.items():
        _put(out, target, value)
    for src, target, value_map, ftype in mapping.field_plan:
        raw_value = get(raw, src)
        if value_map is not None:
            found, meaning = translate(target, raw_value, value_map)
            if not found:
                out.unknown.append((target, str(raw_value)))
                continue
            raw_value = meaning
        try:
            value = coerce(raw_value, ftype, mapping.date_formats)
            if target == "email" and value is not None:
                try:
                    value = checked_email(value)
                except ValueError as exc:
                    if bad_email == "reject":
                        raise
                    out.dropped.append(f"field {src} -> {target}: {exc}")
                    value = None
        except ValueError as exc:
            raise RecordError(f"field {src} -> {target}: {exc}", code="BAD_VALUE") from None
        if value is not None:
            _put(out, target, value)
    return out


def _put(out: Mapped, target: str, value: Any) -> None:
    if target.startswith(XREF_PREFIX):
        out.extra[target] = value  # kept whole: identity resolution reads the source and object from it
    elif target.startswith("extra."):
        out.extra[target[len("extra.") :]] = value
    else:
        out.values[target] = value
