"""Erasure on request end to end over HTTP: the demo world runs against the Salesforce and vtiger sandboxes,
one win-back member is forgotten (`connector forget`), and they are gone from the state and every segment file
(the change logs too); when their records come back in the next read (edited in the CRM, the competitor file
re-read), they never re-enter a segment, and no event is queued for them."""

from __future__ import annotations

import datetime as dt
import functools
import json
import sqlite3
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from structlog.testing import capture_logs

from connector import state_dictionaries
from connector.cli import cli
from connector.config import load_config
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector.state_codec import decode_snapshot
from connector.state_guard import open_sqlite
from connector_sandboxes.demo.config_template import DEMO_CONFIG
from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import World as SeededWorld
from connector_sandboxes.demo.world import seeded_world

pytestmark = [pytest.mark.e2e, pytest.mark.reliability("Guards against wrong writes")]
AS_OF = dt.date(2026, 11, 23)
# the events feed is on, so "no event for them" is checked against a real outbox
EVENTS_YAML = "\nevents:\n  source: /connector/demo\n  file: events/feed.jsonl\n"


@dataclass
class World:
    seeded: SeededWorld
    runner: Runner
    root: Path
    state_path: Path

    def run(self) -> int:
        return self.runner.execute("run", AS_OF).exit_code

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        db = sqlite3.connect(self.state_path)
        try:
            return list(db.execute(sql, args))
        finally:
            db.close()

    def file_texts(self) -> dict[str, str]:
        return {
            p.name: p.read_text(encoding="utf-8-sig") for p in sorted((self.root / "segments").glob("*.csv"))
        }


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    people = generate(120, AS_OF, seed=5)
    with seeded_world(tmp_path, people, AS_OF, seed=5, config_text=DEMO_CONFIG + EVENTS_YAML) as seeded:
        for name, value in seeded.environ.items():
            monkeypatch.setenv(name, value)  # the CLI's `forget` reads the process environment
        monkeypatch.delenv("CONNECTOR_ERASURE_SALT", raising=False)
        config = load_config(seeded.config_path)
        runner = Runner(config, environ=seeded.environ, policy=RetryPolicy(attempts=12, sleep=lambda s: None))
        yield World(seeded, runner, tmp_path, config.state_path())


def _win_back_member(world: World) -> tuple[str, str]:
    """(person key, e-mail) of a win-back member with a record in a CRM."""
    rows = world.query(
        "SELECT m.person_key, i.merge_key FROM memberships m JOIN identity i ON i.person_key = m.person_key "
        "WHERE m.target='marketing_files' AND m.segment='win-back' AND i.merge_key LIKE 'email:%' "
        "ORDER BY m.person_key"
    )
    for key, merge_key in rows:
        refs = {r[0] for r in world.query("SELECT merge_key FROM identity WHERE person_key=?", key)}
        if any(r.startswith(("sf_prod:", "vt_main:")) for r in refs):
            return str(key), str(merge_key)[len("email:") :]
    raise AssertionError("the seeded world has no win-back member with a CRM record")


