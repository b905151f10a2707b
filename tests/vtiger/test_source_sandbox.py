"""The vtiger source end to end over real HTTP against the loopback sandbox."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from connector.context import PluginEnv, RunContext
from connector.errors import ConfigError
from connector.retry import RetryPolicy
from connector.sources.vtiger.config import VtigerSourceConfig
from connector.sources.vtiger.source import VtigerSource
from connector_sandboxes.vtiger import VtigerSandbox

pytestmark = pytest.mark.e2e
T0 = dt.datetime(2026, 11, 23, 12, 0, 0, tzinfo=dt.UTC)


def config(sandbox: VtigerSandbox, **overrides: Any) -> VtigerSourceConfig:
    data: dict[str, Any] = {
        "name": "vt",
        "type": "vtiger",
        "url": sandbox.url,
        "modules": {
            "Accounts": {"kind": "enrichment", "fields": {"accountname": "company"}},
            "Leads": {
                "fields": {
                    "email": "email",
                    "firstname": "first_name",
                    "lastname": "last_name",
                    "leadstatus": "lead_status",
                    "emailoptout": "opted_out",
                    "label:Sync Key": "external_id",
                }
            },
            "Contacts": {"fields": {"email": "email", "label:Contract end": "contract_end"}},
            "Potentials": {
                "kind": "opportunity",
                "fields": {
                    "sales_stage": "opportunity_stage_raw",
                    "amount": "opportunity_amount",
                    "closingdate": "opportunity_close_date",
                },
            },
            "ServiceContracts": {
                "kind": "contract",
                "fields": {"start_date": "contract_start", "due_date": "contract_end"},
            },
        },
    }
    data.update(overrides)
    return VtigerSourceConfig.model_validate(data)


def source(sandbox: VtigerSandbox, **overrides: Any) -> VtigerSource:
    cfg = config(sandbox, **overrides)
    env = PluginEnv(
        sources=[cfg], environ=sandbox.env(), policy=RetryPolicy(attempts=12, sleep=lambda s: None)
    )
    return VtigerSource.from_config(cfg, env)


class Store:
    """What the run loop does with batches: upsert records, drop deleted ids, apply live_ids, keep cursors."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, str]]] = {}
        self.cursors: dict[str, str] = {}
        self.seen: list[tuple[str, str]] = []  # every (module, id) handed over, repeats included
        self.calls = 0

    def run(self, src: VtigerSource, started: dt.datetime) -> RunContext:
        ctx = RunContext(as_of=started.date(), started_at=started)
        for batch in src.read(dict(self.cursors), ctx):
            bucket = self.records.setdefault(batch.object, {})
            if batch.live_ids is not None:
                for gone in set(bucket) - batch.live_ids:
                    del bucket[gone]
            for raw in batch.records:
                bucket[raw["id"]] = raw
                self.seen.append((batch.object, raw["id"]))
            for gone in batch.deleted:
                bucket.pop(gone, None)
            if batch.cursor is not None:
                self.cursors[batch.object] = batch.cursor
        self.calls = ctx.api_calls["vt"]
        return ctx

    def ids(self, module: str) -> set[str]:
        return set(self.records.get(module, {}))


def cursor_time(store: Store, module: str) -> dt.datetime:
    return dt.datetime.fromisoformat(json.loads(store.cursors[module])["modifiedtime"])


def add_leads(sandbox: VtigerSandbox, count: int, start: int = 0) -> list[str]:
    return [
        sandbox.store.create(
            "Leads", {"lastname": f"Lead{n}", "email": f"lead{n}@example.com", "leadstatus": "Cold"}
        )["id"]
        for n in range(start, start + count)
    ]


def test_full_load_pages_past_100_rows_within_one_second(vt_sandbox: VtigerSandbox) -> None:
    vt_sandbox.clock.set(T0)  # frozen: all 250 leads share one modifiedtime second
    ids = add_leads(vt_sandbox, 250)
    store = Store()
    store.run(source(vt_sandbox), T0 + dt.timedelta(minutes=1))
    assert store.ids("Leads") == set(ids)
    lead_reads = [i for m, i in store.seen if m == "Leads"]
    assert len(lead_reads) == len(set(lead_reads)) == 250  # nothing skipped, nothing twice
    assert cursor_time(store, "Leads") == T0 + dt.timedelta(seconds=1)


def test_full_load_pages_past_100_rows_over_many_seconds(vt_sandbox: VtigerSandbox) -> None:
    vt_sandbox.clock.set(T0)
    ids = []
    for n in range(230):
        ids += add_leads(vt_sandbox, 1, n)
        if n % 7 == 0:
            vt_sandbox.clock.advance(1)
    store = Store()
    store.run(source(vt_sandbox), T0 + dt.timedelta(hours=1))
    assert store.ids("Leads") == set(ids)
    lead_reads = [i for m, i in store.seen if m == "Leads"]
    assert len(lead_reads) == 230
    assert cursor_time(store, "Leads") == vt_sandbox.clock.now()


