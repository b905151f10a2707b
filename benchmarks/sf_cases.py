"""Salesforce cases: API calls per kind for each run kind, connector against naive.py, over real HTTPS.

The org runs in a process of its own (a CRM is another machine: its CPU must not count against the run), as
twins seeded with the same population: connector syncs one, naive.py the other. Twins because each writes
labels, and one's PATCH would show up in the other's next incremental read as a changed record. The calls are
counted where the org serves them, per kind, as sf_api_calls.py does; the org's clock and the run's move on
together (15 minutes between runs, 30 s to land inside a writing run's own overlap window).

Sizes: the sandbox's paging is the real one (2,000 rows a REST page), the writer's Bulk threshold its default
(more than 2,000 label changes of one object go as a Bulk API 2.0 job), the reader's 10,000 rows.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import multiprocessing
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from measure import Figures, Sample, measure

START = dt.datetime(2026, 11, 23, 9, 0, 0, tzinfo=dt.UTC)
HERE = Path(__file__).parent
QUERIES = ("query", "queryAll", "queryMore")
OBJECTS = ("Lead", "Contact", "Opportunity", "Contract", "OpportunityContactRole")
DAILY_LIMIT = 15_000  # API calls a day of a default org (Enterprise Edition's base allowance)
PAGE = 2000  # rows per REST query page (Sforce-Query-Options batchSize; the most Salesforce returns)

# the demo's Salesforce half: its objects and label field, no vtiger, no files, no campaigns (naive.py has
# none of those, so a comparison with them would not be like for like)
SF_CONFIG = """\
state:
  path: state.sqlite
stage_model:
  preset: default
sources:
  - name: sf_prod
    type: salesforce
    auth: password
    login_url: {sf_login_url}
    api_version: "59.0"
    env_prefix: SF_
    ca_bundle: {sf_ca_bundle}
    objects:
      Lead:
        fields: {{Email: email, FirstName: first_name, LastName: last_name, Company: company, Status: lead_status,
                 HasOptedOutOfEmail: opted_out}}
        value_maps:
          lead_status: {{"Open - Not Contacted": new, "Working - Contacted": working,
                        "Closed - Converted": converted, "Closed - Not Converted": qualified_out}}
      Contact:
        fields: {{Email: email, FirstName: first_name, LastName: last_name, HasOptedOutOfEmail: opted_out,
                 Account.Name: company}}
      Opportunity:
        kind: opportunity
        fields: {{StageName: opportunity_stage_raw, Amount: opportunity_amount, CloseDate: opportunity_close_date}}
        value_maps:
          opportunity_stage: {{"Proposal/Price Quote": proposal, "Negotiation/Review": proposal}}
      Contract:
        kind: contract
        fields: {{StartDate: contract_start, EndDate: contract_end}}
targets:
  - name: sf_out
    type: salesforce
    source: sf_prod
    label_field: {{Lead: Funnel_Stage__c, Contact: Funnel_Stage__c}}
