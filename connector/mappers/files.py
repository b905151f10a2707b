"""Rows of enrichment files -> `Fact`s. Pure: no file access, no clock.

A file row is either a person (it *is* someone: keys merge it with the same person elsewhere) or something
that hangs on people (enrichment signals, a contract, an opportunity) and joins them by one identity key:
the normalised e-mail or an external id. The source puts `__file__`, `__line__` and `__id__` on every raw
row so a rejection names the place it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import RecordError
from ..schema import Fact, FactKind, RecordRef, decode_value, normalise_email
from .fields import ObjectMapping, checked_email, map_fields

FILE_KEY = "__file__"
LINE_KEY = "__line__"
ID_KEY = "__id__"
ERROR_KEY = "__error__"  # same as connector.sources.file_formats.ROW_ERROR
JoinKey = Literal["email", "external_id"]
# Schema fields that identify a person; on rows that are not persons they are join columns, not values.
IDENTITY_FIELDS = ("email", "external_id")


@dataclass(frozen=True)
class FileRowSpec:
    """What the mapper needs to know about one configured file source."""

    source: str
    kind: FactKind
    join: JoinKey
    mapping: ObjectMapping  # value fields; for non-person kinds without the identity columns
    email_column: str | None
    external_id_column: str | None
    id_column: str | None = None


def get_field(raw: Mapping[str, Any], name: str) -> Any:
    """A column by name; for nested JSON rows a dotted path (`company.name`) when no such column exists."""
    if name in raw:
        return raw[name]
    value: Any = raw
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def join_value(raw: Mapping[str, Any], spec: FileRowSpec) -> str | None:
    """The row's join key as written (e-mail lower-cased), or None when empty; used for row ids."""
    column = spec.email_column if spec.join == "email" else spec.external_id_column
    text = _text(get_field(raw, column)) if column else None
    if text is None:
        return None
    if spec.join == "email":
        return normalise_email(text) or text.lower()
    return text


def row_id_base(raw: Mapping[str, Any], spec: FileRowSpec) -> str | None:
    """The id a row is known by before repeats are numbered: the id column, else the join key."""
    if spec.id_column:
        own = _text(get_field(raw, spec.id_column))
        if own is not None:
            return own
    return join_value(raw, spec)


def where(raw: Mapping[str, Any]) -> str:
    return f"{raw.get(FILE_KEY, '?')}:{raw.get(LINE_KEY, '?')}"


def map_file_row(obj: str, raw: Mapping[str, Any], spec: FileRowSpec) -> Fact:
    """Map one raw row; raise `RecordError('<file>:<line>: <reason>')` for a row that cannot be used."""
    # A rejected row comes back from state as JSON: XLSX datetimes arrive encoded ({"$dt": ...}).
    # decode_value changes only the encoded dicts: the plain cells of a CSV row skip the call
    raw = {key: decode_value(value) if isinstance(value, dict) else value for key, value in raw.items()}
    if ERROR_KEY in raw:
        raise RecordError(f"{where(raw)}: {raw[ERROR_KEY]}", code="UNREADABLE_ROW")
    row_id = raw.get(ID_KEY)
    if not row_id:
        raise RecordError(f"{where(raw)}: no row id and no {spec.join} value", code="MISSING_KEY")
    try:
        mapped = map_fields(raw, spec.mapping, getter=get_field)
    except RecordError as exc:
        raise RecordError(f"{where(raw)}: {exc}", code=exc.code) from None

    email = _email(raw, spec)
    external_id = _text(get_field(raw, spec.external_id_column)) if spec.external_id_column else None
    join = email if spec.join == "email" else external_id
    if join is None:
        column = spec.email_column if spec.join == "email" else spec.external_id_column
        raise RecordError(f"{where(raw)}: missing {spec.join} (column {column})", code="MISSING_KEY")

    ref = RecordRef(spec.source, obj, str(row_id))
    fact = Fact(ref=ref, kind=spec.kind, values=dict(mapped.values), extra=dict(mapped.extra))
    if spec.kind is FactKind.PERSON:
        if email is not None:
            fact.values["email"] = email
        if external_id is not None:
            fact.values["external_id"] = external_id
        fact.keys = [str(ref)]
        fact.keys += [f"email:{email}"] if email else []
        fact.keys += [f"ext:{external_id}"] if external_id else []
    else:
        fact.attach = [f"email:{join}" if spec.join == "email" else f"ext:{join}"]
    return fact


def _email(raw: Mapping[str, Any], spec: FileRowSpec) -> str | None:
    if not spec.email_column:
        return None
    text = _text(get_field(raw, spec.email_column))
    if text is None:
        return None
    try:
        return checked_email(text)
    except ValueError as exc:
        raise RecordError(f"{where(raw)}: column {spec.email_column}: {exc}", code="BAD_VALUE") from None