def _changes(sandbox: VtigerSandbox, ids: list[str]) -> None:
    sandbox.clock.advance(60)
    sandbox.store.revise(ids[0], {"leadstatus": "Hot"})
    sandbox.store.revise(ids[1], {"leadstatus": "Junk Lead"})
    sandbox.store.delete(ids[2])


def test_incremental_with_sync(vt_sandbox: VtigerSandbox) -> None:
    vt_sandbox.clock.set(T0)
    ids = add_leads(vt_sandbox, 120)
    store = Store()
    src = source(vt_sandbox)
    store.run(src, T0 + dt.timedelta(seconds=30))
    _changes(vt_sandbox, ids)
    vt_sandbox.reset_calls()
    before = len(store.seen)
    store.run(src, T0 + dt.timedelta(minutes=5))
    # Leads (the only module with records, so the only one with a cursor) by one sync page; the empty
    # modules have no cursor yet and are read by one (empty) query page each
    assert vt_sandbox.calls["sync"] == 1
    assert vt_sandbox.calls["query"] == 4
    assert ids[2] not in store.ids("Leads")
    assert store.records["Leads"][ids[0]]["leadstatus"] == "Hot"
    assert set(store.seen[before:]) == {("Leads", ids[0]), ("Leads", ids[1])}


def test_incremental_without_sync_falls_back_to_query_and_reconciles(vt_sandbox: VtigerSandbox) -> None:
    vt_sandbox.faults.stock_php8()
    vt_sandbox.clock.set(T0)
    ids = add_leads(vt_sandbox, 120)
    store = Store()
    src = source(vt_sandbox)
    store.run(src, T0 + dt.timedelta(seconds=30))
    assert store.ids("Leads") == set(ids)
    _changes(vt_sandbox, ids)
    vt_sandbox.reset_calls()
    before = len(store.seen)
    store.run(src, T0 + dt.timedelta(minutes=5))
    assert vt_sandbox.calls["sync"] == 1  # one probe answered with an empty 500, not one per page or module
    assert src.sync_works is False
    assert ids[2] not in store.ids("Leads")  # deletion through id reconciliation
    assert store.ids("Leads") == set(ids) - {ids[2]}
    assert set(store.seen[before:]) == {("Leads", ids[0]), ("Leads", ids[1])}


def test_sync_probe_happens_once_per_run(vt_sandbox: VtigerSandbox) -> None:
    add_leads(vt_sandbox, 3)
    vt_sandbox.store.create("Contacts", {"lastname": "Jones", "email": "bob@example.com"})
    vt_sandbox.store.create("Accounts", {"accountname": "Acme"})
    store = Store()
    src = source(vt_sandbox)
    store.run(src, T0)
    vt_sandbox.faults.error_500_ops = {"sync"}
    vt_sandbox.faults.fail_next = 100  # every sync answers an empty 500
    store.run(src, T0 + dt.timedelta(days=1))
    assert vt_sandbox.faults.injected["sync"] == 1  # three modules with cursors, one probe
    assert src.sync_works is False


def test_reconcile_every_n_runs(vt_sandbox: VtigerSandbox) -> None:
    vt_sandbox.clock.set(T0)
    ids = add_leads(vt_sandbox, 5)
    store = Store()
    src = source(vt_sandbox, incremental="query", reconcile_every=2)
    store.run(src, T0 + dt.timedelta(seconds=10))
    vt_sandbox.store.delete(ids[0])
    store.run(src, T0 + dt.timedelta(seconds=20))
    assert ids[0] in store.ids("Leads")  # not yet: one query run since the full load
    store.run(src, T0 + dt.timedelta(seconds=30))
    assert ids[0] not in store.ids("Leads")


def test_reconcile_every_hours_adds_reconciliations_and_never_skips_one(vt_sandbox: VtigerSandbox) -> None:
    vt_sandbox.clock.set(T0)
    ids = add_leads(vt_sandbox, 5)
    store = Store()
    # hours alone: reconcile_every keeps its default 1, so every query-mode run still reconciles
    store.run(
        source(vt_sandbox, incremental="query", reconcile_every_hours=24), T0 + dt.timedelta(seconds=10)
    )
    vt_sandbox.store.delete(ids[0])
    store.run(
        source(vt_sandbox, incremental="query", reconcile_every_hours=24), T0 + dt.timedelta(seconds=20)
    )
    assert ids[0] not in store.ids("Leads")  # reconciled, 24 hours or not

    # with a run count, the hours bring a reconciliation forward
    rarely = source(vt_sandbox, incremental="query", reconcile_every=100, reconcile_every_hours=1)
    vt_sandbox.store.delete(ids[1])
    store.run(rarely, T0 + dt.timedelta(minutes=30))
    assert ids[1] in store.ids("Leads")  # 1 of 100 runs, half an hour since the last reconciliation
    store.run(rarely, T0 + dt.timedelta(hours=1, seconds=20))
    assert ids[1] not in store.ids("Leads")


