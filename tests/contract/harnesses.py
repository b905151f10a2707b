"""One harness per plugin: how the contract suite builds it over its backing system and acts on that system.

A harness starts its system (a loopback sandbox, or a folder for the file plugins), builds the plugin from a
config the way a run does (`from_config` with a `PluginEnv`), changes records behind the plugin's back the way a
user of that system would, and reads back what a writer wrote. The checks in source_checks.py and
writer_checks.py only talk to harnesses, so a new CRM gets the whole suite from one harness and one line in
`SOURCE_HARNESSES` / `WRITER_HARNESSES` below.

This is the only module of the suite that imports the sandboxes: their package is being moved out of
`connector`, and then only the imports here change.

Time: each CRM harness drives its sandbox's clock, so "changed at the cursor instant" is exact, not a race
against the wall clock. `BOUNDARY` is the instant the newest record of the first read carries; older records
lie hours before it, well outside any overlap window.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar

import requests

from connector.context import PluginEnv, RunContext
from connector.plan import Member
from connector.retry import RetryPolicy
from connector.schema import RecordRef
from connector.sources.base import Source
from connector.sources.files.config import FileSourceConfig
from connector.sources.files.source import FileSource
from connector.sources.salesforce.config import SalesforceSourceConfig
from connector.sources.salesforce.source import SalesforceSource
from connector.sources.vtiger.config import VtigerSourceConfig
from connector.sources.vtiger.source import VtigerSource
from connector.writers.base import Writer
from connector.writers.salesforce.config import SalesforceWriterConfig
from connector.writers.salesforce.writer import SalesforceWriter
from connector.writers.segment_files.config import SegmentFilesConfig
from connector.writers.segment_files.writer import SegmentFilesWriter
from connector.writers.vtiger.config import VtigerWriterConfig
from connector.writers.vtiger.writer import VtigerWriter, split_multi
from connector_sandboxes.salesforce import SalesforceSandbox
from connector_sandboxes.vtiger import VtigerSandbox

BOUNDARY = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
GOOD_DATE = "2027-01-31"
BAD_DATE = "soon"  # what a user types into a text field that the config maps to a date: cannot be mapped
SEGMENT = "renewal"


# -- sources -------------------------------------------------------------------------------------------------


class SourceHarness(ABC):
    """A source plugin over its system. Records carry `last_name` (the value the checks change) and a text
    field mapped to `contract_end`, so one record can hold a value that cannot be mapped."""

    id: ClassVar[str]
    source_name: ClassVar[str]
    object: ClassVar[str]  # the object (module, file) the records live in, as the source names it
    # why this system can never be unreachable (None: it can, and `go_down` makes it so)
    never_unreachable: ClassVar[str | None] = None

    def __init__(self) -> None:
        self.stack = ExitStack()
        self.at_boundary: set[str] = set()  # ids whose last change carries the BOUNDARY instant
        self.live: set[str] = set()

    def __enter__(self) -> SourceHarness:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def build(self, policy: RetryPolicy) -> Source:
        """The source as a run builds it (config model -> `from_config`)."""

    @abstractmethod
    def seed(self, names: list[str]) -> list[str]:
        """One record per last name, oldest first; the last one carries the BOUNDARY instant. Their ids."""

    @abstractmethod
    def change(self, record_id: str, last_name: str) -> None:
        """Give the record a new last name, stamped with the BOUNDARY instant (a late commit at the cursor)."""

    @abstractmethod
    def delete(self, record_id: str) -> None: ...

    @abstractmethod
    def add_unmappable(self, last_name: str) -> str:
        """A record whose `contract_end` field holds BAD_DATE; its id."""

    @abstractmethod
    def run_context(self) -> RunContext:
        """The next run's context: it starts a few seconds after everything the harness did so far."""

    def may_reread(self, changed: bool) -> set[str]:
        """Records a read may hand over again although they did not change: the overlap at the cursor."""
        return set(self.at_boundary)

    def go_down(self) -> None:
        raise NotImplementedError(self.never_unreachable)

    def attempts_while_down(self) -> int:
        """Calls the system refused since `go_down`."""
        raise NotImplementedError(self.never_unreachable)


