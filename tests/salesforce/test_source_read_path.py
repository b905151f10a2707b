"""The Salesforce source's one REST-or-Bulk decision: the incremental read and the reconciliation take it the
same way (over HTTPS against the sandbox), and no other module of the source takes it again."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from test_source_sf_e2e import drain, make_source, run_ctx, seed_leads

import connector.sources.salesforce as sf_source
from connector.context import RunContext

SOURCE_DIR = Path(sf_source.__file__).parent


@pytest.mark.e2e
@pytest.mark.parametrize(("threshold", "bulk"), [(7, False), (6, True)])
def test_one_threshold_routes_the_incremental_read_and_the_reconciliation(
    sf_sandbox: Any, threshold: int, bulk: bool
) -> None:
    ids = seed_leads(sf_sandbox, 7)
    src = make_source(sf_sandbox, bulk_threshold=threshold, reconcile_every_hours=24)
    first = run_ctx(sf_sandbox)
    sf_sandbox.reset_calls()
    records, _, cursors = drain(list(src.read({}, first)))
    assert len(records) == 7
    counts = sf_sandbox.call_counts()
    assert (counts["bulk2.query"] > 0) is bulk  # 7 rows: Bulk only above the threshold
    assert counts["queryMore"] == 0

    # a day later, 7 live rows again (one purged, one new): the reconciliation counts them like the read did
    sf_sandbox.store.purge("Lead", ids[0])
    new = sf_sandbox.store.insert("Lead", {"LastName": "New", "Company": "Acme", "Email": "new@x.nl"})
    day_later = first.started_at + dt.timedelta(hours=25)
    sf_sandbox.reset_calls()
    batches = list(src.read(cursors, RunContext(as_of=day_later.date(), started_at=day_later)))
    records, _, _ = drain(batches)
    assert [r["Id"] for r in records] == [new]  # one changed row: REST whatever the threshold
    assert batches[-1].live_ids == {*ids[1:], new}
    assert (sf_sandbox.call_counts()["bulk2.query"] > 0) is bulk


def _calls_and_names(path: Path) -> set[str]:
    """The dotted names `path` calls or reads (`bulk.query_pages`, `self.cfg.bulk_threshold`, ...)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute):
            names.add(ast.unparse(node))
    return names


def test_only_read_path_decides_between_rest_and_bulk() -> None:
    deciding = {
        path.name
        for path in sorted(SOURCE_DIR.glob("*.py"))
        if any(
            name.endswith((".bulk_threshold", "bulk.query_pages", ".count"))
            for name in _calls_and_names(path)
        )
    }
    assert deciding == {"read_path.py"}