def test_cursor_never_passes_the_run_start(vt_sandbox: VtigerSandbox) -> None:
    vt_sandbox.clock.set(T0 + dt.timedelta(hours=2))  # the CRM clock runs ahead of ours
    add_leads(vt_sandbox, 3)
    store = Store()
    store.run(source(vt_sandbox), T0)
    assert cursor_time(store, "Leads") == T0


def test_mapping_over_the_wire(vt_sandbox: VtigerSandbox) -> None:
    st = vt_sandbox.store
    sync_key = st.field_by_label("Leads", "Sync Key")
    contract_end = st.field_by_label("Contacts", "Contract end")
    account = st.create("Accounts", {"accountname": "Acme B.V."})
    contact = st.create(
        "Contacts",
        {
            "lastname": "Jones",
            "email": "Bob@Example.com",
            "account_id": account["id"],
            contract_end: "2027-03-31",
        },
    )
    lead = st.create(
        "Leads",
        {"lastname": "Smith", "email": "ann@example.com", "leadstatus": "Lost Lead", sync_key: "KEY-1"},
    )
    odd = st.create("Leads", {"lastname": "Odd", "leadstatus": "NotAStatus"})
    deal = st.create(
        "Potentials",
        {
            "potentialname": "Deal",
            "closingdate": "2026-12-31",
            "sales_stage": "Closed Won",
            "amount": "5000",
            "related_to": account["id"],
        },
    )
    store = Store()
    src = source(vt_sandbox)
    store.run(src, T0 + dt.timedelta(days=3650))

    lead_fact = src.map("Leads", store.records["Leads"][lead["id"]])
    assert lead_fact.keys == [f"vt:Leads:{lead['id']}", "email:ann@example.com", "ext:KEY-1"]
    assert lead_fact.values["lead_status"] == "qualified_out"
    contact_fact = src.map("Contacts", store.records["Contacts"][contact["id"]])
    assert contact_fact.member_of == [f"vt:Accounts:{account['id']}"]
    assert contact_fact.values["contract_end"] == dt.date(2027, 3, 31)
    deal_fact = src.map("Potentials", store.records["Potentials"][deal["id"]])
    assert deal_fact.attach == [f"vt:Accounts:{account['id']}"]
    assert deal_fact.values["opportunity_won"] is True
    src.map("Leads", store.records["Leads"][odd["id"]])
    assert src.unknown_values[("Leads.lead_status", "NotAStatus")] == 1


def test_unknown_label_is_a_config_error_listing_labels(vt_sandbox: VtigerSandbox) -> None:
    src = source(vt_sandbox, modules={"Leads": {"fields": {"label:Contract ends": "contract_end"}}})
    with pytest.raises(ConfigError) as caught:
        list(src.read({}, RunContext(as_of=T0.date(), started_at=T0)))
    message = str(caught.value)
    assert "Leads" in message and "'Contract ends'" in message and "Contract end" in message


def test_session_expiry_mid_run(vt_sandbox: VtigerSandbox) -> None:
    vt_sandbox.clock.set(T0)
    ids = add_leads(vt_sandbox, 350)
    vt_sandbox.faults.expire_sessions_after = 3
    store = Store()
    src = source(vt_sandbox)
    store.run(src, T0 + dt.timedelta(minutes=1))
    assert store.ids("Leads") == set(ids)
    assert src.client.logins > 1


def test_injected_500s_are_survived_with_nothing_lost(vt_sandbox: VtigerSandbox) -> None:
    vt_sandbox.clock.set(T0)
    ids = []
    for n in range(300):
        ids += add_leads(vt_sandbox, 1, n)
        if n % 40 == 0:
            vt_sandbox.clock.advance(1)
    vt_sandbox.faults.error_500_rate = 0.25
    vt_sandbox.faults.seed = 11
    store = Store()
    src = source(vt_sandbox)
    store.run(src, T0 + dt.timedelta(minutes=1))
    assert store.ids("Leads") == set(ids)
    vt_sandbox.clock.advance(60)
    for lead_id in ids[:150]:
        vt_sandbox.store.revise(lead_id, {"leadstatus": "Warm"})
    vt_sandbox.store.delete(ids[-1])
    store.run(src, T0 + dt.timedelta(minutes=5))
    assert sum(vt_sandbox.faults.injected.values()) > 5
    assert store.ids("Leads") == set(ids[:-1])
    assert all(store.records["Leads"][i]["leadstatus"] == "Warm" for i in ids[:150])
