"""Incremental runs decide only the people a run can have changed, with the same result as deciding everyone.

The safety net is the property test below: random histories of input files (status changes, e-mail changes that
merge and split people, shared external ids, deleted and added rows, contract end dates) and as-of dates moving
forward across the rules' and segments' date windows go through two projects side by side, one incremental and
one with `full_recompute` that also maps every row of a changed file, and after every run the state (facts,
people, transitions, identity, memberships), the segment files and the run summaries must be the same.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spine_helpers import AS_OF, CONFIG_YAML, PEOPLE_CSV, Project

from connector import incremental
from connector.config import load_config
from connector.fact_index import link_keys
from connector.pipeline import Runner, Summary
from connector.state import StateStore

V1_STATE = Path(__file__).parent / "data" / "state-v1.sqlite"
CLOCK = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)

EMAILS = ["ann@acme.example", "bob@globex.example", "carla@initech.example", "dirk@umbrella.example"]
EMAILS += ["eva@hooli.example", "frank@newco.example"]
STATUSES = ["New", "Working", "Qualified", "Disqualified", "Nurture"]

# a row of people.csv: (email index, status, opted out, external id index or None)
person_row = st.tuples(
    st.integers(0, len(EMAILS) - 1),
    st.sampled_from(STATUSES),
    st.booleans(),
    st.one_of(st.none(), st.integers(1, 3)),
)
contract_row = st.tuples(st.integers(0, len(EMAILS) - 1), st.integers(-30, 400))
visit_row = st.tuples(st.integers(0, len(EMAILS) - 1), st.integers(0, 6), st.integers(-60, 0))
step = st.fixed_dictionaries(
    {
        "people": st.lists(person_row, max_size=6),
        "contracts": st.lists(contract_row, max_size=3),
        "visits": st.lists(visit_row, max_size=3),
        "days": st.sampled_from([0, 0, 1, 7, 30, 45, 90, 120]),
    }
)


def write_inputs(project: Project, data: dict[str, Any], as_of: dt.date) -> None:
    people = ["email;first_name;last_name;company;status;opt_out;external_id"]
    for e, status, out, ext in data["people"]:
        people.append(
            f"{EMAILS[e]};N{e};L{e};C{e};{status};{'ja' if out else 'nee'};{f'EXT-{ext}' if ext else ''}"
        )
    project.write("data/people.csv", "\n".join(people) + "\n")
    contracts = ["E-mail;Provider;Einddatum"]
    for e, offset in data["contracts"]:
        contracts.append(f"{EMAILS[e]};TeleCorp;{(AS_OF + dt.timedelta(days=offset)).strftime('%d-%m-%Y')}")
    project.write("data/contracts.csv", "\n".join(contracts) + "\n")
    visits = [
        f'{{"email": "{EMAILS[e]}", "visits": {n}, "last": "{(as_of + dt.timedelta(days=d)).isoformat()}"}}'
        for e, n, d in data["visits"]
    ]
    project.write("data/visits.jsonl", "\n".join(visits) + ("\n" if visits else ""))


def make(root: Path) -> Project:
    project = Project(root)
    project.write("connector.yaml", CONFIG_YAML)
    return project


def state(project: Project) -> dict[str, list[tuple[Any, ...]]]:
    q = project.query
    return {
        "people": q(
            "SELECT person_key, stage, path_stage, since, decision, snapshot, updated_run, next_check, sources, "
            "pipeline FROM people ORDER BY person_key"
        ),
        "transitions": q(
            "SELECT id, person_key, from_stage, to_stage, at, run_id, rule, reason FROM transitions ORDER BY id"
        ),
        "facts": q("SELECT source, object, record_id, hash FROM facts ORDER BY source, object, record_id"),
        "identity": q("SELECT merge_key, person_key FROM identity ORDER BY merge_key"),
        "labels": q("SELECT target, ref, person_key, label, run_id FROM labels ORDER BY target, ref"),
        "memberships": q("SELECT * FROM memberships ORDER BY target, segment, person_key"),
        "rejected": q(
            "SELECT phase, system, item, reason, attempts FROM rejected ORDER BY phase, system, item"
        ),
    }


def kept_totals(project: Project) -> dict[str, Any]:
    """The run totals the state keeps for the next incremental run (incremental.totals)."""
    store = StateStore(project.state_path)
    try:
        kept = store.kept_totals()
    finally:
        store.close()
    assert kept is not None
    return {"stages": {s: n for s, n in kept["stages"].items() if n}, "people": kept["people"]}


def counted_totals(project: Project) -> dict[str, Any]:
    """The same totals counted over the whole people table."""
    store = StateStore(project.state_path)
    try:
        return {"stages": incremental.stage_counts(store), "people": incremental.people_counts(store)}
    finally:
        store.close()


def kept_fact_counts(project: Project) -> list[tuple[Any, ...]]:
    return project.query("SELECT source, object, n FROM fact_counts WHERE n > 0 ORDER BY source, object")


def counted_fact_counts(project: Project) -> list[tuple[Any, ...]]:
    return project.query("SELECT source, object, COUNT(*) FROM facts GROUP BY source, object ORDER BY 1, 2")


def outcome(summary: Summary) -> dict[str, Any]:
    data = summary.to_json(detail=True)
    keep = (
        "exit_code",
        "stages",
        "people",
        "transitions",
        "segments",
        "labels",
        "segment_changes",
        "rejected",
    )
    return {k: data.get(k) for k in keep}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(step, min_size=2, max_size=5))
def test_incremental_runs_match_a_full_recompute_on_random_histories(
    tmp_path_factory: Any, history: list[dict[str, Any]]
) -> None:
    root = tmp_path_factory.mktemp("hist")
    fast, full = make(root / "incremental"), make(root / "full")
    as_of = AS_OF
    for data in history:
        as_of += dt.timedelta(days=data["days"])
        results = []
        for project, recompute in ((fast, False), (full, True)):
            write_inputs(project, data, as_of)
            if recompute:  # and reads every row of a changed file (no row record: known_rows.py)
                for record in (project.state_path.parent / "cache").glob("files-*.rows"):
                    record.unlink()
            runner = Runner(project.config(), full_recompute=recompute, clock=lambda: CLOCK)
            results.append(runner.execute("run", as_of))
        assert outcome(results[0]) == outcome(results[1])
        assert state(fast) == state(full)
        assert kept_totals(fast) == counted_totals(fast)
        assert kept_fact_counts(fast) == counted_fact_counts(fast)
        assert fast.segment_files() == full.segment_files()
        # a plan afterwards (nothing new) is the same too
        plans = [
            Runner(p.config(), full_recompute=r).execute("plan", as_of)
            for p, r in ((fast, False), (full, True))
        ]
        assert outcome(plans[0]) == outcome(plans[1])


def count_decided(runner: Runner) -> list[int]:
    """How many people each of the runner's decide steps is handed, filled as it runs."""
    decided: list[int] = []
    original = runner._decide

    def counting(store: Any, people: Any, *args: Any, **kwargs: Any) -> Any:
        decided.append(len(people))
        return original(store, people, *args, **kwargs)

    runner._decide = counting  # type: ignore[method-assign]
    return decided