class SalesforceSourceHarness(SourceHarness):
    id = "salesforce"
    source_name = "sf_contract"
    object = "Contact"

    def start(self) -> None:
        self.clock = BOUNDARY - dt.timedelta(days=1)
        self.sb = self.stack.enter_context(SalesforceSandbox(api_version="59.0", clock=lambda: self.clock))
        self.refused_at_down = 0

    def build(self, policy: RetryPolicy) -> Source:
        cfg = SalesforceSourceConfig.model_validate(
            {
                "name": self.source_name,
                "type": "salesforce",
                "auth": "password",
                "login_url": self.sb.login_url,
                "ca_bundle": self.sb.ca_bundle,
                # External_Id__c is a text field: mapped to a date, one record can hold what is no date (the
                # org itself refuses a bad value in a real date field)
                "objects": {
                    "Contact": {
                        "fields": {
                            "Email": "email",
                            "LastName": "last_name",
                            "External_Id__c": "contract_end",
                        }
                    }
                },
            }
        )
        env = PluginEnv(
            sources=[cfg],
            policy=policy,
            environ={
                "SF_USERNAME": self.sb.username,
                "SF_PASSWORD": self.sb.password,
                "SF_SECURITY_TOKEN": self.sb.security_token,
            },
        )
        return SalesforceSource.from_config(cfg, env)

    def _insert(self, last_name: str, contract_end: str) -> str:
        rid = self.sb.store.insert(
            "Contact",
            {
                "LastName": last_name,
                "Email": f"{last_name.lower()}@sf.example",
                "External_Id__c": contract_end,
            },
        )
        self.live.add(rid)
        return str(rid)

    def seed(self, names: list[str]) -> list[str]:
        ids = []
        for n, name in enumerate(names):
            self.clock = BOUNDARY - dt.timedelta(hours=len(names) - 1 - n)
            ids.append(self._insert(name, GOOD_DATE))
        self.at_boundary.add(ids[-1])
        return ids

    def change(self, record_id: str, last_name: str) -> None:
        self.sb.store.update("Contact", record_id, {"LastName": last_name})
        self.sb.store.touch("Contact", record_id, BOUNDARY)
        self.at_boundary.add(record_id)

    def delete(self, record_id: str) -> None:
        self.sb.store.delete("Contact", record_id)
        self.live.discard(record_id)

    def add_unmappable(self, last_name: str) -> str:
        return self._insert(last_name, BAD_DATE)

    def run_context(self) -> RunContext:
        # the org's clock and ours agree here; the run starts a few seconds after the last write
        self.clock = max(self.clock, BOUNDARY) + dt.timedelta(seconds=5)
        return RunContext(as_of=self.clock.date(), started_at=self.clock)

    def go_down(self) -> None:
        self.sb.faults.retry_after = 0
        self.sb.faults.error_503_rate = 1.0
        self.refused_at_down = self._api_calls()

    def attempts_while_down(self) -> int:
        return self._api_calls() - self.refused_at_down

    def _api_calls(self) -> int:
        # every data API call is answered 503 once down (logins are not data API calls)
        return sum(n for kind, n in self.sb.call_counts().items() if kind != "login")


class VtigerSourceHarness(SourceHarness):
    """vtiger where `sync` works: deletions come from sync's `deleted` list."""

    id = "vtiger-sync"
    source_name = "vt_contract"
    object = "Leads"
    incremental = "auto"

    def start(self) -> None:
        self.sb = VtigerSandbox(username="admin", access_key="sandboxKey123456", custom_fields=True).start()
        self.stack.callback(self.sb.stop)
        self.sb.clock.set(BOUNDARY - dt.timedelta(days=1))
        self.sync_key = self.sb.store.field_by_label("Leads", "Sync Key")
        self.refused_at_down = 0

    def build(self, policy: RetryPolicy) -> Source:
        cfg = VtigerSourceConfig.model_validate(
            {
                "name": self.source_name,
                "type": "vtiger",
                "url": self.sb.url,
                "incremental": self.incremental,
                # "Sync Key" is a text field: mapped to a date, one record can hold what is no date
                "modules": {
                    "Leads": {
                        "fields": {
                            "email": "email",
                            "lastname": "last_name",
                            "label:Sync Key": "contract_end",
                        }
                    }
                },
            }
        )
        return VtigerSource.from_config(cfg, PluginEnv(sources=[cfg], environ=self.sb.env(), policy=policy))

    def _create(self, last_name: str, contract_end: str) -> str:
        record = self.sb.store.create(
            "Leads",
            {"lastname": last_name, "email": f"{last_name.lower()}@vt.example", self.sync_key: contract_end},
        )
        self.live.add(record["id"])
        return record["id"]

    def seed(self, names: list[str]) -> list[str]:
        ids = []
        for n, name in enumerate(names):
            self.sb.clock.set(BOUNDARY - dt.timedelta(hours=len(names) - 1 - n))
            ids.append(self._create(name, GOOD_DATE))
        self.at_boundary.add(ids[-1])
        return ids

    def change(self, record_id: str, last_name: str) -> None:
        now = self.sb.clock.now()
        self.sb.clock.set(BOUNDARY)
        self.sb.store.revise(record_id, {"lastname": last_name})
        self.sb.clock.set(now)
        self.at_boundary.add(record_id)

    def delete(self, record_id: str) -> None:
        self.sb.store.delete(record_id)
        self.live.discard(record_id)

    def add_unmappable(self, last_name: str) -> str:
        return self._create(last_name, BAD_DATE)

    def run_context(self) -> RunContext:
        started = max(self.sb.clock.now(), BOUNDARY) + dt.timedelta(seconds=5)
        self.sb.clock.set(started)
        return RunContext(as_of=started.date(), started_at=started)

    def go_down(self) -> None:
        self.sb.faults.fail_next = 10**6  # every call an empty HTTP 500 from now on
        self.refused_at_down = sum(self.sb.faults.injected.values())

    def attempts_while_down(self) -> int:
        return sum(self.sb.faults.injected.values()) - self.refused_at_down


