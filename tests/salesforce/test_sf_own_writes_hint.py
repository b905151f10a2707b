"""The writer's count of its own writes, by object and run: the hint the source's next read adds to its cursor's
estimate (the e2e case is in test_sf_bulk_nothing_new_e2e.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import responses
from sf_fakes import BASE, SESSION_ENV, ctx, describe, policy, source_config

from connector.context import PluginEnv
from connector.crm.salesforce.own_writes import MAX_ENTRIES, OwnWrites, writes_path
from connector.plan import LabelChange
from connector.schema import RecordRef
from connector.sources.salesforce.cursor import Cursor
from connector.writers.salesforce.config import SalesforceWriterConfig
from connector.writers.salesforce.writer import SalesforceWriter

RUN_1 = dt.datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
RUN_2 = RUN_1 + dt.timedelta(seconds=30)


def test_writes_count_from_the_run_whose_read_saved_the_cursor(tmp_path: Path) -> None:
    writes = OwnWrites(writes_path(tmp_path, "sf prod"))
    writes.add("Lead", 300, RUN_1)
    writes.add("Lead", 5, RUN_1)  # a second target writing back through the same source, same run
    writes.add("Contact", 0, RUN_1)  # nothing written: nothing noted
    writes.add("Lead", 7, RUN_2)
    assert writes.path == tmp_path / "cache" / "salesforce-sf_prod-writes.json"
    assert writes.since("Lead", RUN_1) == 312  # the read of run 1 came before run 1's writes
    assert writes.since("Lead", RUN_2) == 7
    assert writes.since("Lead", RUN_2 + dt.timedelta(seconds=1)) == 0
    assert writes.since("Contact", RUN_1) == 0
    assert writes.since("Lead", None) == 0  # a cursor that does not say when it was read counts none
    stored = json.loads(writes.path.read_text(encoding="utf-8"))
    assert stored == {
        "format": 1,
        "writes": {
            "Lead": [{"at": "2026-11-01T12:00:00.123Z", "n": 305}, {"at": "2026-11-01T12:00:30.123Z", "n": 7}]
        },
    }


def test_only_the_latest_runs_are_kept(tmp_path: Path) -> None:
    writes = OwnWrites(tmp_path / "w.json")
    for n in range(MAX_ENTRIES + 4):
        writes.add("Lead", 1, RUN_1 + dt.timedelta(minutes=15 * n))
    assert writes.since("Lead", RUN_1) == MAX_ENTRIES


def test_an_unreadable_file_is_no_hint(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text("{not json", encoding="utf-8")
    writes = OwnWrites(path)
    assert writes.since("Lead", RUN_1) == 0
    writes.add("Lead", 3, RUN_1)  # and is replaced by the next write
    assert writes.since("Lead", RUN_1) == 3


def test_the_cursor_keeps_the_start_of_the_run_that_read_it() -> None:
    cursor = Cursor(newest=RUN_1 - dt.timedelta(hours=1), read_in=RUN_1)
    text = cursor.dump(dt.timedelta(seconds=60))
    assert text is not None and json.loads(text)["run"] == "2026-11-01T12:00:00.123Z"
    # the cursor and the writes file store a run's start alike, so that run's writes count from it
    loaded = Cursor.parse(text)
    assert loaded.read_in == RUN_1.replace(microsecond=123000)
    assert Cursor.parse('{"ts": "2026-11-01T11:00:00.000Z"}').read_in is None  # stored before the key


@responses.activate(assert_all_requests_are_fired=True)
def test_the_writer_notes_the_labels_it_wrote_per_object_not_those_refused(tmp_path: Path) -> None:
    for obj in ("Lead", "Contact"):
        responses.get(f"{BASE}sobjects/{obj}/describe", json=describe(obj, ["Id", "Funnel_Stage__c"]))

    def answer(request: object) -> tuple[int, dict[str, str], str]:
        records = json.loads(request.body)["records"]  # type: ignore[attr-defined]
        refused = {"00Q000000000000001": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"}
        results = [
            {"success": False, "errors": [{"statusCode": refused[r["id"]], "message": "no", "fields": []}]}
            if r["id"] in refused
            else {"id": r["id"], "success": True, "errors": []}
            for r in records
        ]
        return 200, {}, json.dumps(results)

    responses.add_callback(responses.PATCH, f"{BASE}composite/sobjects", callback=answer)
    env = PluginEnv(sources=[source_config()], policy=policy(None), environ=SESSION_ENV, state_dir=tmp_path)
    cfg = SalesforceWriterConfig.model_validate(
        {
            "name": "sf_out",
            "type": "salesforce",
            "source": "sf_prod",
            "label_field": {"Lead": "Funnel_Stage__c", "Contact": "Funnel_Stage__c"},
        }
    )
    changes = [
        LabelChange(f"p{i}", RecordRef("sf_prod", obj, f"{prefix}{i:015d}"), "Lead", "Prospect")
        for obj, prefix, n in (("Lead", "00Q", 4), ("Contact", "003", 2))
        for i in range(n)
    ]
    result = SalesforceWriter.from_config(cfg, env).write_labels(changes, ctx(RUN_1))
    assert list(result.failed) == ["sf_prod:Lead:00Q000000000000001"]
    writes = OwnWrites(writes_path(tmp_path, "sf_prod"))
    assert (writes.since("Lead", RUN_1), writes.since("Contact", RUN_1)) == (3, 2)
