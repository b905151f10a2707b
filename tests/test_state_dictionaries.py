"""The state's zstd dictionary codec (issue 10 item 2: state under 1 KB a person): rows of each kind compressed
with a dictionary trained on redacted rows and kept in the state (migration 11); zlib rows and plain text
written before stay readable; a codec change is never seen as a change of a person; no dictionary holds
anyone's own values."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spine_helpers import AS_OF, Project
from structlog.testing import capture_logs

from connector import state_dictionaries
from connector.fact_index import content_hash
from connector.pipeline import Runner
from connector.schema import Fact, FactKind, RecordRef
from connector.state import StateStore
from connector.state_codec import (
    decode_decision,
    decode_fact,
    decode_reason,
    decode_snapshot,
    encode_decision,
    encode_snapshot,
)
from connector.state_migrations import SCHEMA_VERSION

pytestmark = pytest.mark.reliability("State")

V10_STATE = Path(__file__).parent / "data" / "state-v10.sqlite"
FEW = 60


@pytest.fixture
def few_samples() -> Iterator[None]:
    """Dictionaries trained after 60 rows of a kind (values 20 of them share survive redaction)."""
    before = state_dictionaries.MIN_SAMPLES
    state_dictionaries.MIN_SAMPLES = FEW
    try:
        yield
    finally:
        state_dictionaries.MIN_SAMPLES = before


def _store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state.sqlite")


def _train(store: StateStore, snapshots: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> None:
    """Encode enough rows of each kind that the codec trains its dictionary (they are not stored)."""
    for _ in range(state_dictionaries.MIN_SAMPLES // max(len(snapshots), 1) + 1):
        for snapshot in snapshots:
            store.codec.encode_snapshot(snapshot)
        for decision in decisions:
            store.codec.encode_decision(decision)


def _person(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    email = f"person{i}@crowd{i % 3}.example"
    snapshot = {
        "refs": [f"crm:people.csv:{email}"],
        "values": {"email": email, "first_name": f"First{i}", "lead_status": ["new", "working"][i % 2]},
        "extra": {},
        "provenance": {"email": f"crm:people.csv:{email}", "competitor": f"contracts:c.csv:{email}"},
    }
    decision = {"stage": "lead", "path_stage": "lead", "rule": "interest", "matched": [f"x={i % 4}"]}
    return snapshot, decision


# ---- round trips --------------------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_values = st.dictionaries(
    st.sampled_from(["email", "first_name", "last_name", "lead_status", "web_visits"]),
    st.one_of(_text, st.integers(-(10**9), 10**9), st.booleans(), st.none()),
    max_size=5,
)
_refs = st.lists(st.builds("crm:people.csv:{}".format, _text), max_size=3, unique=True)


@st.composite
def _snapshots(draw: st.DrawFn) -> dict[str, Any]:
    refs = draw(_refs)
    values = draw(_values)
    attached = draw(st.lists(st.builds("contracts:c.csv:{}".format, _text), max_size=2))
    named = refs + attached
    provenance = {k: draw(st.sampled_from(named)) for k in values} if named else {}
    return {"refs": refs, "values": values, "extra": draw(_values), "provenance": provenance}


_decisions = st.fixed_dictionaries(
    {
        "stage": st.sampled_from(["lead", "prospect", "suspect"]),
        "path_stage": st.sampled_from(["lead", "prospect", None]),
        "rule": st.one_of(st.none(), _text),
        "matched": st.lists(_text, max_size=3),
        "held": st.booleans(),
        "reentry": st.booleans(),
    }
)


@settings(max_examples=60, deadline=None)
@given(snapshots=st.lists(_snapshots(), min_size=1, max_size=12), decisions=st.lists(_decisions, min_size=1))
def test_snapshots_and_decisions_round_trip_before_and_after_a_dictionary(
    tmp_path_factory: pytest.TempPathFactory, snapshots: list[dict[str, Any]], decisions: list[dict[str, Any]]
) -> None:
    store = _store(tmp_path_factory.mktemp("codec"))
    before = state_dictionaries.MIN_SAMPLES
    state_dictionaries.MIN_SAMPLES = FEW
    try:
        _train(store, [_person(i)[0] for i in range(FEW)], [_person(i)[1] for i in range(FEW)])
        zlibbed = [encode_snapshot(s) for s in snapshots]  # as version 10 wrote them
        assert {k for (k,) in store.db.execute("SELECT kind FROM dictionaries")} == {"snapshot", "decision"}
        for snapshot, old in zip(snapshots, zlibbed, strict=True):
            new = store.codec.encode_snapshot(snapshot)
            assert new[:1] != b"\x78" and old[:1] == b"\x78"
            assert decode_snapshot(new) == decode_snapshot(old) == snapshot
            assert store.codec.encode_snapshot(snapshot) == new  # deterministic for its dictionary
            assert store.codec.settle("snapshot", old) == new  # a sampled zlib row settles to the same bytes
        for decision in decisions:
            new = store.codec.encode_decision(decision)
            assert decode_decision(new) == decode_decision(encode_decision(decision)) == decision
    finally:
        state_dictionaries.MIN_SAMPLES = before
        store.close()


@settings(max_examples=40, deadline=None)
@given(reasons=st.lists(_text, min_size=1, max_size=5))  # fewer than the FEW rows a dictionary waits for
def test_reasons_round_trip_as_text_then_compressed(
    tmp_path_factory: pytest.TempPathFactory, reasons: list[str]
) -> None:
    store = _store(tmp_path_factory.mktemp("reasons"))
    before = state_dictionaries.MIN_SAMPLES
    state_dictionaries.MIN_SAMPLES = FEW
    try:
        early = [store.codec.encode_reason(r) for r in reasons]
        assert early == reasons  # text while the reasons have no dictionary
        for i in range(FEW):
            store.codec.encode_reason(f"rule interest proposed lead [lead_status='x{i % 2}']")
        for reason in reasons:
            stored = store.codec.encode_reason(reason)
            assert isinstance(stored, bytes) and decode_reason(stored) == reason
        assert [decode_reason(e) for e in early] == reasons
        assert [decode_reason(store.codec.settle("reason", e)) for e in early] == reasons
    finally:
        state_dictionaries.MIN_SAMPLES = before
        store.close()


def test_fact_payloads_round_trip_with_their_source_objects_dictionary(
    tmp_path: Path, few_samples: None
) -> None:
    facts = [
        Fact(
            ref=RecordRef("crm", "people.csv", f"p{i}@x{i % 2}.example"),
            kind=FactKind.PERSON,
            modified_at=dt.datetime(2026, 11, 1, 12, i % 60, tzinfo=dt.UTC),
            keys=[f"email:p{i}@x{i % 2}.example"],
            values={"email": f"p{i}@x{i % 2}.example", "lead_status": ["new", "working"][i % 2]},
        )
        for i in range(2 * FEW)
    ]
    store = _store(tmp_path)
    try:
        with store.transaction():
            store.upsert_facts(facts)
        kinds = [k for (k,) in store.db.execute("SELECT kind FROM dictionaries")]
        assert kinds == ["fact crm:people.csv"]
        # every row zstd, the sampled ones too (settled in the same batch), and each decodes to its fact
        stored = dict(store.db.execute("SELECT record_id, payload FROM facts"))
        assert all(blob[:1] != b"\x78" for blob in stored.values())
        for fact in facts:
            assert decode_fact(stored[fact.ref.id]).to_json() == fact.to_json()
        # the content hash is the fact's, not its encoding's
        hashes = dict(store.db.execute("SELECT record_id, hash FROM facts"))
        assert all(hashes[f.ref.id] == content_hash(f) for f in facts)
    finally:
        store.close()


# ---- no one's own values in a dictionary --------------------------------------------------------------


def test_a_dictionary_holds_shared_values_never_a_persons_own(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        people = [_person(i) for i in range(1000)]
        for snapshot, decision in people:
            store.codec.encode_snapshot(snapshot)
            store.codec.encode_decision(decision)
        content = b"".join(bytes(c) for (c,) in store.db.execute("SELECT content FROM dictionaries"))
        assert b"crm:people.csv:" in content and b"working" in content  # what everyone shares is kept
        for snapshot, _ in people:
            email = snapshot["values"]["email"].encode()
            assert email not in content and email.split(b"@")[0] not in content
            assert snapshot["values"]["first_name"].encode() not in content
    finally:
        store.close()


def test_records_of_one_person_count_once_however_many_there_are(tmp_path: Path) -> None:
    """Thirty records attached to one e-mail do not make it shared: records tied by a key are one person."""
    facts = [
        Fact(
            ref=RecordRef("shop", "orders.csv", f"order-{i}"),
            kind=FactKind.ENRICHMENT,
            attach=["email:whale@rich.example" if i < 30 else f"email:buyer{i}@shop.example"],
            values={"total": i % 5},
        )
        for i in range(1000)
    ]
    store = _store(tmp_path)
    try:
        with store.transaction():
            store.upsert_facts(facts)
        (content,) = store.db.execute("SELECT content FROM dictionaries").fetchone()
        assert b"whale" not in bytes(content) and b"@shop.example" in bytes(content)
    finally:
        store.close()


# ---- states written before ----------------------------------------------------------------------------


def _rows(project: Project) -> dict[str, Any]:
    """Every person's decision and snapshot and every fact, decoded whatever their encoding."""
    db = sqlite3.connect(project.state_path)
    try:
        people = list(db.execute("SELECT person_key, decision, snapshot FROM people"))
        facts = list(db.execute("SELECT record_id, payload FROM facts"))
        reasons = [r for (r,) in db.execute("SELECT reason FROM transitions ORDER BY id")]
    finally:
        db.close()
    return {
        "decisions": {k: decode_decision(d) for k, d, _ in people},
        "snapshots": {k: decode_snapshot(s) for k, _, s in people},
        "facts": {i: decode_fact(p).to_json() for i, p in facts},
        "reasons": [decode_reason(r) for r in reasons],
    }