class VtigerQuerySourceHarness(VtigerSourceHarness):
    """Stock vtiger 8.2 on PHP 8 (`sync` broken): query paging, deletions through id reconciliation."""

    id = "vtiger-query"

    def start(self) -> None:
        super().start()
        self.sb.faults.stock_php8()


class FileSourceHarness(SourceHarness):
    """An enrichment CSV in a folder; the file is the system, rewritten whole on every change."""

    id = "file"
    source_name = "people_file"
    object = "people.csv"
    never_unreachable = (
        "a file source reads a local folder: there is no remote system to be down, and a missing file is a "
        "config error by design (FileSource.files)"
    )

    def start(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="contract-files-"))
        self.stack.callback(shutil.rmtree, self.dir, ignore_errors=True)
        self.rows: dict[str, dict[str, str]] = {}
        self.next_id = 1

    def build(self, policy: RetryPolicy) -> Source:
        cfg = FileSourceConfig.model_validate(
            {
                "name": self.source_name,
                "type": "file",
                "path": self.object,
                "id_column": "id",
                "fields": {"email": "email", "last_name": "last_name", "contract_end": "contract_end"},
            }
        )
        return FileSource.from_config(cfg, PluginEnv(base_dir=self.dir, policy=policy))

    def _save(self) -> None:
        out = io.StringIO(newline="")
        writer = csv.DictWriter(out, ["id", "email", "last_name", "contract_end"], delimiter=";")
        writer.writeheader()
        writer.writerows(self.rows.values())
        (self.dir / self.object).write_text(out.getvalue(), encoding="utf-8")

    def _add(self, last_name: str, contract_end: str) -> str:
        rid = f"P{self.next_id}"
        self.next_id += 1
        self.rows[rid] = {
            "id": rid,
            "email": f"{last_name.lower()}@file.example",
            "last_name": last_name,
            "contract_end": contract_end,
        }
        self.live.add(rid)
        self._save()
        return rid

    def seed(self, names: list[str]) -> list[str]:
        return [self._add(name, GOOD_DATE) for name in names]

    def change(self, record_id: str, last_name: str) -> None:
        self.rows[record_id]["last_name"] = last_name
        self._save()

    def delete(self, record_id: str) -> None:
        del self.rows[record_id]
        self.live.discard(record_id)
        self._save()

    def add_unmappable(self, last_name: str) -> str:
        return self._add(last_name, BAD_DATE)

    def run_context(self) -> RunContext:
        return RunContext(as_of=BOUNDARY.date(), started_at=BOUNDARY)

    def may_reread(self, changed: bool) -> set[str]:
        # a snapshot source: a changed file is read whole again, an unchanged one not at all
        return set(self.live) if changed else set()


# -- writers -------------------------------------------------------------------------------------------------


