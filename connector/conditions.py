"""The small condition vocabulary shared by stage rules and segments.

A condition is a YAML mapping: a field test (`{field: lead_status, eq: qualified_out}`) or a combination
(`{all: [...]}`, `{any: [...]}`, `{not: {...}}`). Operators: eq, ne, in, not_in, present, gt, gte, lt, lte,
contains, and within_days (a date window around the run's as-of date). Comparison operands for date fields may
be an ISO date or `today`, `today+30`, `today-365`, always resolved against the as-of date passed in, never the
clock. There is no `eval` and no expression language: only these shapes validate.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, PrivateAttr, Tag, field_validator, model_validator

from .model import StrictModel
from .schema import FieldType, all_condition_fields
from .suggest import did_you_mean

RELATIVE_DAY = re.compile(r"^today\s*(?:([+-])\s*(\d{1,5}))?$")
COMPARISONS = ("eq", "ne", "in_", "not_in", "present", "gt", "gte", "lt", "lte", "contains", "within_days")


class DayWindow(StrictModel):
    """Inclusive window in days relative to as-of: `{from: 0, to: 90}` means today .. today+90."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    start: int = Field(alias="from")
    end: int = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> DayWindow:
        if self.start > self.end:
            raise ValueError(f"window from {self.start} is after to {self.end}")
        return self


