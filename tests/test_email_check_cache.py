"""A file row's address is checked by email-validator once, though the row maps it twice (its e-mail column
and its `email` field); a bad address is refused with the same message every time it is seen."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connector.mappers import fields
from connector.mappers.fields import ObjectMapping, checked_email
from connector.mappers.files import FileRowSpec, map_file_row
from connector.schema import FactKind


def _forget_checked() -> None:
    remembered = getattr(fields, "_email_problem", None)
    if remembered is not None:
        remembered.cache_clear()


@pytest.fixture
def validated(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every address handed to email-validator."""
    seen: list[str] = []
    validate, not_valid = fields._email_validator()

    def counted(candidate: str, **kwargs: Any) -> Any:
        seen.append(candidate)
        return validate(candidate, **kwargs)

    monkeypatch.setattr(fields, "_email_validator", lambda: (counted, not_valid))
    _forget_checked()
    yield seen
    _forget_checked()  # what the counting validator answered is not kept for other tests


def test_a_file_row_s_address_is_validated_once(validated: list[str]) -> None:
    spec = FileRowSpec(
        source="crm",
        kind=FactKind.PERSON,
        join="email",
        mapping=ObjectMapping(fields={"email": "email", "first": "first_name"}),
        email_column="email",
        external_id_column=None,
    )
    row = {"email": "Ann@Acme.example", "first": "Ann", "__file__": "people.csv", "__line__": 2}
    row["__id__"] = "ann@acme.example"

    fact = map_file_row("people.csv", row, spec)

    assert fact.values["email"] == "ann@acme.example"
    assert validated == ["Ann@Acme.example"]


def test_a_bad_address_is_refused_each_time_with_its_reason(validated: list[str]) -> None:
    messages = []
    for _ in range(2):
        with pytest.raises(ValueError) as caught:
            checked_email("=HYPERLINK(1)")
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith("'=HYPERLINK(1)' is not an e-mail address (")