def _from_v10(project: Project) -> None:
    project.state_path.parent.mkdir(parents=True)
    shutil.copy(V10_STATE, project.state_path)


def test_a_version_10_state_is_migrated_and_reads_the_same(project: Project) -> None:
    _from_v10(project)
    before = _rows(project)
    store = StateStore(project.state_path)  # migrates
    store.close()
    assert project.query("SELECT value FROM meta WHERE key='schema_version'") == [(str(SCHEMA_VERSION),)]
    assert SCHEMA_VERSION == 12
    assert project.query("SELECT COUNT(*) FROM dictionaries") == [(0,)]
    assert _rows(project) == before
    again = Runner(project.config()).execute("run", AS_OF)
    assert again.exit_code == 0 and again.transitions == {}, again.errors
    assert all(s["adds"] == s["removes"] == 0 for s in again.segments["files"].values())
    assert _rows(project) == before
    history = [dict(r) for r in StateStore(project.state_path).transitions()]
    assert [h["reason"] for h in history] == before["reasons"]  # text as version 10 wrote it


def _train_from_stored(project: Project) -> None:
    """Give the state dictionaries for decisions and snapshots (its six people, encoded over and over)
    while every stored row stays zlib: a state of version 10 that a larger run then gave dictionaries."""
    store = StateStore(project.state_path)
    try:
        rows = list(store.db.execute("SELECT decision, snapshot FROM people"))
        for _ in range(FEW // len(rows) + 1):
            for decision, snapshot in rows:
                store.codec.encode_decision(decode_decision(decision))
                store.codec.encode_snapshot(decode_snapshot(snapshot))
    finally:
        store.close()


def test_a_codec_change_is_no_change_of_anyone(project: Project, few_samples: None) -> None:
    """People decided again after their rows' codec changed (zlib -> a dictionary) are not described
    differently: no transition, no segment add or remove, no segment file patched or rewritten; their rows
    are rewritten once, and then stay as they are."""
    _from_v10(project)
    assert Runner(project.config()).execute("run", AS_OF).exit_code == 0  # the segment files, published
    _train_from_stored(project)
    assert {k for (k,) in project.query("SELECT kind FROM dictionaries")} == {"decision", "snapshot"}
    before = _rows(project)
    # these dates cross people's next check (their outcome could flip, and does not): they are decided again
    for as_of in (dt.date(2026, 12, 1), dt.date(2026, 12, 20)):
        with capture_logs() as logs:
            summary = Runner(project.config()).execute("run", as_of)
        assert summary.exit_code == 0 and summary.transitions == {}, summary.errors
        assert all(s["adds"] == s["removes"] == 0 for s in summary.segments["files"].values())
        synced = [e for e in logs if e["event"] == "segment_files.sync"]
        assert synced and not any(e["patched"] or e["rewritten"] for e in synced), synced
    after = _rows(project)
    assert after["snapshots"] == before["snapshots"] and after["facts"] == before["facts"]
    recoded = project.query("SELECT COUNT(*) FROM people WHERE hex(substr(snapshot, 1, 1)) != '78'")
    assert recoded[0][0] >= 2  # the people decided again, rewritten with the dictionary
    rows = project.query("SELECT person_key, decision, snapshot, updated_run FROM people ORDER BY 1")
    Runner(project.config()).execute("run", dt.date(2026, 12, 20))
    assert project.query("SELECT person_key, decision, snapshot, updated_run FROM people ORDER BY 1") == rows


def test_a_first_run_over_many_people_stores_every_row_with_a_dictionary(
    project: Project, few_samples: None
) -> None:
    crowd = "".join(
        f"p{i}@crowd.example;First{i};Last{i};Crowd;{['Working', 'Qualified'][i % 2]};nee;EXT-C{i}\n"
        for i in range(3 * FEW)
    )
    project.write("data/people.csv", project.root.joinpath("data/people.csv").read_text() + crowd)
    summary = Runner(project.config()).execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    kinds = {k for (k,) in project.query("SELECT kind FROM dictionaries")}
    assert kinds == {"fact crm:data/people.csv", "decision", "snapshot", "reason"}
    assert project.query(
        "SELECT COUNT(*) FROM people WHERE hex(substr(decision, 1, 1)) = '78' "
        "OR hex(substr(snapshot, 1, 1)) = '78'"
    ) == [(0,)]
    assert project.query("SELECT COUNT(*) FROM transitions WHERE typeof(reason) != 'blob'") == [(0,)]
    history = StateStore(project.state_path).transitions()
    assert all(isinstance(r["reason"], str) and r["reason"] for r in history)  # read back as text
    # nothing new: nobody is decided or written again
    rows = project.query("SELECT person_key, decision, snapshot, updated_run FROM people ORDER BY 1")
    again = Runner(project.config()).execute("run", AS_OF)
    assert again.exit_code == 0 and again.transitions == {}
    assert project.query("SELECT person_key, decision, snapshot, updated_run FROM people ORDER BY 1") == rows


def test_a_plan_keeps_no_dictionary_and_the_run_after_it_reads_everything(
    project: Project, few_samples: None
) -> None:
    """A plan trains dictionaries inside its rolled-back transaction: they go with it, and the run that
    follows in the same process must not encode with one the state does not hold."""
    crowd = "".join(
        f"p{i}@crowd.example;First{i};Last{i};Crowd;Working;nee;EXT-C{i}\n" for i in range(2 * FEW)
    )
    project.write("data/people.csv", project.root.joinpath("data/people.csv").read_text() + crowd)
    runner = Runner(project.config())
    assert runner.execute("plan", AS_OF).exit_code == 0
    assert project.query("SELECT COUNT(*) FROM dictionaries") == [(0,)]
    assert runner.execute("run", AS_OF).exit_code == 0
    stored = {k for (k,) in project.query("SELECT id FROM dictionaries")}
    named = {
        state_dictionaries.frame_dict_id(bytes(blob))
        for (blob,) in project.query("SELECT snapshot FROM people UNION ALL SELECT payload FROM facts")
        if bytes(blob)[:1] != b"\x78"
    }
    assert named and named <= stored
    assert len(_rows(project)["snapshots"]) == len(project.query("SELECT person_key FROM people"))


def test_a_dictionary_rolled_back_is_not_encoded_with(tmp_path: Path, few_samples: None) -> None:
    store = _store(tmp_path)
    try:
        people = [_person(i) for i in range(FEW)]
        with store.dry_run():
            _train(store, [p[0] for p in people], [p[1] for p in people])
            assert store.db.execute("SELECT COUNT(*) FROM dictionaries").fetchone()[0] == 2
        assert store.db.execute("SELECT COUNT(*) FROM dictionaries").fetchone()[0] == 0
        # sampling starts over: zlib until the dictionary is trained again, and this one is kept
        assert store.codec.encode_snapshot(people[0][0])[:1] == b"\x78"
        with store.transaction():
            _train(store, [p[0] for p in people], [p[1] for p in people])
        assert store.db.execute("SELECT COUNT(*) FROM dictionaries").fetchone()[0] == 2
    finally:
        store.close()


def test_a_new_state_hands_its_free_pages_back_after_a_run(project: Project) -> None:
    summary = Runner(project.config()).execute("run", AS_OF)
    assert summary.exit_code == 0
    assert project.query("PRAGMA auto_vacuum") == [(2,)]  # incremental
    # write_check's reserve and the dirty-record marks were written and deleted during the run
    assert project.query("PRAGMA freelist_count") == [(0,)]