def test_a_run_with_nothing_new_decides_nobody(project: Project) -> None:
    first = Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)
    assert first.people["total"] == 6
    runner = Runner(project.config(), clock=lambda: CLOCK)
    decided = count_decided(runner)
    second = runner.execute("run", AS_OF)
    assert decided == [0]
    assert second.people == first.people
    assert second.stages == first.stages


def test_a_person_whose_window_opens_is_decided_again_without_new_facts(project: Project) -> None:
    """bob's competitor contract ends 2027-02-15: the acquisition window (0..180 days) opened long before;
    frank's too. A date before the window: nothing, then the as-of date crosses into it."""
    early = dt.date(2026, 1, 1)  # 2027-02-15 is 410 days away: outside 0..180
    Runner(project.config(), clock=lambda: CLOCK).execute("run", early)
    assert project.segment_rows("acquisition") == []
    later = dt.date(2026, 9, 5)  # 163 and 177 days before: inside
    summary = Runner(project.config(), clock=lambda: CLOCK).execute("run", later)
    assert summary.segments["files"]["acquisition"]["adds"] == 2
    assert sorted(project.segment_rows("acquisition")) == ["bob@globex.example", "frank@newco.example"]


def test_a_version_1_state_is_migrated_and_its_next_runs_are_incremental(project: Project) -> None:
    project.state_path.parent.mkdir(parents=True)
    shutil.copy(V1_STATE, project.state_path)
    first = Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)
    assert first.exit_code == 0, first.errors
    db = sqlite3.connect(project.state_path)
    columns = {r[1] for r in db.execute("PRAGMA table_info(people)")}
    assert {"next_check", "sources", "pipeline"} <= columns
    facts = db.execute("SELECT COUNT(*) FROM facts").fetchone()[0]
    linked = db.execute("SELECT COUNT(DISTINCT ref) FROM fact_keys").fetchone()[0]
    basis = db.execute("SELECT value FROM meta WHERE key='incremental_basis'").fetchone()
    db.close()
    store = StateStore(project.state_path)
    linkable = sum(1 for f in store.all_facts() if link_keys(f) - {str(f.ref)})
    store.close()
    # the full run after the migration indexed every stored fact linked to anything but itself
    assert facts and linked == linkable > 0
    assert basis is not None
    second = Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)
    assert second.stages == first.stages and second.people == first.people