class WriterHarness(ABC):
    """A writer plugin over its system, with people who each have one record there."""

    id: ClassVar[str]
    target_name: ClassVar[str]
    source_name: ClassVar[str | None] = None
    label_object: ClassVar[str | None] = None  # the object the checks label; None: the writer takes no labels
    # why one item can never fail alone (None: it can, `break_record` makes it so)
    never_fails_alone: ClassVar[str | None] = None
    # label changes (or segment adds, for writers without labels) that take more than one write call
    outage_batch: ClassVar[int] = 6

    def __init__(self) -> None:
        self.stack = ExitStack()
        self.keys: dict[str, str] = {}  # record id -> person key
        self.count = 0
        self.built: Writer | None = None

    def __enter__(self) -> WriterHarness:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def build(self, policy: RetryPolicy) -> Writer:
        """The writer as a run builds it (config model -> `from_config`); kept as `built`."""

    @abstractmethod
    def new_record(self, last_name: str) -> str:
        """Create one record in the system; its id."""

    def people(self, n: int) -> list[Member]:
        members = []
        for _ in range(n):
            self.count += 1
            name = f"Person{self.count}"
            rid = self.new_record(name)
            key = f"person-{self.count}"
            self.keys[rid] = key
            ref = RecordRef(self.source_name or "people", self.label_object or "Person", rid)
            members.append(
                Member(key, (ref,), f"{name.lower()}@example.com", None, name, None, "lead", "Lead")
            )
        return members

    def label_of(self, ref: RecordRef) -> str | None:
        raise NotImplementedError("this writer takes no labels")

    @abstractmethod
    def members(self, segment: str) -> Counter[str]:
        """Person keys holding the segment in the system, each as often as the system holds them."""

    def write_calls(self) -> int | None:
        """API calls the system counted so far (None: the system counts none)."""
        return None

    def break_record(self, member: Member) -> None:
        raise NotImplementedError(self.never_fails_alone)

    @abstractmethod
    def go_down_after_writes(self, n: int) -> None:
        """The system stops answering once `n` more write calls have landed."""

    def labelled(self, refs: list[RecordRef]) -> dict[str, str | None]:
        return {str(ref): self.label_of(ref) for ref in refs}