class FieldCondition(StrictModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    field: str
    eq: Any = None
    ne: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    present: bool | None = None
    gt: Any = None
    gte: Any = None
    lt: Any = None
    lte: Any = None
    contains: Any = None
    within_days: DayWindow | None = None
    # derived once at validation: conditions are evaluated for every person on every run
    _operator: str = PrivateAttr(default="")
    _members: frozenset[Any] = PrivateAttr(default=frozenset())

    @field_validator("field")
    @classmethod
    def _known_field(cls, name: str) -> str:
        if name.startswith("extra.") and len(name) > len("extra."):
            return name
        known = all_condition_fields()
        if name not in known:
            hint = did_you_mean(name, known)
            if hint:
                raise ValueError(f"unknown field '{name}'{hint}")
            raise ValueError(f"unknown field '{name}' (known: {', '.join(sorted(known))}, or extra.<name>)")
        return name

    @model_validator(mode="after")
    def _one_operator(self) -> FieldCondition:
        used = [op for op in COMPARISONS if op in self.model_fields_set]
        if len(used) != 1:
            names = ", ".join(op.rstrip("_") for op in COMPARISONS)
            raise ValueError(f"give exactly one operator for field '{self.field}' (one of: {names})")
        ftype = field_type(self.field)
        op = used[0]
        self._operator = op
        operand = getattr(self, op)
        for item in operand if isinstance(operand, list) else [operand]:
            # YAML's .nan / .inf: every comparison with NaN is false, so the condition would silently never hold
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(
                    f"{op.rstrip('_')} on field '{self.field}' needs a finite number, got {item!r}"
                )
        if op in ("in_", "not_in"):
            self._members = frozenset(_norm(v) for v in (getattr(self, op) or []))
        if op == "within_days" and ftype is not FieldType.DATE:
            raise ValueError(f"within_days needs a date field; '{self.field}' is {ftype.value}")
        if ftype is FieldType.DATE and op in ("eq", "ne", "in_", "not_in"):
            operand = getattr(self, op)
            for item in operand if isinstance(operand, list) else [operand]:
                parse_date_operand(item, dt.date(2000, 1, 1))
        if op in ("gt", "gte", "lt", "lte"):
            operand = getattr(self, op)
            if ftype is FieldType.DATE:
                parse_date_operand(operand, dt.date(2000, 1, 1))  # raises ValueError with a readable reason
            elif ftype in (FieldType.INT, FieldType.FLOAT) and not isinstance(operand, int | float):
                raise ValueError(f"{op} on number field '{self.field}' needs a number, got {operand!r}")
        return self

    @property
    def operator(self) -> str:
        return self._operator


class AllCondition(StrictModel):
    all: list[Condition] = Field(min_length=1)


class AnyCondition(StrictModel):
    any: list[Condition] = Field(min_length=1)


class NotCondition(StrictModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    not_: Condition = Field(alias="not")


def _condition_tag(value: Any) -> str | None:
    if isinstance(value, Mapping):
        for tag in ("all", "any", "not", "field"):
            if tag in value:
                return tag
        return None
    if isinstance(value, FieldCondition):
        return "field"
    if isinstance(value, AllCondition):
        return "all"
    if isinstance(value, AnyCondition):
        return "any"
    if isinstance(value, NotCondition):
        return "not"
    return None


Condition = Annotated[
    Annotated[FieldCondition, Tag("field")]
    | Annotated[AllCondition, Tag("all")]
    | Annotated[AnyCondition, Tag("any")]
    | Annotated[NotCondition, Tag("not")],
    Discriminator(
        _condition_tag,
        custom_error_type="condition",
        custom_error_message="a condition needs one of the keys: field, all, any, not",
    ),
]
AllCondition.model_rebuild()
AnyCondition.model_rebuild()
NotCondition.model_rebuild()


def field_type(name: str) -> FieldType:
    if name.startswith("extra."):
        return FieldType.STR
    return all_condition_fields()[name]


def parse_date_operand(value: Any, as_of: dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip().lower()
    match = RELATIVE_DAY.match(text)
    if match:
        sign, days = match.groups()
        offset = int(days or 0) * (-1 if sign == "-" else 1)
        return as_of + dt.timedelta(days=offset)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{value}' is not a date (use YYYY-MM-DD, today, today+N or today-N)") from None


# ---- evaluation -------------------------------------------------------------------------------------------
# Conditions are compiled once into plain nodes, each carrying a closure that evaluates it: every rule and
# segment is evaluated for every person on every run, and reading attributes through pydantic, or choosing
# the operator again per evaluation, cost more than the tests themselves. The nodes stay plain data for the
# code that reads a condition's shape (incremental.py's date offsets).

Getter = Callable[[str], Any]
Check = Callable[[Getter, dt.date, "list[str] | None"], bool]
Test = Callable[[Any, dt.date], bool]
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


@dataclass(frozen=True, slots=True)
class Leaf:
    field: str
    op: str
    operand: Any
    members: frozenset[Any]
    window: tuple[int, int] | None
    text: str
    check: Check = dataclass_field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Group:
    every: bool  # all (True) or any (False)
    children: tuple[Node, ...]
    check: Check = dataclass_field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Negation:
    child: Node
    text: str
    check: Check = dataclass_field(compare=False, repr=False)


Node = Leaf | Group | Negation


def compile_condition(cond: Any) -> Node:
    if isinstance(cond, Leaf | Group | Negation):
        return cond
    if isinstance(cond, AllCondition | AnyCondition):
        every = isinstance(cond, AllCondition)
        parts = cond.all if isinstance(cond, AllCondition) else cond.any
        children = tuple(compile_condition(c) for c in parts)
        return Group(every, children, _group_check(every, tuple(c.check for c in children)))
    if isinstance(cond, NotCondition):
        child = compile_condition(cond.not_)
        text = describe(cond.not_)
        return Negation(child, text, _negation_check(child.check, text))
    assert isinstance(cond, FieldCondition)
    op = cond.operator
    operand = getattr(cond, op)
    window = (cond.within_days.start, cond.within_days.end) if cond.within_days is not None else None
    text = describe(cond)
    check = _leaf_check(cond.field, text, _tester(op, operand, cond._members, window))
    return Leaf(cond.field, op, operand, cond._members, window, text, check)


def evaluate(cond: Any, get: Getter, as_of: dt.date, matched: list[str] | None = None) -> bool:
    """True when `cond` holds for the values `get` returns; appends a description of each leaf that held."""
    return compile_condition(cond).check(get, as_of, matched)


def _group_check(every: bool, children: tuple[Check, ...]) -> Check:
    if every:

        def all_hold(get: Getter, as_of: dt.date, matched: list[str] | None) -> bool:
            # the leaves that held are reported only when every one of them did
            trail: list[str] | None = [] if matched is not None else None
            for child in children:
                if not child(get, as_of, trail):
                    return False
            if matched is not None and trail:
                matched.extend(trail)
            return True

        return all_hold

    def any_holds(get: Getter, as_of: dt.date, matched: list[str] | None) -> bool:
        for child in children:
            trail: list[str] | None = [] if matched is not None else None
            if child(get, as_of, trail):
                if matched is not None and trail:
                    matched.extend(trail)
                return True
        return False

    return any_holds


def _negation_check(child: Check, text: str) -> Check:
    def negated(get: Getter, as_of: dt.date, matched: list[str] | None) -> bool:
        if child(get, as_of, None):
            return False
        if matched is not None:
            matched.append(f"not({text})")
        return True

    return negated


def _leaf_check(name: str, text: str, test: Test) -> Check:
    def leaf(get: Getter, as_of: dt.date, matched: list[str] | None) -> bool:
        value = get(name)
        if isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
        if not test(value, as_of):
            return False
        if matched is not None:
            matched.append(f"{name}={_show(value)} ({text})")
        return True

    return leaf


def _show(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ",".join(sorted(str(v) for v in value)) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def _norm(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _tester(op: str, operand: Any, members: frozenset[Any], window: tuple[int, int] | None) -> Test:
    """The test of one operator, chosen once: (value, as_of) -> held."""
    if op == "present":
        return lambda value, as_of: (value is not None and value != "" and value != []) is operand
    if op == "within_days":

        def within(value: Any, as_of: dt.date) -> bool:
            if not isinstance(value, dt.date) or window is None:
                return False
            return window[0] <= (value - as_of).days <= window[1]

        return within
    if op == "contains":
        wanted, wanted_text = _norm(operand), _norm(str(operand))

        def contains(value: Any, as_of: dt.date) -> bool:
            if isinstance(value, list | tuple | set | frozenset):
                return wanted in {_norm(v) for v in value}
            return isinstance(value, str) and wanted_text in _norm(value)

        return contains
    if op in ("eq", "ne", "in_", "not_in"):
        return _equality(op, operand, members)
    compare = COMPARE[op]

    def ordered(value: Any, as_of: dt.date) -> bool:
        if value is None:
            return False  # a missing value satisfies only the negative operators
        bound = parse_date_operand(operand, as_of) if isinstance(value, dt.date) else operand
        try:
            return compare(value, bound)
        except TypeError:
            return False

    return ordered


def _equality(op: str, operand: Any, members: frozenset[Any]) -> Test:
    positive = op in ("eq", "in_")
    listed = [operand] if op in ("eq", "ne") else list(operand or [])
    single = _norm(operand)

    def dates_test(value: dt.date, as_of: dt.date) -> bool:
        # date operands may be relative (`today+30`): resolved against this run's as-of date
        return (value in {parse_date_operand(v, as_of) for v in listed}) is positive

    if op == "eq":

        def equal(value: Any, as_of: dt.date) -> bool:
            if value is None:
                return False
            if isinstance(value, dt.date):
                return dates_test(value, as_of)
            return bool(_norm(value) == single)

        return equal
    if op == "ne":

        def unequal(value: Any, as_of: dt.date) -> bool:
            if value is None:
                return True  # a missing value satisfies only the negative operators
            if isinstance(value, dt.date):
                return dates_test(value, as_of)
            return bool(_norm(value) != single)

        return unequal

    def member(value: Any, as_of: dt.date) -> bool:
        if value is None:
            return not positive
        if isinstance(value, dt.date):
            return dates_test(value, as_of)
        return (_norm(value) in members) is positive

    return member


def describe(cond: Any) -> str:
    """A compact, readable form of a condition, for reasons and `explain`."""
    if isinstance(cond, AllCondition):
        return "all(" + ", ".join(describe(c) for c in cond.all) + ")"
    if isinstance(cond, AnyCondition):
        return "any(" + ", ".join(describe(c) for c in cond.any) + ")"
    if isinstance(cond, NotCondition):
        return "not(" + describe(cond.not_) + ")"
    op = cond.operator
    if op == "within_days":
        w = cond.within_days
        return f"{cond.field} within today{w.start:+d}..today{w.end:+d}"
    symbol = {
        "eq": "==",
        "ne": "!=",
        "in_": "in",
        "not_in": "not in",
        "gt": ">",
        "gte": ">=",
        "lt": "<",
        "lte": "<=",
        "contains": "contains",
        "present": "present",
    }[op]
    return (
        f"{cond.field} {symbol} {getattr(cond, op)!r}"
        if op != "present"
        else (f"{cond.field} {'present' if cond.present else 'absent'}")
    )


ConditionKind = Literal["field", "all", "any", "not"]