"""


class _Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def _serve(pipe: Connection, people: int, as_of: dt.date) -> None:
    from connector_sandboxes.demo.dataset import generate
    from connector_sandboxes.demo.world import seeded_world

    clock = _Clock(START)
    population = generate(people, as_of, seed=5)
    with tempfile.TemporaryDirectory() as tmp:
        roots = {who: Path(tmp) / who for who in ("connector", "naive")}
        for root in roots.values():
            root.mkdir()
        with (
            seeded_world(
                roots["connector"], population, as_of, seed=5, config_text=SF_CONFIG, sf_clock=clock
            ) as c,
            seeded_world(
                roots["naive"], population, as_of, seed=5, config_text=SF_CONFIG, sf_clock=clock
            ) as n,
        ):
            orgs = {"connector": c.sf, "naive": n.sf}
            for org in orgs.values():
                # a default org allows 15,000 calls a day (the sandbox's default too); naive.py's PATCH per
                # record crosses it at 40,000 people and would stop there: let it finish, and the report
                # marks the runs that went over
                org.daily_limit = 10**9
            pipe.send(
                {
                    "config": str(c.config_path),
                    "environ": {"connector": c.environ, "naive": n.environ},
                    "login_url": n.sf.login_url,
                    "ca": str(roots["naive"] / "sandbox-ca.pem"),
                    "rows": {obj: len(c.sf.store.all(obj)) for obj in OBJECTS},
                }
            )
            while True:
                command, arg = pipe.recv()
                if command == "clock":
                    clock.at = dt.datetime.fromisoformat(arg)
                    pipe.send(None)
                elif command == "reset":
                    for org in orgs.values():
                        org.reset_calls()
                    pipe.send(None)
                elif command == "calls":
                    org = orgs[arg]
                    pipe.send((dict(org.call_counts()), dict(org.queried_objects())))
                elif command == "change":
                    pipe.send(max(_change(org.store, people) for org in orgs.values()))
                else:
                    pipe.send(None)
                    return


def _change(store: Any, people: int) -> int:
    """About 1 % of the people change: half qualified out through their Lead, half won through an Opportunity
    (so both Lead and Contact labels move), the same records in both twins."""
    rng = random.Random(5)
    open_leads = sorted(
        (r for r in store.all("Lead") if not r["IsConverted"] and r["Status"] != "Closed - Not Converted"),
        key=lambda r: r["Id"],
    )
    open_opps = sorted((r for r in store.all("Opportunity") if not r["IsClosed"]), key=lambda r: r["Id"])
    share = max(1, people // 200)
    leads = rng.sample(open_leads, min(share, len(open_leads)))
    opps = rng.sample(open_opps, min(share, len(open_opps)))
    for lead in leads:
        store.update("Lead", lead["Id"], {"Status": "Closed - Not Converted"})
    for opp in opps:
        store.update("Opportunity", opp["Id"], {"StageName": "Closed Won"})
    return len(leads) + len(opps)


class _Org:
    def __init__(self, people: int, as_of: dt.date) -> None:
        self._pipe, child = multiprocessing.Pipe()
        self._process = multiprocessing.Process(target=_serve, args=(child, people, as_of), daemon=True)
        self._process.start()
        self.info: dict[str, Any] = self._pipe.recv()

    def ask(self, command: str, arg: Any = None) -> Any:
        self._pipe.send((command, arg))
        return self._pipe.recv()

    def stop(self) -> None:
        self.ask("stop")
        self._process.join(timeout=60)


@dataclass(frozen=True)
class SfRow:
    people: int
    kind: str
    connector: Figures
    naive: Figures
    calls: Counter[str]  # connector's, per kind served
    naive_calls: Counter[str]
    queried: Counter[str]  # connector's queries per object in their FROM
    labels: int  # written by connector
    naive_patched: int
    fewest_queries: int
    notes: list[str] = field(default_factory=list)

    @property
    def queries(self) -> int:
        return sum(self.calls[k] for k in QUERIES)

    @property
    def collections(self) -> int:
        return self.calls["composite/sobjects"]

    @property
    def bulk(self) -> int:
        """Bulk API 2.0 calls (job create, upload, close, polls, results)."""
        return self.calls["bulk2.ingest"] + self.calls["bulk2.query"]

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def naive_total(self) -> int:
        return sum(self.naive_calls.values())


def run_size(people: int, repeats: int, as_of: dt.date, log: Callable[[str], None]) -> list[SfRow]:
    org = _Org(people, as_of)
    info = org.info
    rows: list[SfRow] = []
    clock = START
    connector_env = {**_base_env(), **info["environ"]["connector"]}
    naive_env = {**_base_env(), **info["environ"]["naive"]}
    naive = [
        sys.executable,
        str(HERE / "naive.py"),
        "salesforce",
        "--login-url",
        info["login_url"],
        "--ca",
        info["ca"],
    ]
    try:

        def phase(kind: str, seconds: int, times: int, fewest: int) -> None:
            nonlocal clock
            ours: list[Sample] = []
            theirs: list[Sample] = []
            for _ in range(times):
                clock += dt.timedelta(seconds=seconds)
                org.ask("clock", clock.isoformat())
                org.ask("reset")
                argv = [
                    sys.executable,
                    str(HERE / "run_once.py"),
                    info["config"],
                    "--as-of",
                    as_of.isoformat(),
                ]
                ours.append(measure([*argv, "--clock", clock.isoformat()], env=connector_env, ok=(0, 3)))
                calls, queried = org.ask("calls", "connector")
                theirs.append(measure(naive, env=naive_env))
                naive_calls, _ = org.ask("calls", "naive")
            summary = json.loads(ours[-1].stdout)
            row = SfRow(
                people,
                kind,
                Figures.of(ours),
                Figures.of(theirs),
                Counter(calls),
                Counter(naive_calls),
                Counter(queried),
                summary["labels"].get("sf_out", {}).get("written", 0),
                json.loads(theirs[-1].stdout)["patched"],
                fewest,
            )
            rows.append(row)
            log(
                f"salesforce {people:>6} {kind:<38} calls {row.total:>5} (naive {row.naive_total:>6})  "
                f"queries {row.queries}  collections {row.collections}  bulk {row.bulk}"
            )

        # a read of everything: one query per object and one more per further page of 2,000 rows, over REST
        # up to the reader's threshold (above it a Bulk job reads, and its calls are counted as bulk)
        first_pages = sum(max(1, math.ceil(n / PAGE)) for n in info["rows"].values())
        phase("first run", 15 * 60, 1, first_pages)
        phase("nothing new, 30 s after a writing run", 30, 1, len(OBJECTS))
        phase("nothing new, steady state", 15 * 60, repeats, len(OBJECTS))
        org.ask("change")
        phase("1 % changed", 15 * 60, 1, len(OBJECTS))
    finally:
        org.stop()
    return rows


def _base_env() -> dict[str, str]:
    import os

    # the run's own environment (PATH, HOME, the venv) without any SF_* / VTIGER_* of the caller's
    return {k: v for k, v in os.environ.items() if not k.startswith(("SF_", "VTIGER_"))}
