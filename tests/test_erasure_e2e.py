"""Erasure on request end to end over HTTP: the demo world runs against the Salesforce and vtiger sandboxes,
one win-back member is forgotten (`connector forget`), and they are gone from the state and every segment file
(the change logs too); when their records come back in the next read (edited in the CRM, the competitor file
re-read), they never re-enter a segment, and no event is queued for them."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from structlog.testing import capture_logs

from connector.cli import cli
from connector.config import load_config
from connector.pipeline import Runner
from connector.retry import RetryPolicy
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
