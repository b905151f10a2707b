"""Incremental reads at their edges: shared seconds across pages, writes during a run, sync breaking half way,
reconciliation failing half way, and server errors that must end the read cleanly (never crash the run)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from connector.errors import ConfigError, UnreachableError
from connector.sources.vtiger.source import VtigerSource
from connector_sandboxes.vtiger import VtigerSandbox

from .test_source_sandbox import Store, add_leads, cursor_time, source

pytestmark = pytest.mark.e2e
T0 = dt.datetime(2026, 11, 23, 12, 0, 0, tzinfo=dt.UTC)
LEADS_ONLY = {"modules": {"Leads": {"fields": {"email": "email", "leadstatus": "lead_status"}}}}


def leads_source(sandbox: VtigerSandbox, mode: str = "auto", **overrides: Any) -> VtigerSource:
    return source(sandbox, incremental=mode, **{**LEADS_ONLY, **overrides})


def read_ids(store: Store, since: int) -> set[str]:
    return {i for m, i in store.seen[since:] if m == "Leads"}


def test_a_record_modified_while_its_second_is_paged_by_id_is_not_lost(vt_sandbox: VtigerSandbox) -> None:
    vt_sandbox.clock.set(T0)
    ids = add_leads(vt_sandbox, 250)  # one second, so it is read by id, 100 at a time
    src = leads_source(vt_sandbox, "query")
    real_query = src.client.query
    by_id_pages = 0

    def query(text: str, **kwargs: Any) -> list[dict[str, Any]]:
        nonlocal by_id_pages
        rows = real_query(text, **kwargs)
        if "modifiedtime = " in text:
            by_id_pages += 1
            if by_id_pages == 1:  # a user edits a lead of the page just read: it leaves that second
                vt_sandbox.clock.set(T0 + dt.timedelta(seconds=30))
                vt_sandbox.store.revise(ids[5], {"leadstatus": "Hot"})
        return rows

    src.client.query = query  # type: ignore[method-assign]
    store = Store()
    store.run(src, T0 + dt.timedelta(minutes=1))
    assert by_id_pages >= 3
    assert store.ids("Leads") == set(ids)
    assert store.records["Leads"][ids[5]]["leadstatus"] == "Hot"
    assert cursor_time(store, "Leads") == T0 + dt.timedelta(seconds=30)


@pytest.mark.parametrize("mode", ["sync", "query"])
def test_more_than_100_in_one_second_across_a_page_boundary(vt_sandbox: VtigerSandbox, mode: str) -> None:
    vt_sandbox.clock.set(T0)
    ids = add_leads(vt_sandbox, 400)
    store = Store()
    src = leads_source(vt_sandbox, mode)
    store.run(src, T0 + dt.timedelta(seconds=5))
    # 60 changes in one second, 250 in the next (a page boundary falls inside it), 40 in the one after
    changed: list[str] = []
    for second, chunk in ((10, ids[:60]), (11, ids[60:310]), (12, ids[310:350])):
        vt_sandbox.clock.set(T0 + dt.timedelta(seconds=second))
        for lead_id in chunk:
            vt_sandbox.store.revise(lead_id, {"leadstatus": "Warm"})
        changed += chunk
    before = len(store.seen)
    store.run(src, T0 + dt.timedelta(minutes=5))
    assert read_ids(store, before) == set(changed)
    assert all(store.records["Leads"][i]["leadstatus"] == "Warm" for i in changed)
    assert cursor_time(store, "Leads") == T0 + dt.timedelta(seconds=12)
    assert src.sync_works is (mode == "sync")


@pytest.mark.parametrize("mode", ["sync", "query"])
def test_writes_in_the_run_start_second_are_read_next_run(vt_sandbox: VtigerSandbox, mode: str) -> None:
    vt_sandbox.clock.set(T0)
    ids = add_leads(vt_sandbox, 3)
    store = Store()
    src = leads_source(vt_sandbox, mode)
    store.run(src, T0)  # the run starts in the very second the leads were written
    store.run(src, T0)  # a second run in that second too: sync mode now has a cursor
    late = add_leads(vt_sandbox, 1, 10)  # still the same second, after both reads
    vt_sandbox.store.revise(ids[0], {"leadstatus": "Hot"})
    before = len(store.seen)
    store.run(src, T0 + dt.timedelta(seconds=5))
    assert {ids[0], late[0]} <= read_ids(store, before)
    assert store.records["Leads"][ids[0]]["leadstatus"] == "Hot"


def _modify_over_seconds(sandbox: VtigerSandbox, ids: list[str], start: int) -> None:
    for n, lead_id in enumerate(ids):
        sandbox.clock.set(T0 + dt.timedelta(seconds=start + n // 30))
        sandbox.store.revise(lead_id, {"leadstatus": "Warm"})


def test_sync_breaking_half_way_goes_on_by_query_and_loses_nothing(vt_sandbox: VtigerSandbox) -> None:
    vt_sandbox.clock.set(T0)
    ids = add_leads(vt_sandbox, 300)
    store = Store()
    src = leads_source(vt_sandbox)
    store.run(src, T0 + dt.timedelta(seconds=5))
    _modify_over_seconds(vt_sandbox, ids, 10)  # 300 changes over 10 seconds: several sync pages
    real_sync = src.client.sync

    def sync(module: str, since: int, **kwargs: Any) -> dict[str, Any]:
        page = real_sync(module, since, **kwargs)
        vt_sandbox.faults.error_500_ops = {"sync"}
        vt_sandbox.faults.fail_next = 1000  # every sync after the first page: an empty 500
        return page

    src.client.sync = sync  # type: ignore[method-assign]
    before = len(store.seen)
    store.run(src, T0 + dt.timedelta(minutes=5))
    assert read_ids(store, before) == set(ids)
    assert all(store.records["Leads"][i]["leadstatus"] == "Warm" for i in ids)
    assert src.sync_works is False
    state = json.loads(store.cursors["Leads"])
    assert state["query_runs"] == 1  # sync's deletions stopped half way: a reconciliation is owed

    # sync works again: the owed reconciliation runs first, and picks up a deletion sync would not report
    vt_sandbox.faults.fail_next = 0
    vt_sandbox.store.delete(ids[7])
    vt_sandbox.store._deletions.clear()  # as if it were purged from the log sync reads deletions from
    src = leads_source(vt_sandbox)
    store.run(src, T0 + dt.timedelta(minutes=10))
    assert src.sync_works is True
    assert ids[7] not in store.ids("Leads")
    assert json.loads(store.cursors["Leads"])["query_runs"] == 0


def test_sync_refused_for_the_second_module_only_switches_the_rest_of_the_run(
    vt_sandbox: VtigerSandbox,
) -> None:
    vt_sandbox.clock.set(T0)
    ids = add_leads(vt_sandbox, 5)
    contact = vt_sandbox.store.create("Contacts", {"lastname": "Jones", "email": "bob@example.com"})
    modules = {"Leads": {"fields": {"email": "email"}}, "Contacts": {"fields": {"email": "email"}}}
    store = Store()
    src = source(vt_sandbox, modules=modules)
    store.run(src, T0 + dt.timedelta(seconds=5))
    vt_sandbox.clock.set(T0 + dt.timedelta(seconds=20))
    vt_sandbox.store.revise(ids[0], {"leadstatus": "Hot"})
    vt_sandbox.store.revise(contact["id"], {"email": "bob.jones@example.com"})
    real_sync = src.client.sync

    def sync(module: str, since: int, **kwargs: Any) -> dict[str, Any]:
        if module == "Contacts":
            vt_sandbox.faults.error_500_ops = {"sync"}
            vt_sandbox.faults.fail_next = 1000
        return real_sync(module, since, **kwargs)

    src.client.sync = sync  # type: ignore[method-assign]
    before = len(store.seen)
    store.run(src, T0 + dt.timedelta(minutes=5))
    assert ("Leads", ids[0]) in store.seen[before:]  # by sync (which repeats the cursor's own second)
    assert ("Contacts", contact["id"]) in store.seen[before:]  # by query, after sync failed for it
    assert src.sync_works is False
    assert store.records["Contacts"][contact["id"]]["email"] == "bob.jones@example.com"
    assert json.loads(store.cursors["Leads"])["query_runs"] == 0
    assert json.loads(store.cursors["Contacts"])["query_runs"] in (0, 1)  # read by query (maybe reconciled)


def test_reconciliation_failing_half_way_keeps_cursor_and_records(vt_sandbox: VtigerSandbox) -> None:
    vt_sandbox.clock.set(T0)
    ids = add_leads(vt_sandbox, 250)
    store = Store()
    src = leads_source(vt_sandbox, "query")
    store.run(src, T0 + dt.timedelta(seconds=5))
    vt_sandbox.store.delete(ids[3])
    cursor = store.cursors["Leads"]
    real_query = src.client.query
    id_pages = 0

    def query(text: str, **kwargs: Any) -> list[dict[str, Any]]:
        nonlocal id_pages
        if text.startswith("select id from Leads"):
            id_pages += 1
            if id_pages == 2:
                raise UnreachableError("vtiger query: gave up after 5 attempts")
        return real_query(text, **kwargs)

    src.client.query = query  # type: ignore[method-assign]
    with pytest.raises(UnreachableError):
        store.run(src, T0 + dt.timedelta(minutes=1))
    assert store.cursors["Leads"] == cursor  # nothing moved: no live-id batch, no query-run count
    assert ids[3] in store.ids("Leads") and len(store.ids("Leads")) == 250  # and nothing deleted

    store.run(leads_source(vt_sandbox, "query"), T0 + dt.timedelta(minutes=2))
    assert store.ids("Leads") == set(ids) - {ids[3]}


def test_a_field_the_user_may_no_longer_read_is_a_config_error_not_a_crash(
    vt_sandbox: VtigerSandbox,
) -> None:
    add_leads(vt_sandbox, 2)
    src = source(
        vt_sandbox, modules={"Leads": {"fields": {"email": "email", "label:Sync Key": "external_id"}}}
    )
    src.prepare()  # described while the field was there
    meta = vt_sandbox.store.modules["Leads"]
    name = vt_sandbox.store.field_by_label("Leads", "Sync Key")
    meta.fields = [f for f in meta.fields if f.name != name]  # the admin removes it before the query
    with pytest.raises(ConfigError, match="ACCESS_DENIED"):
        Store().run(src, T0)


def test_unknown_values_are_counted_once_per_value_under_field_keys(vt_sandbox: VtigerSandbox) -> None:
    for n in range(3):
        vt_sandbox.store.create("Leads", {"lastname": f"Odd{n}", "leadstatus": "NotAStatus"})
    store = Store()
    src = leads_source(vt_sandbox)
    store.run(src, T0 + dt.timedelta(days=3650))
    for raw in store.records["Leads"].values():
        src.map("Leads", raw)
    # the shape every source reports and the run summary unpacks: (field, value) -> count
    assert dict(src.unknown_values) == {("Leads.lead_status", "NotAStatus"): 3}
