"""Compiled conditions (a closure per node, the operator chosen once) decide exactly as the plain interpreter
they replaced: the same verdict, the same trail of matched signals, the same errors, on random conditions
and random values."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from connector.conditions import (
    COMPARE,
    AllCondition,
    AnyCondition,
    Condition,
    FieldCondition,
    NotCondition,
    compile_condition,
    describe,
    evaluate,
    parse_date_operand,
)

CONDITION: TypeAdapter[Any] = TypeAdapter(Condition)
AS_OF = dt.date(2026, 11, 1)
FIELDS = (
    "lead_status",
    "contract_end",
    "opportunity_amount",
    "web_visits",
    "converted",
    "sources",
    "extra.x",
)


# ---- the interpreter as it was before compilation: the reference --------------------------------------------
def reference(cond: Any, get: Any, as_of: dt.date, matched: list[str] | None) -> bool:
    if isinstance(cond, AllCondition):
        trail: list[str] = []
        for child in cond.all:
            if not reference(child, get, as_of, trail):
                return False
        if matched is not None:
            matched.extend(trail)
        return True
    if isinstance(cond, AnyCondition):
        for child in cond.any:
            trail = []
            if reference(child, get, as_of, trail):
                if matched is not None:
                    matched.extend(trail)
                return True
        return False
    if isinstance(cond, NotCondition):
        if reference(cond.not_, get, as_of, None):
            return False
        if matched is not None:
            matched.append(f"not({describe(cond.not_)})")
        return True
    assert isinstance(cond, FieldCondition)
    value = get(cond.field)
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    held = _reference_test(cond, value, as_of)
    if held and matched is not None:
        matched.append(f"{cond.field}={_show(value)} ({describe(cond)})")
    return held


def _show(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ",".join(sorted(str(v) for v in value)) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def _norm(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _reference_test(cond: FieldCondition, value: Any, as_of: dt.date) -> bool:
    op = cond.operator
    operand = getattr(cond, op)
    members = frozenset(_norm(v) for v in (operand or [])) if op in ("in_", "not_in") else frozenset()
    if op == "present":
        is_present = value is not None and value != "" and value != []
        return is_present is operand
    if op == "within_days":
        if not isinstance(value, dt.date) or cond.within_days is None:
            return False
        delta = (value - as_of).days
        return cond.within_days.start <= delta <= cond.within_days.end
    if op == "contains":
        if isinstance(value, list | tuple | set | frozenset):
            return _norm(operand) in {_norm(v) for v in value}
        return isinstance(value, str) and _norm(str(operand)) in _norm(value)
    if value is None:
        return op in ("ne", "not_in")
    if isinstance(value, dt.date) and op in ("eq", "ne", "in_", "not_in"):
        operands = [operand] if op in ("eq", "ne") else list(operand or [])
        dates = {parse_date_operand(v, as_of) for v in operands}
        return (value in dates) is (op in ("eq", "in_"))
    if op == "eq":
        return bool(_norm(value) == _norm(operand))
    if op == "ne":
        return bool(_norm(value) != _norm(operand))
    if op == "in_":
        return _norm(value) in members
    if op == "not_in":
        return _norm(value) not in members
    bound = parse_date_operand(operand, as_of) if isinstance(value, dt.date) else operand
    try:
        return COMPARE[op](value, bound)
    except TypeError:
        return False


# ---- generated conditions and values ------------------------------------------------------------------------
scalars = st.one_of(
    st.none(),
    st.sampled_from(
        ["qualified", "QUALIFIED", "new", "", "today", "today+30", "today-365", "2026-11-15", "x"]
    ),
    st.integers(-5, 500),
    st.floats(-10, 1e6, allow_nan=False),
    st.booleans(),
    st.dates(dt.date(2025, 1, 1), dt.date(2028, 1, 1)),
)
values = st.one_of(
    scalars,
    st.datetimes(dt.datetime(2025, 1, 1), dt.datetime(2028, 1, 1)),
    st.datetimes(dt.datetime(2025, 1, 1), dt.datetime(2028, 1, 1), timezones=st.just(dt.UTC)),
    st.lists(st.sampled_from(["crm", "CRM", "files", "sf_prod"]), max_size=3),
)


def _leaf(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from(FIELDS))
    op = draw(st.sampled_from(["eq", "ne", "in", "not_in", "present", "gt", "gte", "lt", "lte", "contains"]))
    if op == "present":
        return {"field": field, op: draw(st.booleans())}
    if op in ("in", "not_in"):
        return {"field": field, op: draw(st.lists(scalars.filter(lambda v: v is not None), max_size=3))}
    if draw(st.booleans()) and field == "contract_end":
        window = sorted(draw(st.lists(st.integers(-400, 400), min_size=2, max_size=2)))
        return {"field": field, "within_days": {"from": window[0], "to": window[1]}}
    return {"field": field, op: draw(scalars)}


@st.composite
def conditions(draw: st.DrawFn, depth: int = 3) -> dict[str, Any]:
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        return _leaf(draw)
    kind = draw(st.sampled_from(["all", "any", "not"]))
    if kind == "not":
        return {"not": draw(conditions(depth - 1))}
    return {kind: draw(st.lists(conditions(depth - 1), min_size=1, max_size=3))}


def _outcome(run: Any) -> tuple[str, Any]:
    try:
        return "value", run()
    except (TypeError, ValueError) as exc:  # an unhashable value in `in`, a date compared with "x"
        return "error", type(exc).__name__


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions(), st.fixed_dictionaries({name: values for name in FIELDS}), st.booleans())
def test_compiled_conditions_decide_as_the_interpreter(
    data: dict[str, Any], person: dict[str, Any], with_trail: bool
) -> None:
    try:
        cond = CONDITION.validate_python(data)
    except ValidationError:
        return  # not a condition a config could hold (an operand of the wrong type): nothing to compare
    compiled = compile_condition(cond)
    new_trail: list[str] | None = [] if with_trail else None
    old_trail: list[str] | None = [] if with_trail else None
    new = _outcome(lambda: evaluate(compiled, person.get, AS_OF, new_trail))
    old = _outcome(lambda: reference(cond, person.get, AS_OF, old_trail))
    assert new == old
    assert new_trail == old_trail
    # the nodes compare as the data they hold (the closures are left out), so equal conditions stay equal
    assert compile_condition(CONDITION.validate_python(data)) == compiled


def test_a_compiled_node_is_evaluated_without_compiling_again() -> None:
    node = compile_condition(CONDITION.validate_python({"field": "lead_status", "eq": "new"}))
    trail: list[str] = []
    assert node.check({"lead_status": "NEW"}.get, AS_OF, trail) is True
    assert trail == ["lead_status='NEW' (lead_status == 'new')"]
