"""The condition vocabulary: every operator, missing values, relative dates, and validation errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from spine_helpers import AS_OF, days

from connector.conditions import Condition, describe, evaluate, parse_date_operand
from connector.schema import Person

CONDITION: TypeAdapter[Any] = TypeAdapter(Condition)


def cond(data: dict[str, Any]) -> Any:
    return CONDITION.validate_python(data)


def holds(data: dict[str, Any], values: dict[str, Any], as_of: dt.date = AS_OF) -> bool:
    return evaluate(cond(data), values.get, as_of)


def errors(data: Any) -> list[str]:
    with pytest.raises(ValidationError) as info:
        CONDITION.validate_python(data)
    return [e["msg"] for e in info.value.errors()]


# ---- operators --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ({"field": "lead_status", "eq": "qualified"}, "qualified", True),
        ({"field": "lead_status", "eq": "qualified"}, "QUALIFIED", True),
        ({"field": "lead_status", "eq": "Qualified"}, "qualified", True),
        ({"field": "lead_status", "eq": "qualified"}, "working", False),
        ({"field": "lead_status", "ne": "qualified"}, "Qualified", False),
        ({"field": "lead_status", "ne": "qualified"}, "working", True),
        ({"field": "lead_status", "in": ["working", "Qualified"]}, "qualified", True),
        ({"field": "lead_status", "in": ["working", "qualified"]}, "new", False),
        ({"field": "lead_status", "not_in": ["working", "qualified"]}, "WORKING", False),
        ({"field": "lead_status", "not_in": ["working", "qualified"]}, "new", True),
        ({"field": "opportunity_won", "eq": True}, True, True),
        ({"field": "opportunity_won", "eq": True}, False, False),
        ({"field": "web_visits", "gt": 3}, 3, False),
        ({"field": "web_visits", "gt": 3}, 4, True),
        ({"field": "web_visits", "gte": 3}, 3, True),
        ({"field": "web_visits", "gte": 3}, 2, False),
        ({"field": "web_visits", "lt": 3}, 2, True),
        ({"field": "web_visits", "lt": 3}, 3, False),
        ({"field": "web_visits", "lte": 3}, 3, True),
        ({"field": "web_visits", "lte": 3}, 4, False),
        ({"field": "review_score", "gte": 8.5}, 9, True),
        ({"field": "company", "contains": "acme"}, "ACME Holding", True),
        ({"field": "company", "contains": "acme"}, "Globex", False),
        ({"field": "sources", "contains": "SF_prod"}, ["sf_prod", "files"], True),
        ({"field": "sources", "contains": "vtiger"}, ["sf_prod", "files"], False),
        ({"field": "email", "present": True}, "a@b.example", True),
        ({"field": "email", "present": True}, "", False),
        ({"field": "email", "present": False}, "", True),
        ({"field": "sources", "present": False}, [], True),
        ({"field": "email", "present": False}, "a@b.example", False),
    ],
)
def test_operator(condition: dict[str, Any], value: Any, expected: bool) -> None:
    assert holds(condition, {condition["field"]: value}) is expected


def test_extra_fields_are_read_from_the_person_extras() -> None:
    person = Person(key="P1", extra={"segment_code": "A1"})
    assert evaluate(cond({"field": "extra.segment_code", "eq": "a1"}), person.get, AS_OF) is True
    assert evaluate(cond({"field": "extra.other", "present": False}), person.get, AS_OF) is True


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "lead_status", "eq": "qualified"}, False),
        ({"field": "lead_status", "ne": "qualified"}, True),
        ({"field": "lead_status", "in": ["qualified"]}, False),
        ({"field": "lead_status", "not_in": ["qualified"]}, True),
        ({"field": "web_visits", "gt": 0}, False),
        ({"field": "web_visits", "lte": 0}, False),
        ({"field": "company", "contains": "a"}, False),
        ({"field": "email", "present": True}, False),
        ({"field": "email", "present": False}, True),
        ({"field": "contract_end", "within_days": {"from": -1000, "to": 1000}}, False),
        ({"field": "contract_end", "lt": "today"}, False),
    ],
)
def test_missing_values_satisfy_only_negative_tests(condition: dict[str, Any], expected: bool) -> None:
    assert holds(condition, {}) is expected


def test_comparison_between_incompatible_types_is_false_not_an_error() -> None:
    assert holds({"field": "web_visits", "gt": 3}, {"web_visits": "many"}) is False


# ---- dates relative to as-of ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", AS_OF),
        ("today+30", days(30)),
        ("today - 365", days(-365)),
        ("TODAY+0", AS_OF),
        ("2027-01-31", dt.date(2027, 1, 31)),
        (dt.date(2027, 1, 31), dt.date(2027, 1, 31)),
        (dt.datetime(2027, 1, 31, 12, tzinfo=dt.UTC), dt.date(2027, 1, 31)),
    ],
)
def test_date_operands(text: Any, expected: dt.date) -> None:
    assert parse_date_operand(text, AS_OF) == expected


@pytest.mark.parametrize("text", ["tomorrow", "today+", "today*2", "31-12-2026", "today+123456"])
def test_bad_date_operands(text: str) -> None:
    with pytest.raises(ValueError, match="is not a date"):
        parse_date_operand(text, AS_OF)


@pytest.mark.parametrize(("offset", "expected"), [(29, True), (30, True), (31, False)])
def test_relative_operand_is_resolved_against_the_as_of_date(offset: int, expected: bool) -> None:
    condition = {"field": "contract_end", "lte": "today+30"}
    assert holds(condition, {"contract_end": days(offset)}) is expected
    # the same date against a later as-of: the window moved
    assert holds(condition, {"contract_end": days(offset)}, AS_OF + dt.timedelta(days=5)) is True


def test_iso_date_operand() -> None:
    assert holds({"field": "won_date", "lt": "2026-01-01"}, {"won_date": dt.date(2025, 12, 31)})
    assert not holds({"field": "won_date", "lt": "2026-01-01"}, {"won_date": dt.date(2026, 1, 1)})


@pytest.mark.parametrize(("offset", "expected"), [(-31, False), (-30, True), (0, True), (1, False)])
def test_within_days_is_inclusive(offset: int, expected: bool) -> None:
    condition = {"field": "last_visit", "within_days": {"from": -30, "to": 0}}
    assert holds(condition, {"last_visit": days(offset)}) is expected


def test_within_days_on_a_non_date_value_is_false() -> None:
    condition = {"field": "last_visit", "within_days": {"from": -30, "to": 0}}
    assert holds(condition, {"last_visit": "2026-11-20"}) is False


# ---- combinations and the matched trail -------------------------------------------------------------------


def test_all_any_not_and_the_signals_that_matched() -> None:
    condition = cond(
        {
            "all": [
                {"field": "opportunity_won", "eq": True},
                {"any": [{"field": "web_visits", "gte": 3}, {"field": "newsletter", "eq": True}]},
                {"not": {"field": "lead_status", "eq": "qualified_out"}},
            ]
        }
    )
    values = {"opportunity_won": True, "newsletter": True, "lead_status": "working", "web_visits": 1}
    matched: list[str] = []
    assert evaluate(condition, values.get, AS_OF, matched) is True
    assert matched == [
        "opportunity_won=True (opportunity_won == True)",
        "newsletter=True (newsletter == True)",
        "not(lead_status == 'qualified_out')",
    ]
    failed: list[str] = []
    assert evaluate(condition, {**values, "lead_status": "qualified_out"}.get, AS_OF, failed) is False
    assert failed == []  # a condition that does not hold leaves no partial trail


def test_describe_is_readable() -> None:
    text = describe(
        cond(
            {
                "any": [
                    {"field": "contract_end", "within_days": {"from": 0, "to": 90}},
                    {"field": "email", "present": False},
                    {"field": "lead_status", "in": ["working"]},
                ]
            }
        )
    )
    assert text == "any(contract_end within today+0..today+90, email absent, lead_status in ['working'])"


# ---- validation -------------------------------------------------------------------------------------------


def test_unknown_field() -> None:
    (msg,) = errors({"field": "lead_stauts", "eq": "x"})
    assert "unknown field 'lead_stauts'" in msg


def test_two_operators() -> None:
    (msg,) = errors({"field": "lead_status", "eq": "x", "ne": "y"})
    assert "give exactly one operator for field 'lead_status'" in msg


def test_no_operator() -> None:
    (msg,) = errors({"field": "lead_status"})
    assert "exactly one operator" in msg


def test_within_days_on_a_non_date_field() -> None:
    (msg,) = errors({"field": "web_visits", "within_days": {"from": 0, "to": 3}})
    assert "within_days needs a date field; 'web_visits' is int" in msg


def test_window_out_of_order() -> None:
    (msg,) = errors({"field": "contract_end", "within_days": {"from": 5, "to": 1}})
    assert "window from 5 is after to 1" in msg


def test_bad_date_operand_in_a_condition() -> None:
    (msg,) = errors({"field": "contract_end", "gte": "next week"})
    assert "'next week' is not a date" in msg


def test_number_field_needs_a_number() -> None:
    (msg,) = errors({"field": "web_visits", "gt": "3"})
    assert "needs a number" in msg


@pytest.mark.parametrize(
    "data",
    [
        {"field": "email", "eq": "x", "equals": "y"},
        {"not": {"field": "email", "eq": "x"}, "field": "email"},
        {"field": "contract_end", "within_days": {"from": 0, "to": 3, "step": 1}},
    ],
)
def test_unknown_keys_are_errors(data: dict[str, Any]) -> None:
    assert errors(data)


def test_a_mapping_without_a_condition_key() -> None:
    assert errors({"fields": "email", "eq": "x"}) == [
        "a condition needs one of the keys: field, all, any, not"
    ]


def test_empty_combination() -> None:
    assert errors({"all": []})


def test_no_expression_language() -> None:
    # a string is never evaluated as code
    assert errors("lead_status == 'qualified'")


# ---- dates against relative operands and datetime values ----------------------------------------------------


def test_eq_and_in_resolve_relative_date_operands() -> None:
    assert holds({"field": "contract_end", "eq": "today+3"}, {"contract_end": days(3)})
    assert not holds({"field": "contract_end", "eq": "today+3"}, {"contract_end": days(4)})
    assert holds({"field": "contract_end", "in": ["today", "today+7"]}, {"contract_end": days(7)})
    assert holds({"field": "contract_end", "ne": "today"}, {"contract_end": days(1)})
    assert not holds({"field": "contract_end", "not_in": ["today"]}, {"contract_end": AS_OF})


def test_eq_on_a_date_field_needs_a_date_operand() -> None:
    assert any("is not a date" in m for m in errors({"field": "contract_end", "eq": "soon"}))


def test_a_datetime_value_is_compared_as_its_utc_date() -> None:
    moment = dt.datetime.combine(days(10), dt.time(23, 30), tzinfo=dt.UTC)
    assert holds({"field": "contract_end", "within_days": {"from": 0, "to": 10}}, {"contract_end": moment})
    assert not holds({"field": "contract_end", "within_days": {"from": 0, "to": 9}}, {"contract_end": moment})
