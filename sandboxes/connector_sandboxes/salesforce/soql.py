"""A SOQL subset: parse a query, check it against the schema, and evaluate it over the store.

Supported: field lists with parent relationships (`Account.Name`, `ConvertedContact.Email`, any depth),
`COUNT()` / `COUNT(field)`, WHERE with AND / OR / NOT and parentheses, `= != <> < > <= >= IN NOT IN LIKE`,
`null`, string / number / boolean / date / datetime literals and the date literals TODAY, YESTERDAY, TOMORROW,
LAST_N_DAYS:n, NEXT_N_DAYS:n; ORDER BY with ASC/DESC and NULLS FIRST/LAST; LIMIT and OFFSET.

As in Salesforce, string comparison is case-insensitive and a filter value must match its field's type
(a quoted datetime or an unquoted string is refused), so clients that build SOQL badly fail here too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .objects import FieldDef, ObjectDef
from .store import Record, Store
from .values import (
    NUMBER_TYPES,
    STRING_TYPES,
    normalize_id,
    parse_date,
    parse_datetime,
    to_json,
    to_second,
)

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2}))(?![\w.])
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\w.:T])
  | (?P<number>-?(?:\d+(?:\.\d+)?|\.\d+))(?![\w])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>|\(|\)|,|:)
  | (?P<quote>')
    """,
    re.VERBOSE,
)
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
_DATE_KEYWORDS = {"TODAY": 0, "YESTERDAY": -1, "TOMORROW": 1}
_RANGE_KEYWORDS = {"LAST_N_DAYS", "NEXT_N_DAYS"}