def test_full_recompute_on_run_and_plan_takes_the_full_path(project: Project, monkeypatch: Any) -> None:
    from click.testing import CliRunner

    from connector import incremental
    from connector.cli import cli

    args = ["-c", str(project.config_path), "--as-of", AS_OF.isoformat(), "--json"]
    assert CliRunner().invoke(cli, ["run", *args]).exit_code == 0
    calls: list[int] = []
    original = incremental.affected

    def tracking(store: Any, as_of: dt.date) -> Any:
        calls.append(1)
        return original(store, as_of)

    monkeypatch.setattr(incremental, "affected", tracking)
    for command in ("run", "plan"):
        result = CliRunner().invoke(cli, [command, *args, "--full-recompute"])
        assert result.exit_code == 0, result.output
    assert calls == []
    assert CliRunner().invoke(cli, ["plan", *args]).exit_code == 0
    assert calls == [1]  # without the flag the same state is run incrementally


def test_an_erasure_between_runs_leaves_the_next_incremental_runs_totals_right(project: Project) -> None:
    """An erasure takes people out of the state between runs: the totals kept for incremental runs no longer
    describe it, so the next run counts them again instead of carrying the erased people along."""
    from click.testing import CliRunner

    from connector.cli import cli

    first = Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)
    erased = CliRunner().invoke(cli, ["forget", "-c", str(project.config_path), "ann@acme.example"])
    assert erased.exit_code == 0, erased.output
    second = Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)
    assert second.people["total"] == first.people["total"] - 1
    full = Runner(project.config(), clock=lambda: CLOCK, full_recompute=True).execute("run", AS_OF)
    assert (second.stages, second.people) == (full.stages, full.people)
    assert kept_totals(project) == counted_totals(project)


def test_a_row_deleted_from_a_file_after_an_erasure_leaves_the_state(project: Project) -> None:
    """The erased person's row is still in the file: a changed file that also lost another row must not look
    complete because the erased row is counted as stored (the kept fact count against the live rows)."""
    from click.testing import CliRunner

    from connector.cli import cli

    Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)
    erased = CliRunner().invoke(cli, ["forget", "-c", str(project.config_path), "ann@acme.example"])
    assert erased.exit_code == 0, erased.output
    assert kept_fact_counts(project) == counted_fact_counts(project)
    rows = PEOPLE_CSV.splitlines()
    without_bob = [r for r in rows if not r.startswith("bob@")]
    project.write(
        "data/people.csv", "\n".join(without_bob).replace("Initech;Disqualified", "Initech;Working") + "\n"
    )
    summary = Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)
    assert summary.read["crm"]["deleted"] == 1
    assert project.query("SELECT record_id FROM facts WHERE source='crm' AND record_id LIKE 'bob%'") == []
    assert kept_fact_counts(project) == counted_fact_counts(project)


def test_a_refused_new_row_does_not_hide_a_row_deleted_from_the_same_file(project: Project) -> None:
    """A file that lost one row and gained one that is refused has as many rows as facts stored: the kept
    count must not take that for nothing gone (a refused row is never stored)."""
    Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)
    project.write(
        "data/contracts.csv",
        "E-mail;Provider;Einddatum\nbob@globex.example;TeleCorp;15-02-2027\nzed@newco.example;TeleCorp;99-99-2027\n",
    )
    summary = Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)
    assert summary.read["contracts"]["rejected"] == 1
    assert summary.read["contracts"]["deleted"] == 1  # frank's contract
    assert [r[0] for r in project.query("SELECT record_id FROM facts WHERE source='contracts'")] == [
        "bob@globex.example"
    ]
    assert kept_fact_counts(project) == counted_fact_counts(project)


def test_a_refused_row_stored_before_is_not_taken_for_a_deleted_one(project: Project) -> None:
    """bob's contract, stored before, is refused now (a date that is none): its stored fact stays, and frank's
    deleted row still leaves."""
    Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)
    project.write("data/contracts.csv", "E-mail;Provider;Einddatum\nbob@globex.example;TeleCorp;99-99-2027\n")
    summary = Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)
    assert summary.read["contracts"]["rejected"] == 1
    assert summary.read["contracts"]["deleted"] == 1
    assert [r[0] for r in project.query("SELECT record_id FROM facts WHERE source='contracts'")] == [
        "bob@globex.example"
    ]
    assert kept_fact_counts(project) == counted_fact_counts(project)


def test_the_same_config_named_another_way_keeps_runs_incremental(project: Project, monkeypatch: Any) -> None:
    """`-c x.yaml` from the config's folder and `-c /abs/path/x.yaml` from elsewhere are one config: only the
    loader's own notes (the file as spelled, for messages) differ, and they decide nobody's outcome."""
    Runner(load_config(str(project.config_path)), clock=lambda: CLOCK).execute("run", AS_OF)
    monkeypatch.chdir(project.config_path.parent)
    runner = Runner(load_config(f"./{project.config_path.name}"), clock=lambda: CLOCK)
    decided = count_decided(runner)
    runner.execute("run", AS_OF)
    assert decided == [0]  # incremental, with nothing new: nobody decided again