class SalesforceWriterHarness(WriterHarness):
    id = "salesforce"
    target_name = "sf_out"
    source_name = "sf_contract"
    label_object = "Lead"
    outage_batch = 250  # two sObject Collections calls of at most 200 records

    def start(self) -> None:
        self.sb = self.stack.enter_context(SalesforceSandbox(api_version="59.0"))
        self.campaign = self.sb.store.insert("Campaign", {"Name": "Contract Renewal", "IsActive": True})
        self.writes_left: int | None = None

    def build(self, policy: RetryPolicy) -> Writer:
        source = SalesforceSourceConfig.model_validate(
            {
                "name": self.source_name,
                "type": "salesforce",
                "auth": "password",
                "login_url": self.sb.login_url,
                "ca_bundle": self.sb.ca_bundle,
                "objects": {"Lead": {"fields": {"Email": "email"}}},
            }
        )
        cfg = SalesforceWriterConfig.model_validate(
            {
                "name": self.target_name,
                "type": "salesforce",
                "source": self.source_name,
                "label_field": {"Lead": "Funnel_Stage__c"},
                "campaigns": {SEGMENT: {"campaign": "Contract Renewal", "member_status": "Sent"}},
            }
        )
        env = PluginEnv(
            sources=[source],
            policy=policy,
            environ={
                "SF_USERNAME": self.sb.username,
                "SF_PASSWORD": self.sb.password,
                "SF_SECURITY_TOKEN": self.sb.security_token,
            },
        )
        writer = SalesforceWriter.from_config(cfg, env)
        # a response hook: the outage starts right after a chosen write call has been answered
        writer.client.http.hooks["response"].append(self._count_write)
        self.built = writer
        return writer

    def new_record(self, last_name: str) -> str:
        return str(
            self.sb.store.insert(
                "Lead", {"LastName": last_name, "Company": "Acme", "Email": f"{last_name.lower()}@x.example"}
            )
        )

    def label_of(self, ref: RecordRef) -> str | None:
        record = self.sb.store.get("Lead", ref.id)
        assert record is not None, ref
        return record["Funnel_Stage__c"]

    def members(self, segment: str) -> Counter[str]:
        assert segment == SEGMENT
        rows = [r for r in self.sb.store.all("CampaignMember") if r["CampaignId"] == self.campaign]
        return Counter(self.keys[r["LeadId"] or r["ContactId"]] for r in rows)

    def write_calls(self) -> int | None:
        return sum(self.sb.call_counts().values())  # a login is a call the writer reports too

    def break_record(self, member: Member) -> None:
        self.sb.store.delete("Lead", member.refs[0].id)

    def go_down_after_writes(self, n: int) -> None:
        self.writes_left = n

    def _count_write(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if self.writes_left is None or "/composite/sobjects" not in response.url:
            return
        self.writes_left -= 1
        if self.writes_left <= 0:
            self.writes_left = None
            self.sb.faults.retry_after = 0
            self.sb.faults.error_503_rate = 1.0


class VtigerWriterHarness(WriterHarness):
    id = "vtiger"
    target_name = "vt_out"
    source_name = "vt_contract"
    label_object = "Leads"

    def start(self) -> None:
        self.sb = VtigerSandbox(username="admin", access_key="sandboxKey123456", custom_fields=True).start()
        self.stack.callback(self.sb.stop)
        self.label_field = self.sb.store.field_by_label("Leads", "Funnel stage")
        self.segments_field = self.sb.store.field_by_label("Leads", "Segments")

    def build(self, policy: RetryPolicy) -> Writer:
        source = VtigerSourceConfig.model_validate(
            {
                "name": self.source_name,
                "type": "vtiger",
                "url": self.sb.url,
                "modules": {"Leads": {"fields": {"email": "email"}}},
            }
        )
        cfg = VtigerWriterConfig.model_validate(
            {
                "name": self.target_name,
                "type": "vtiger",
                "source": self.source_name,
                "label_field": {"Leads": "label:Funnel stage"},
                "segments_field": {"Leads": "label:Segments"},
                "concurrency": 1,  # one write at a time: an outage after n writes lands exactly n
                "campaigns": {
                    SEGMENT: {"campaign": "Renewal 2027", "create": True, "closingdate": "2027-12-31"}
                },
            }
        )
        writer = VtigerWriter.from_config(
            cfg, PluginEnv(sources=[source], environ=self.sb.env(), policy=policy)
        )
        self.built = writer
        return writer

    def new_record(self, last_name: str) -> str:
        record = self.sb.store.create(
            "Leads", {"lastname": last_name, "email": f"{last_name.lower()}@x.example"}
        )
        return record["id"]

    def label_of(self, ref: RecordRef) -> str | None:
        record = self.sb.store.get(ref.id)
        assert record is not None, ref
        return record[self.label_field] or None

    def members(self, segment: str) -> Counter[str]:
        assert segment == SEGMENT
        held: Counter[str] = Counter()
        for record in self.sb.store.all("Leads"):
            times = split_multi(record.get(self.segments_field)).count("Renewal 2027")
            if times and record["id"] in self.keys:
                held[self.keys[record["id"]]] += times
        return held

    def write_calls(self) -> int | None:
        return sum(self.sb.calls.values())

    def break_record(self, member: Member) -> None:
        self.sb.store.delete(member.refs[0].id)

    def go_down_after_writes(self, n: int) -> None:
        # a write is one `revise` (a label, or a member's segments field); a campaign relation follows its
        # member's revise, so an outage between the two would leave half a member: not what is tested here
        self.sb.faults.error_500_ops = {"revise"}
        self.sb.faults.down_after = n


class SegmentFilesWriterHarness(WriterHarness):
    """Segment CSV files in a folder for marketers: the folder is the system."""

    id = "segment_files"
    target_name = "files_out"
    never_fails_alone = "a segment file is written whole: one member cannot fail while the others land"

    def start(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="contract-segments-"))
        self.stack.callback(shutil.rmtree, self.dir, ignore_errors=True)
        self.out = self.dir / "out"

    def build(self, policy: RetryPolicy) -> Writer:
        cfg = SegmentFilesConfig.model_validate(
            {
                "name": self.target_name,
                "type": "segment_files",
                "directory": "out",
                "columns": ["person_key", "email"],
            }
        )
        env = PluginEnv(base_dir=self.dir, policy=policy, segment_targets={SEGMENT: [self.target_name]})
        writer = SegmentFilesWriter.from_config(cfg, env)
        self.built = writer
        return writer

    def new_record(self, last_name: str) -> str:
        return last_name  # a file holds no records of its own: the person is the record

    def members(self, segment: str) -> Counter[str]:
        path = self.out / f"{segment}.csv"
        if not path.is_file():
            return Counter()
        text = path.read_bytes().decode("utf-8-sig")
        return Counter(
            row["person_key"] for row in csv.DictReader(io.StringIO(text, newline=""), delimiter=";")
        )

    def go_down_after_writes(self, n: int) -> None:
        # the folder is gone and a file sits in its place (an unmounted share, say): nothing can be written
        assert n == 0, "a segment file is one write: the folder can only be gone before it"
        shutil.rmtree(self.out, ignore_errors=True)
        self.out.write_text("not a folder")


# The suite runs every check over every harness listed here: a new plugin is one harness and one line.
SOURCE_HARNESSES: list[type[SourceHarness]] = [
    SalesforceSourceHarness,
    VtigerSourceHarness,
    VtigerQuerySourceHarness,
    FileSourceHarness,
]
WRITER_HARNESSES: list[type[WriterHarness]] = [
    SalesforceWriterHarness,
    VtigerWriterHarness,
    SegmentFilesWriterHarness,
]
