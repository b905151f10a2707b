"""A run's own writes come back through the next incremental read: they must not count as news."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from connector.context import RunContext
from connector.reading import new_stats, read_source
from connector.schema import Fact, FactKind, RecordRef
from connector.sources.base import Batch
from connector.state import StateStore

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


class ListSource:
    """A source that hands out whatever records the test put in, like an incremental CRM read."""

    name = "crm"

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        yield Batch(object="Contact", records=list(self.records), cursor=self.records[-1]["modified"])

    def map(self, obj: str, raw: dict[str, Any]) -> Fact:
        return Fact(
            ref=RecordRef("crm", obj, raw["Id"]),
            kind=FactKind.PERSON,
            modified_at=dt.datetime.fromisoformat(raw["modified"]),
            keys=[f"crm:{obj}:{raw['Id']}", f"email:{raw['email']}"],
            values={"email": raw["email"], "lead_status": raw["status"]},
        )

    def mapping_for(self, obj: str) -> None:
        return None

    def close(self) -> None:
        """Nothing to release."""


def _read(store: StateStore, source: ListSource) -> dict[str, int]:
    stats = new_stats()
    ctx = RunContext(as_of=dt.date(2026, 11, 23), started_at=dt.datetime(2026, 11, 23, tzinfo=dt.UTC))
    read_source(store, source, ctx, stats, 1, Counter())
    return stats


def test_a_record_that_only_moved_its_modified_time_keeps_its_stored_time(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.sqlite")
    source = ListSource()
    source.records = [{"Id": "1", "email": "a@x.nl", "status": "working", "modified": T0.isoformat()}]
    assert _read(store, source)["records"] == 1

    # our label write moved the modified time; nothing we map changed
    later = (T0 + dt.timedelta(hours=1)).isoformat()
    source.records = [{"Id": "1", "email": "a@x.nl", "status": "working", "modified": later}]
    stats = _read(store, source)
    assert stats["unchanged"] == 1
    (fact,) = list(store.all_facts())
    assert fact.modified_at == T0

    # a real change is stored with its new time
    source.records = [{"Id": "1", "email": "a@x.nl", "status": "qualified", "modified": later}]
    stats = _read(store, source)
    assert stats["unchanged"] == 0
    (fact,) = list(store.all_facts())
    assert fact.modified_at == T0 + dt.timedelta(hours=1)
    assert fact.values["lead_status"] == "qualified"
    store.close()