class SoqlError(Exception):
    """A query Salesforce would refuse; `code` is MALFORMED_QUERY, INVALID_FIELD or INVALID_TYPE."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, number, date, datetime, op, eof
    text: str
    value: Any = None


@dataclass(frozen=True)
class FieldPath:
    """A selected or filtered field: relationship hops from the queried object, then the field."""

    hops: tuple[tuple[FieldDef, ObjectDef], ...]
    field: FieldDef
    column: str  # the dotted name as Salesforce echoes it: "Account.Name"

    def value(self, row: Record | None, store: Store) -> Any:
        for ref, _ in self.hops:
            if row is None:
                return None
            parent_id = row.get(ref.name)
            row = store.lookup(parent_id) if parent_id else None
        return row.get(self.field.name) if row is not None else None


@dataclass(frozen=True)
class Literal:
    kind: str  # string, number, bool, null, date, datetime, range
    value: Any


@dataclass
class Query:
    obj: ObjectDef
    fields: list[FieldPath] = field(default_factory=list)
    count: bool = False
    count_field: FieldPath | None = None
    count_alias: str = "expr0"
    where: Callable[[Record], bool] | None = None
    order: list[tuple[FieldPath, bool, bool]] = field(default_factory=list)  # (path, descending, nulls_first)
    limit: int | None = None
    offset: int = 0

    @property
    def aggregate(self) -> bool:
        return self.count_field is not None

    def select_rows(self, store: Store, *, include_deleted: bool) -> list[Record]:
        """The matching live rows, ordered and cut by OFFSET/LIMIT. Call with `store.lock` held."""
        rows = [r for r in store.rows(self.obj.name) if include_deleted or not r["IsDeleted"]]
        if self.where is not None:
            rows = [r for r in rows if self.where(r)]
        for path, descending, nulls_first in reversed(self.order):
            nulls = [r for r in rows if path.value(r, store) is None]
            values = [r for r in rows if path.value(r, store) is not None]
            values.sort(key=lambda r, p=path: _sort_key(p.value(r, store)), reverse=descending)  # type: ignore[misc]
            rows = nulls + values if nulls_first else values + nulls
        rows = rows[self.offset :]
        if self.limit is not None:
            rows = rows[: self.limit]
        return rows

    def json_record(self, row: Record, store: Store, version: str) -> dict[str, Any]:
        """One record as the REST query endpoint returns it, parents nested with their own attributes."""
        out: dict[str, Any] = {"attributes": _attributes(self.obj.name, row["Id"], version)}
        for path in self.fields:
            target: dict[str, Any] | None = out
            current: Record | None = row
            for ref, parent_obj in path.hops:
                assert target is not None and current is not None
                key = ref.relationship or ref.name
                parent_id = current.get(ref.name)
                current = store.lookup(parent_id) if parent_id else None
                if key not in target:
                    target[key] = (
                        None
                        if current is None
                        else {"attributes": _attributes(parent_obj.name, current["Id"], version)}
                    )
                target = target[key]
                if target is None or current is None:
                    break
            else:
                assert target is not None and current is not None
                target[path.field.name] = to_json(current.get(path.field.name))
        return out

    def columns(self) -> list[str]:
        return [p.column for p in self.fields]

    def flat_record(self, row: Record, store: Store) -> list[Any]:
        """One record as a row of typed values, in `columns()` order (Bulk API CSV)."""
        return [p.value(row, store) for p in self.fields]


def _attributes(sobject: str, record_id: str, version: str) -> dict[str, str]:
    return {"type": sobject, "url": f"/services/data/v{version}/sobjects/{sobject}/{record_id}"}


def _sort_key(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


# ----- tokenizer ----------------------------------------------------------------------------------------------
def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise SoqlError(
                "MALFORMED_QUERY", f"unexpected token: '{text[pos : pos + 20]}' at column {pos + 1}"
            )
        kind = m.lastgroup or ""
        if kind == "quote":
            value, pos = _read_string(text, m.end())
            tokens.append(Token("string", value, value))
            continue
        pos = m.end()
        if kind == "ws":
            continue
        word = m.group()
        if kind == "datetime":
            moment = parse_datetime(word)
            if moment is None:
                raise SoqlError("MALFORMED_QUERY", f"invalid datetime: {word}")
            # Salesforce compares at the second its datetimes are kept to: a literal's fraction is ignored
            tokens.append(Token(kind, word, to_second(moment)))
        elif kind == "date":
            day = parse_date(word)
            if day is None:
                raise SoqlError("MALFORMED_QUERY", f"invalid date: {word}")
            tokens.append(Token(kind, word, day))
        elif kind == "number":
            tokens.append(Token(kind, word, float(word)))
        else:
            tokens.append(Token(kind, word))
    tokens.append(Token("eof", ""))
    return tokens


def _read_string(text: str, pos: int) -> tuple[str, int]:
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == "'":
            return "".join(out), pos + 1
        if char == "\\":
            nxt = text[pos + 1 : pos + 2]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in ("%", "_"):
                out.append("\\" + nxt)  # LIKE-only escapes: the pattern compiler reads them
            else:
                raise SoqlError(
                    "MALFORMED_QUERY", f"Invalid string literal: illegal escape sequence '\\{nxt}'"
                )
            pos += 2
            continue
        out.append(char)
        pos += 1
    raise SoqlError("MALFORMED_QUERY", "unexpected end of query: unterminated string literal")


# ----- parser -------------------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str, store: Store, today: dt.date) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.store = store
        self.today = today

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.peek()
        self.pos += 1
        return tok

    def is_kw(self, *words: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok.kind == "ident" and tok.text.upper() in words

    def expect_kw(self, word: str) -> None:
        if not self.is_kw(word):
            raise self.unexpected()

    def expect_op(self, op: str) -> None:
        tok = self.next()
        if tok.kind != "op" or tok.text != op:
            self.pos -= 1
            raise self.unexpected()

    def unexpected(self) -> SoqlError:
        tok = self.peek()
        if tok.kind == "eof":
            return SoqlError("MALFORMED_QUERY", "unexpected token: <EOF>")
        return SoqlError("MALFORMED_QUERY", f"unexpected token: '{tok.text}'")

    def parse(self) -> Query:
        self.expect_kw("SELECT")
        self.pos += 1
        count, names = self.select_items()
        self.expect_kw("FROM")
        self.pos += 1
        name_tok = self.next()
        if name_tok.kind != "ident":
            self.pos -= 1
            raise self.unexpected()
        obj = self.store.object_def(name_tok.text)
        if obj is None:
            raise SoqlError(
                "INVALID_TYPE",
                f"sObject type '{name_tok.text}' is not supported. If you are attempting to use a custom object, "
                "be sure to append the '__c' after the entity name. Please reference your WSDL or the describe "
                "call for the appropriate names.",
            )
        query = Query(obj=obj)
        if count is not None:
            query.count = True
            field_name, alias = count
            query.count_field = self.path(obj, field_name) if field_name else None
            query.count_alias = alias or "expr0"
        seen: set[str] = set()
        for name in names:
            path = self.path(obj, name)
            if path.column.lower() in seen:
                raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {path.column}")
            seen.add(path.column.lower())
            query.fields.append(path)
        if self.is_kw("WHERE"):
            self.pos += 1
            query.where = self.or_expr(obj)
        if self.is_kw("GROUP", "HAVING", "WITH", "FOR", "USING"):
            raise SoqlError("MALFORMED_QUERY", f"{self.peek().text.upper()} is not supported by the sandbox")
        if self.is_kw("ORDER"):
            self.pos += 1
            self.expect_kw("BY")
            self.pos += 1
            query.order = self.order_list(obj)
        if self.is_kw("LIMIT"):
            self.pos += 1
            query.limit = self.integer()
        if self.is_kw("OFFSET"):
            self.pos += 1
            query.offset = self.integer()
        if self.peek().kind != "eof":
            raise self.unexpected()
        return query

    def integer(self) -> int:
        tok = self.next()
        if tok.kind != "number" or not tok.text.isdigit():
            self.pos -= 1
            raise self.unexpected()
        return int(tok.text)

    def select_items(self) -> tuple[tuple[str | None, str | None] | None, list[str]]:
        """The raw select list: `(count field, alias)` for COUNT, else the dotted field names."""
        if self.is_kw("COUNT") and self.peek(1).text == "(":
            self.pos += 2
            field_name = self.next().text if self.peek().kind == "ident" else None
            self.expect_op(")")
            alias = self.next().text if self.peek().kind == "ident" and not self.is_kw("FROM") else None
            return (field_name, alias), []
        names: list[str] = []
        while True:
            tok = self.next()
            if tok.kind == "op" and tok.text == "(":
                raise SoqlError("MALFORMED_QUERY", "subqueries are not supported by the sandbox")
            if tok.kind != "ident" or tok.text.upper() == "FROM":
                self.pos -= 1
                raise self.unexpected()
            names.append(tok.text)
            if not (self.peek().kind == "op" and self.peek().text == ","):
                return None, names
            self.pos += 1

    def path(self, obj: ObjectDef, dotted: str) -> FieldPath:
        parts = dotted.split(".")
        if len(parts) > 1 and parts[0].lower() == obj.name.lower() and obj.relationship(parts[0]) is None:
            parts = parts[1:]
        hops: list[tuple[FieldDef, ObjectDef]] = []
        current = obj
        names: list[str] = []
        for part in parts[:-1]:
            ref = current.relationship(part)
            target = self.store.object_def(ref.reference_to) if ref and ref.reference_to else None
            if ref is None or target is None:
                raise SoqlError(
                    "INVALID_FIELD",
                    f"Didn't understand relationship '{part}' in field path. If you are attempting to use a "
                    "custom relationship, be sure to append the '__r' after the custom relationship name. "
                    "Please reference your WSDL or the describe call for the appropriate names.",
                )
            hops.append((ref, target))
            names.append(ref.relationship or ref.name)
            current = target
        fd = current.field(parts[-1])
        if fd is None:
            raise SoqlError(
                "INVALID_FIELD",
                f"No such column '{parts[-1]}' on entity '{current.name}'. If you are attempting to use a custom "
                "field, be sure to append the '__c' after the custom field name. Please reference your WSDL or "
                "the describe call for the appropriate names.",
            )
        names.append(fd.name)
        return FieldPath(hops=tuple(hops), field=fd, column=".".join(names))

    def order_list(self, obj: ObjectDef) -> list[tuple[FieldPath, bool, bool]]:
        items = []
        while True:
            tok = self.next()
            if tok.kind != "ident":
                self.pos -= 1
                raise self.unexpected()
            path = self.path(obj, tok.text)
            descending = False
            if self.is_kw("ASC", "DESC"):
                descending = self.next().text.upper() == "DESC"
            nulls_first = not descending
            if self.is_kw("NULLS"):
                self.pos += 1
                if not self.is_kw("FIRST", "LAST"):
                    raise self.unexpected()
                nulls_first = self.next().text.upper() == "FIRST"
            items.append((path, descending, nulls_first))
            if not (self.peek().kind == "op" and self.peek().text == ","):
                return items
            self.pos += 1

    def or_expr(self, obj: ObjectDef) -> Callable[[Record], bool]:
        parts = [self.and_expr(obj)]
        while self.is_kw("OR"):
            self.pos += 1
            parts.append(self.and_expr(obj))
        if len(parts) == 1:
            return parts[0]
        return lambda r: any(p(r) for p in parts)

    def and_expr(self, obj: ObjectDef) -> Callable[[Record], bool]:
        parts = [self.not_expr(obj)]
        while self.is_kw("AND"):
            self.pos += 1
            parts.append(self.not_expr(obj))
        if len(parts) == 1:
            return parts[0]
        return lambda r: all(p(r) for p in parts)

    def not_expr(self, obj: ObjectDef) -> Callable[[Record], bool]:
        if self.is_kw("NOT"):
            self.pos += 1
            inner = self.not_expr(obj)
            return lambda r: not inner(r)
        tok = self.peek()
        if tok.kind == "op" and tok.text == "(":
            self.pos += 1
            inner = self.or_expr(obj)
            self.expect_op(")")
            return inner
        return self.condition(obj)

    def condition(self, obj: ObjectDef) -> Callable[[Record], bool]:
        tok = self.next()
        if tok.kind != "ident":
            self.pos -= 1
            raise self.unexpected()
        path = self.path(obj, tok.text)
        negate = False
        if self.is_kw("NOT") and self.is_kw("IN", offset=1):
            self.pos += 1
            negate = True
        if self.is_kw("IN"):
            self.pos += 1
            self.expect_op("(")
            if self.is_kw("SELECT"):
                raise SoqlError("MALFORMED_QUERY", "semi-join subqueries are not supported by the sandbox")
            literals = [self.literal(path)]
            while self.peek().text == ",":
                self.pos += 1
                literals.append(self.literal(path))
            self.expect_op(")")
            return _in_predicate(path, literals, negate, self.store)
        if self.is_kw("LIKE"):
            self.pos += 1
            lit = self.literal(path)
            if lit.kind != "string" or path.field.type not in STRING_TYPES:
                raise SoqlError("MALFORMED_QUERY", f"invalid operator on field '{path.column}': LIKE")
            return _like_predicate(path, lit.value, self.store)
        op = self.next()
        if op.kind != "op" or op.text not in ("=", "!=", "<>", "<", ">", "<=", ">="):
            self.pos -= 1
            raise self.unexpected()
        return _compare_predicate(path, "!=" if op.text == "<>" else op.text, self.literal(path), self.store)

    def literal(self, path: FieldPath) -> Literal:
        tok = self.next()
        kind = path.field.type
        column = path.column
        if tok.kind == "ident" and tok.text.upper() == "NULL":
            return Literal("null", None)
        if tok.kind == "ident" and tok.text.upper() in ("TRUE", "FALSE"):
            if kind != "boolean":
                raise _type_error(column, kind)
            return Literal("bool", tok.text.upper() == "TRUE")
        if tok.kind == "ident" and (
            tok.text.upper() in _DATE_KEYWORDS or tok.text.upper() in _RANGE_KEYWORDS
        ):
            if kind not in ("date", "datetime"):
                raise _type_error(column, kind)
            return Literal("range", self.date_range(tok.text.upper()))
        if tok.kind == "string":
            if kind not in STRING_TYPES:
                raise _type_error(column, kind)
            value = tok.value
            if kind in ("id", "reference"):
                value = normalize_id(value) or value
            return Literal("string", value)
        if tok.kind == "number":
            if kind not in NUMBER_TYPES:
                raise _type_error(column, kind)
            return Literal("number", tok.value)
        if tok.kind == "date":
            if kind != "date":
                raise _type_error(column, kind)
            return Literal("date", tok.value)
        if tok.kind == "datetime":
            if kind != "datetime":
                raise _type_error(column, kind)
            return Literal("datetime", tok.value)
        self.pos -= 1
        raise self.unexpected()

    def date_range(self, word: str) -> tuple[dt.date, dt.date]:
        """The half-open day range [start, end) a date literal stands for."""
        if word in _DATE_KEYWORDS:
            day = self.today + dt.timedelta(days=_DATE_KEYWORDS[word])
            return day, day + dt.timedelta(days=1)
        self.expect_op(":")
        n = self.integer()
        if word == "LAST_N_DAYS":
            return self.today - dt.timedelta(days=n - 1), self.today + dt.timedelta(days=1)
        return self.today + dt.timedelta(days=1), self.today + dt.timedelta(days=n + 1)


def _type_error(column: str, kind: str) -> SoqlError:
    expected = {"datetime": "dateTime", "reference": "id", "currency": "double", "percent": "double"}.get(
        kind, kind
    )
    return SoqlError(
        "MALFORMED_QUERY",
        f"value of filter criterion for field '{column}' must be of type {expected} and should not be enclosed "
        "in quotes"
        if kind not in STRING_TYPES
        else f"value of filter criterion for field '{column}' must be of type {expected} and should be enclosed in quotes",
    )


def _normalize(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _as_comparable(value: Any, lit: Literal) -> Any:
    if lit.kind == "datetime" and isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return _normalize(value)


def _compare_predicate(path: FieldPath, op: str, lit: Literal, store: Store) -> Callable[[Record], bool]:
    if lit.kind == "null":
        if op not in ("=", "!="):
            raise SoqlError("MALFORMED_QUERY", f"invalid operator on null: {op}")
        want_null = op == "="
        return lambda r: (path.value(r, store) is None) == want_null
    if lit.kind == "range":
        start, end = lit.value

        def in_range(r: Record) -> bool:
            value = path.value(r, store)
            if value is None:
                return op == "!="
            day = value.date() if isinstance(value, dt.datetime) else value
            return {
                "=": start <= day < end,
                "!=": not start <= day < end,
                "<": day < start,
                "<=": day < end,
                ">": day >= end,
                ">=": day >= start,
            }[op]

        return in_range
    target = _normalize(lit.value)
    compare: Callable[[Any, Any], bool] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
    }[op]

    def predicate(r: Record) -> bool:
        value = path.value(r, store)
        if value is None:
            return op == "!="
        return compare(_as_comparable(value, lit), target)

    return predicate


def _in_predicate(
    path: FieldPath, literals: list[Literal], negate: bool, store: Store
) -> Callable[[Record], bool]:
    if any(lit.kind == "range" for lit in literals):
        raise SoqlError("MALFORMED_QUERY", "date literals are not supported in IN lists by the sandbox")
    wanted = {_normalize(lit.value) for lit in literals if lit.kind != "null"}
    with_null = any(lit.kind == "null" for lit in literals)
    sample = next((lit for lit in literals if lit.kind != "null"), Literal("null", None))

    def predicate(r: Record) -> bool:
        value = path.value(r, store)
        hit = with_null if value is None else _as_comparable(value, sample) in wanted
        return hit != negate

    return predicate


def _like_predicate(path: FieldPath, pattern: str, store: Store) -> Callable[[Record], bool]:
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    regex = re.compile("".join(parts), re.IGNORECASE | re.DOTALL)

    def predicate(r: Record) -> bool:
        value = path.value(r, store)
        return value is not None and regex.fullmatch(str(value)) is not None

    return predicate


def parse(text: str, store: Store, *, today: dt.date | None = None) -> Query:
    """Parse and check `text` against the store's schema (raises `SoqlError`)."""
    if not text or not text.strip():
        raise SoqlError("MALFORMED_QUERY", "unexpected token: <EOF>")
    return _Parser(text, store, today or dt.datetime.now(dt.UTC).date()).parse()