def test_an_erased_person_is_gone_everywhere_and_stays_out_after_the_next_read(world: World) -> None:
    assert world.run() == 3  # the demo files carry malformed rows: partial
    key, email = _win_back_member(world)
    assert email in world.file_texts()["win-back.csv"].lower()
    sf_records = [r[0] for r in world.query("SELECT merge_key FROM identity WHERE person_key=?", key)]

    result = CliRunner().invoke(cli, ["forget", "-c", str(world.seeded.config_path), email.upper(), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["people"] == 1 and report["records"] >= 2 and report["file_rows"] >= 2

    def assert_gone() -> None:
        for table in ("people", "transitions", "labels", "memberships", "membership_records", "event_outbox"):
            assert world.query(f"SELECT COUNT(*) FROM {table} WHERE person_key=?", key) == [(0,)], table
        assert world.query(
            "SELECT COUNT(*) FROM identity WHERE person_key=? OR merge_key=?", key, f"email:{email}"
        )[0] == (0,)
        assert world.query("SELECT COUNT(*) FROM facts WHERE instr(lower(payload), ?) > 0", email) == [(0,)]
        texts = {
            **world.file_texts(),
            "feed.jsonl": (world.root / "events" / "feed.jsonl").read_text("utf-8"),
        }
        for name, text in texts.items():
            assert email not in text.lower(), name
            assert key not in text, name
        # what is kept says nothing about who it was
        dump = "\n".join(
            str(row)
            for t in ("suppressions", "erasures", "meta", "runs")
            for row in world.query(f"SELECT * FROM {t}")
        ).lower()
        assert email not in dump and key not in dump

    assert_gone()
    assert len(world.query("SELECT hash FROM suppressions")) == 1

    # their records come back: edited in both CRMs (so the incremental reads return them), the files re-read
    crm_records = [k for k in sf_records if k.startswith(("sf_prod:", "vt_main:"))]
    assert crm_records
    for merge_key in crm_records:
        source, obj, rid = merge_key.split(":", 2)
        if source == "sf_prod" and obj in ("Lead", "Contact"):
            world.seeded.sf.store.update(obj, rid, {"FirstName": "Back"})
        elif source == "vt_main" and obj in ("Leads", "Contacts"):
            world.seeded.vt.store.update(rid, {"firstname": "Back"})
    before = world.query("SELECT COUNT(*) FROM event_outbox")
    with capture_logs() as logs:
        assert world.run() == 3
    # the read did bring their records back, and they were dropped before identity resolution
    dropped = [e for e in logs if e["event"] == "erasure.suppressed.dropped"]
    assert dropped and dropped[0]["records"] >= len(crm_records)
    assert_gone()
    assert world.query("SELECT COUNT(*) FROM event_outbox") == before
    feed = (world.root / "events" / "feed.jsonl").read_text(encoding="utf-8")
    assert key not in feed and email not in feed.lower()

    explained = CliRunner().invoke(cli, ["explain", "-c", str(world.seeded.config_path), email])
    assert explained.exit_code == 0, explained.output
    assert explained.stdout.strip().startswith("suppressed")
    assert email not in explained.stdout


# --- what the CRMs do (erasure:), the bytes left behind, and a CRM down during the erasure -------------------

ERASURE_YAML = "\nerasure:\n  crm_action: clear\n  targets:\n    sf_out: remove_from_campaigns\n"


@pytest.fixture
def crm_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    people = generate(120, AS_OF, seed=5)
    text = DEMO_CONFIG + EVENTS_YAML + ERASURE_YAML
    with seeded_world(tmp_path, people, AS_OF, seed=5, config_text=text) as seeded:
        for name, value in seeded.environ.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("CONNECTOR_ERASURE_SALT", raising=False)
        # `forget` builds its writers through a Runner (imported when the command runs): the same retry
        # policy, without real sleeps
        no_sleep = RetryPolicy(attempts=3, sleep=lambda s: None)
        monkeypatch.setattr("connector.pipeline.Runner", functools.partial(Runner, policy=no_sleep))
        config = load_config(seeded.config_path)
        runner = Runner(config, environ=seeded.environ, policy=RetryPolicy(attempts=12, sleep=lambda s: None))
        yield World(seeded, runner, tmp_path, config.state_path())


@dataclass
class Erased:
    key: str
    email: str
    names: tuple[str, str]
    sf: list[tuple[str, str]]  # (object, id) of their Leads and Contacts
    vt: list[str]  # ids of their vtiger Leads and Contacts
    members: list[str]  # the CampaignMember Ids connector created for them


def _erasable(world: World) -> list[Erased]:
    """Two people to erase: one with Salesforce campaign members connector made, one in a vtiger segment (the
    demo world has no one who is both). Each is renamed in the CRMs to a name no one else has and read again,
    so finding the name in a file can only mean them."""
    db = sqlite3.connect(world.state_path)
    try:
        snapshots = {k: decode_snapshot(s) for k, s in db.execute("SELECT person_key, snapshot FROM people")}
        made = {
            str(k): [
                str(r)
                for (r,) in db.execute(
                    "SELECT record_id FROM membership_records WHERE target='sf_out' AND person_key=?", (k,)
                )
            ]
            for k in snapshots
        }
        in_vtiger = {
            str(k) for (k,) in db.execute("SELECT person_key FROM memberships WHERE target='vt_out'")
        }
    finally:
        db.close()

    def records(key: str, source: str, objects: tuple[str, ...]) -> list[tuple[str, str]]:
        refs = [r.split(":", 2) for r in snapshots[key]["refs"]]
        return [(o, i) for s, o, i in refs if s == source and o in objects]

    keys = sorted(k for k in snapshots if snapshots[k]["values"].get("email"))
    sf_key = next(k for k in keys if made[k])
    vt_key = next(
        k for k in keys if k in in_vtiger and k != sf_key and records(k, "vt_main", ("Leads", "Contacts"))
    )
    chosen = []
    for n, key in enumerate((sf_key, vt_key)):
        first, last = f"Zerbinetta{n}", f"Quaxleyson{n}"
        sf = records(key, "sf_prod", ("Lead", "Contact"))
        vt = [i for _, i in records(key, "vt_main", ("Leads", "Contacts"))]
        for obj, rid in sf:
            world.seeded.sf.store.update(obj, rid, {"FirstName": first, "LastName": last})
        for rid in vt:
            world.seeded.vt.store.update(rid, {"firstname": first, "lastname": last})
        chosen.append(Erased(key, str(snapshots[key]["values"]["email"]), (first, last), sf, vt, made[key]))
    assert world.run() == 3  # their new names read in
    return chosen


def _output_bytes(world: World) -> dict[str, bytes]:
    """Every file connector wrote: the state (with its log), segment files and change logs, the event file."""
    out = {}
    for path in sorted(world.root.rglob("*")):
        if path.is_file() and path.parent.name != "files":  # files/ holds the demo's input exports
            data = path.read_bytes()
            out[str(path.relative_to(world.root))] = _inflated(data) if ".sqlite" in path.name else data
            if path.name.endswith(".sqlite"):
                out[str(path.relative_to(world.root))] += _zstd_rows(path)
    return out


def _zstd_rows(path: Path) -> bytes:
    """Every dictionary the state holds, and what every zstd frame in its rows holds (state_codec.py: a
    magicless frame cannot be found in the file's bytes as a zlib stream can, so each row is read)."""
    db = sqlite3.connect(path)
    try:
        found = [bytes(c) for (c,) in db.execute("SELECT content FROM dictionaries")]
        for dict_id, content in db.execute("SELECT id, content FROM dictionaries"):
            state_dictionaries.register(dict_id, bytes(content))
        for sql in (
            "SELECT payload FROM facts",
            "SELECT decision FROM people UNION ALL SELECT snapshot FROM people",
            "SELECT reason FROM transitions",
        ):
            for (blob,) in db.execute(sql):
                if isinstance(blob, bytes) and blob[:1] != b"\x78":
                    found.append(state_dictionaries.decompress(blob))
    finally:
        db.close()
    return b"".join(found)


def _inflated(data: bytes) -> bytes:
    """The state keeps records, decisions and snapshots zlib'd (state_codec.py): the file's bytes followed by
    what every zlib stream in them holds, live row or free page alike, so a name inside one is found too."""
    parts = [data]
    start = data.find(b"\x78\x9c")
    while start != -1:
        try:
            parts.append(zlib.decompressobj().decompress(data[start : start + 65536]))
        except zlib.error:
            pass  # two bytes that only look like a zlib header
        start = data.find(b"\x78\x9c", start + 1)
    return b"".join(parts)


def _vt_values(world: World, record_id: str) -> tuple[str, str]:
    store = world.seeded.vt.store
    record = store.get(record_id)
    assert record is not None
    module = "Leads" if record_id.startswith("10x") else "Contacts"
    return record[store.field_by_label(module, "Funnel stage")], record[
        store.field_by_label(module, "Segments")
    ]


def _without_secure_delete(path: Path) -> sqlite3.Connection:
    """A state connection as SQLite builds without SQLITE_SECURE_DELETE open it (upstream's default: python.org
    and Homebrew builds; Debian's turns it on): deleted rows stay in the file's free pages."""
    db = open_sqlite(path)
    db.execute("PRAGMA secure_delete=OFF")
    return db


def test_forget_clears_the_crms_as_configured_and_leaves_no_trace_in_any_file(
    crm_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = crm_world
    monkeypatch.setattr("connector.state.open_sqlite", _without_secure_delete)
    # the demo's 120 people are enough for dictionaries (at 60 rows): the scan below reads them too
    monkeypatch.setattr(state_dictionaries, "MIN_SAMPLES", 60)
    assert world.run() == 3
    assert {k for (k,) in world.query("SELECT kind FROM dictionaries")} >= {"decision", "snapshot"}
    people = _erasable(world)
    sf_records = [r for p in people for r in p.sf]
    vt_records = [r for p in people for r in p.vt]
    members = [m for p in people for m in p.members]
    assert all(world.seeded.sf.store.get(o, i)["Funnel_Stage__c"] for o, i in sf_records)
    assert any(_vt_values(world, i)[1] for i in vt_records)
    assert all(p.names[1].encode() in _output_bytes(world)["state.sqlite"] for p in people)

    emails = [p.email for p in people]
    result = CliRunner().invoke(cli, ["forget", "-c", str(world.seeded.config_path), *emails, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    sf, vt, files = (report["targets"][t] for t in ("sf_out", "vt_out", "marketing_files"))
    assert sf["action"] == "remove_from_campaigns" and sf["pending"] == 0
    assert sf["done"] == {"labels_cleared": len(sf_records), "campaign_members_deleted": len(members)}
    assert (
        vt["action"] == "clear" and vt["done"] == {"records_cleared": len(vt_records)} and vt["pending"] == 0
    )
    assert files["action"] is None and files["done"]["file_rows"] >= 2
    assert report["people"] == 2 and report["pending"] == 0

    # Salesforce: label null, the member rows connector made gone; vtiger: label and managed segments cleared
    for obj, rid in sf_records:
        assert world.seeded.sf.store.get(obj, rid)["Funnel_Stage__c"] is None
    for row_id in members:
        row = world.seeded.sf.store.get("CampaignMember", row_id)
        assert row is None or row["IsDeleted"]
    for rid in vt_records:
        assert _vt_values(world, rid) == ("", "")

    # not a byte of them anywhere connector writes: state (vacuumed, log emptied), segment files, event file
    for name, data in _output_bytes(world).items():
        lowered = data.lower()
        for p in people:
            for needle in (p.email, p.names[0].lower(), p.names[1].lower(), p.key.lower()):
                assert needle.encode() not in lowered, f"{needle} in {name}"
    (log,) = world.query("SELECT summary FROM erasures")
    assert json.loads(str(log[0]))["targets"]["sf_out"]["done"]["labels_cleared"] == len(sf_records)

    # their records come back in the next read: dropped, so nothing is labelled or segmented again
    for obj, rid in sf_records:
        world.seeded.sf.store.update(obj, rid, {"FirstName": "Back"})
    for rid in vt_records:
        world.seeded.vt.store.update(rid, {"firstname": "Back"})
    summary = world.runner.execute("run", AS_OF)
    assert summary.exit_code == 3 and summary.suppressed >= len(sf_records) + len(vt_records)
    for obj, rid in sf_records:
        assert world.seeded.sf.store.get(obj, rid)["Funnel_Stage__c"] is None
    for rid in vt_records:
        assert _vt_values(world, rid) == ("", "")
    in_campaigns = {
        r.get("LeadId") or r.get("ContactId") for r in world.seeded.sf.store.all("CampaignMember")
    }
    assert not in_campaigns & {rid for _, rid in sf_records}
    for p in people:
        assert world.query("SELECT COUNT(*) FROM memberships WHERE person_key=?", p.key) == [(0,)]
    feed = (world.root / "events" / "feed.jsonl").read_text(encoding="utf-8").lower()
    assert not any(p.email in feed or p.key.lower() in feed for p in people)
    assert not any(rid.lower() in feed for _, rid in sf_records)


def test_a_crm_down_during_forget_keeps_its_action_and_the_next_run_does_it(crm_world: World) -> None:
    world = crm_world
    assert world.run() == 3
    who = _erasable(world)[0]
    world.seeded.sf.faults.error_503_rate = 1.0  # Salesforce answers nothing but 503 during the erasure

    result = CliRunner().invoke(cli, ["forget", "-c", str(world.seeded.config_path), who.email, "--json"])
    assert result.exit_code == 3, result.output  # the erasure is done; a CRM part of it is not
    report = json.loads(result.stdout)
    assert report["targets"]["sf_out"]["pending"] == len(who.sf) + len(who.members)
    assert report["targets"]["vt_out"]["pending"] == 0 and report["pending"] == 1
    # the state part happened all the same, and what is kept to try again is record ids only
    assert world.query("SELECT COUNT(*) FROM people WHERE person_key=?", who.key) == [(0,)]
    (work,) = world.query("SELECT target, action, work FROM erasure_pending")
    assert work[:2] == ("sf_out", "remove_from_campaigns")
    kept = json.loads(str(work[2]))
    assert sorted(kept["refs"]) == sorted(f"sf_prod:{o}:{i}" for o, i in who.sf)
    assert sorted(i for ids in kept["memberships"].values() for i in ids) == sorted(who.members)
    assert who.email not in str(work).lower() and who.key not in str(work)
    assert all(world.seeded.sf.store.get(o, i)["Funnel_Stage__c"] for o, i in who.sf)

    world.seeded.sf.faults.reset()  # back up: the next run does what the erasure could not
    summary = world.runner.execute("run", AS_OF)
    assert summary.erasure_pending == 0
    assert any(n.startswith("erasure: sf_out (remove_from_campaigns) tried again") for n in summary.notes)
    assert world.query("SELECT COUNT(*) FROM erasure_pending") == [(0,)]
    for obj, rid in who.sf:
        assert world.seeded.sf.store.get(obj, rid)["Funnel_Stage__c"] is None
    for row_id in who.members:
        row = world.seeded.sf.store.get("CampaignMember", row_id)
        assert row is None or row["IsDeleted"]
