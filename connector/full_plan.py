"""The full path's plan (a first run, `--full-recompute`), built one part of everyone at a time.

chunked.py resolves and decides a part, then hands it here and lets it go: what the writers need later is
kept compact (label changes, which are O(changes) by nature) or in temporary SQLite tables (who is in each
segment, who was resolved, which records are alive), and segment members are described again from the state
in batches, in order, when a writer walks them (`StateMembers`). At a million people the decided parts were
most of a first run's peak memory; with them gone, memory follows the part size and the changes.

What comes out is the plan a whole-population `ChangePlanner.plan` gives: the same label changes in the same
order, the same members, adds and removes per target and segment, the same summary lines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, overload

from .diffing import ChangePlanner, Plan, _name, list_segment_changes
from .engine import Decision
from .outcome import Summary
from .plan import LabelChange, Member, SegmentChange, Target
from .schema import Person, decode_value
from .state import StateStore
from .state_codec import decode_snapshot
from .tasks.planner import TaskPlan, latest_transitions_of, plan_tasks
from .vetoes import Veto

BATCH = 500  # people described from the state per query (and SQLite's bound parameters stay few)

# the orders a walk over the members can take: the diff step's (`diffing._in_order`), and the segment files'
# (`segment_files.writer.sorted_members`: no e-mail last, e-mails compared lower-cased)
ORDERS = {
    "plan": "COALESCE(email, ''), person_key",
    "files": "email IS NULL, py_lower(email), person_key",
}


class StateMembers(Sequence[Member]):
    """Members of one target's segment that this run planned (`kind` "members": everyone in it; "adds": those
    the state did not hold yet when the plan was made), described from the state a batch at a time each time
    they are walked; never all of them at once."""

    def __init__(
        self,
        store: StateStore,
        target: str,
        segment: str,
        kind: str,
        count: int,
        describe: Callable[[list[str]], list[Member]],
        order: str = "plan",
    ) -> None:
        self._store, self._target, self._segment, self._kind = store, target, segment, kind
        self._count, self._describe, self.order = count, describe, order

    def ordered(self, order: str) -> StateMembers:
        """The same members walked in another of `ORDERS`."""
        return StateMembers(
            self._store, self._target, self._segment, self._kind, self._count, self._describe, order
        )

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Member]:
        for page in self._pages():
            yield from self._describe(page)

    def keys(self) -> Iterator[str]:
        """The members' person keys in order, nobody described (what the state records of a write)."""
        for page in self._pages():
            yield from page

    def _pages(self) -> Iterator[list[str]]:
        view = f"{self._target}\x00{self._segment}\x00{self._kind}\x00{self.order}"
        db = self._store.db
        if db.execute("SELECT 1 FROM temp.plan_order WHERE view=? LIMIT 1", (view,)).fetchone() is None:
            # sorted once by SQLite into a numbered list, then read a page at a time (no statement stays open
            # while the writer works, and Python never holds more than a page of keys)
            flag = " AND new=1" if self._kind == "adds" else ""
            db.execute(
                "INSERT INTO temp.plan_order (view, person_key) SELECT ?, person_key FROM temp.plan_members "
                f"WHERE target=? AND segment=?{flag} ORDER BY {ORDERS[self.order]}",
                (view, self._target, self._segment),
            )
        last = 0
        while page := db.execute(
            "SELECT seq, person_key FROM temp.plan_order WHERE view=? AND seq > ? ORDER BY seq LIMIT ?",
            (view, last, BATCH),
        ).fetchall():
            last = page[-1][0]
            yield [r[1] for r in page]

    @overload
    def __getitem__(self, index: int) -> Member: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Member]: ...

    def __getitem__(self, index: int | slice) -> Member | Sequence[Member]:
        return list(self)[index]  # nothing in the run indexes members; kept whole only for a caller that does


def member_keys(members: Sequence[Member]) -> Iterator[str]:
    """The person keys of `members`; of `StateMembers` without describing anyone."""
    if isinstance(members, StateMembers):
        return members.keys()
    return (m.person_key for m in members)


class FullPlanner:
    """Collects a part's label changes, segment insiders, tasks and pipeline figures (`add`), then makes the
    plan (`finish`) once every part is decided and saved."""

    def __init__(
        self,
        planner: ChangePlanner,
        store: StateStore,
        writers: Sequence[Target],
        as_of: dt.date,
        *,
        list_changes: bool = True,
        tasks: bool = False,
        task_targets: Sequence[Any] = (),
        pipeline: bool = False,
    ) -> None:
        self.planner, self.config, self.store = planner, planner.config, store
        self.writers, self.as_of, self.list_changes = list(writers), as_of, list_changes
        # per target: (change, e-mail, name); the e-mail and name only for `plan --full` / the JSON listing
        self.labels: dict[str, list[tuple[LabelChange, str | None, str | None]]] = {}
        self.tasks: TaskPlan | None = TaskPlan() if tasks else None
        self.task_targets = task_targets
        self.pipeline: list[tuple[str, dict[str, Any]]] | None = [] if pipeline else None
        db = store.db
        db.raw.create_function("py_lower", 1, _lower, deterministic=True)
        for table in ("run_people", "run_refs", "plan_members", "plan_order"):
            db.execute(f"DROP TABLE IF EXISTS temp.{table}")
        db.execute("CREATE TEMP TABLE run_people (person_key TEXT PRIMARY KEY) WITHOUT ROWID")
        db.execute("CREATE TEMP TABLE run_refs (ref TEXT PRIMARY KEY) WITHOUT ROWID")
        db.execute(
            "CREATE TEMP TABLE plan_members (target TEXT NOT NULL, segment TEXT NOT NULL, "
            "person_key TEXT NOT NULL, email TEXT, new INTEGER NOT NULL DEFAULT 0, "
            "PRIMARY KEY (target, segment, person_key)) WITHOUT ROWID"
        )
        db.execute(
            "CREATE TEMP TABLE plan_order (seq INTEGER PRIMARY KEY, view TEXT NOT NULL, person_key TEXT NOT NULL)"
        )
        db.execute("CREATE INDEX temp.plan_order_view ON plan_order (view, seq)")

    # ---- one part ---------------------------------------------------------------------------------------

    def add(
        self,
        people: list[Person],
        decisions: Mapping[str, Decision],
        superseded: set[str],
        vetoes: Mapping[str, Veto],
    ) -> None:
        # the part's rows as one unit (a savepoint inside the full path's transaction): outside any transaction
        # each row of an executemany is a transaction of its own, and the temp tables' journal is written and
        # truncated for every one (2.5 times a person)
        with self.store.transaction():
            self._add(people, decisions, superseded, vetoes)

    def _add(
        self,
        people: list[Person],
        decisions: Mapping[str, Decision],
        superseded: set[str],
        vetoes: Mapping[str, Veto],
    ) -> None:
        db = self.store.db
        by_key = {p.key: p for p in people}
        db.executemany("INSERT OR IGNORE INTO temp.run_people VALUES (?)", ((k,) for k in by_key))
        db.executemany(
            "INSERT OR IGNORE INTO temp.run_refs VALUES (?)", ((str(r),) for p in people for r in p.refs)
        )
        insiders = {
            seg.name: self.planner._insiders(seg, by_key, dict(decisions), self.as_of, vetoes)
            for seg in self.config.segments
        }
        model = self.config.stage_model
        for writer in self.writers:
            if writer.source and writer.label_objects:
                self._label_changes(writer, people, decisions, superseded)
            for segment in self.config.segments:
                if writer.name not in segment.targets:
                    continue
                rows = []
                for key in insiders[segment.name]:
                    person = by_key[key]
                    if writer.source and not person.refs_in(writer.source):
                        continue  # the target system holds no record of them
                    rows.append((writer.name, segment.name, key, person.values.get("email")))
                db.executemany("INSERT INTO temp.plan_members VALUES (?, ?, ?, ?, 0)", rows)
        if self.tasks is not None:
            latest = latest_transitions_of(self.store, list(by_key))
            part = plan_tasks(
                self.config.tasks, model, self.task_targets, by_key, decisions, latest, self.as_of
            )
            for target, due in part.due.items():
                self.tasks.due.setdefault(target, []).extend(due)
            self.tasks.unrenderable += part.unrenderable
        if self.pipeline is not None:
            # only what pipeline_figures reads, and only of people with an open deal
            self.pipeline += [
                (
                    decisions[p.key].stage,
                    {k: p.values.get(k) for k in ("opportunity_open", "opportunity_open_amount")},
                )
                for p in people
                if p.values.get("opportunity_open")
            ]

    def _label_changes(
        self,
        writer: Target,
        people: list[Person],
        decisions: Mapping[str, Decision],
        superseded: set[str],
    ) -> None:
        assert writer.source is not None
        model = self.config.stage_model
        refs = [
            str(ref)
            for p in people
            for ref in p.refs_in(writer.source)
            if ref.object in writer.label_objects and str(ref) not in superseded
        ]
        written = _labels_of_refs(self.store, writer.name, refs)
        out = self.labels.setdefault(writer.name, [])
        for person in people:
            label = model.stage(decisions[person.key].stage).label_for(writer.name)
            listed = self.list_changes
            email = person.values.get("email") if listed else None
            name = _name(person.values) if listed else None
            for ref in person.refs_in(writer.source):
                if ref.object not in writer.label_objects or str(ref) in superseded:
                    continue
                old = written.get(str(ref))
                if old != label:
                    out.append((LabelChange(person.key, ref, old, label), email, name))

    # ---- the plan -----------------------------------------------------------------------------------------

    def finish(self, summary: Summary) -> Plan:
        plan = Plan({}, {})
        for writer in self.writers:
            plan.labels[writer.name] = self._labels_for(writer, summary)
            plan.segments[writer.name] = self._segments_for(writer, summary)
        return plan

    def _labels_for(self, writer: Target, summary: Summary) -> list[LabelChange]:
        if not (writer.source and writer.label_objects):
            return []
        listed = sorted(self.labels.pop(writer.name, []), key=lambda c: (c[0].ref.object, c[0].ref.id))
        summary.labels[writer.name] = {"changes": len(listed)}
        moves: dict[tuple[str | None, str], dict[str, Any]] = {}
        for c, email, name in listed:
            if self.list_changes:
                summary.label_changes.append(
                    {
                        "target": writer.name,
                        "ref": str(c.ref),
                        "person": c.person_key,
                        "email": email,
                        "name": name,
                        "from": c.old,
                        "to": c.new,
                    }
                )
            else:
                # nothing prints a change line of a `run` without --full; its per-move counts are printed,
                # so each change is counted against one shared line per move instead of a dict each
                move = moves.setdefault((c.old, c.new), {"target": writer.name, "from": c.old, "to": c.new})
                summary.label_changes.append(move)
        return [c for c, _, _ in listed]

    def _segments_for(self, writer: Target, summary: Summary) -> list[SegmentChange]:
        db = self.store.db
        out: list[SegmentChange] = []
        for segment in self.config.segments:
            if writer.name not in segment.targets:
                continue
            args = (writer.name, segment.name)
            # who the state did not hold yet: the adds, fixed now (the write records them as it goes)
            db.execute(
                "UPDATE temp.plan_members SET new=1 WHERE target=? AND segment=? AND NOT EXISTS (SELECT 1 "
                "FROM memberships m WHERE m.target=plan_members.target AND m.segment=plan_members.segment "
                "AND m.person_key=plan_members.person_key)",
                args,
            )
            count, new = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(new), 0) FROM temp.plan_members WHERE target=? AND segment=?",
                args,
            ).fetchone()
            gone = [
                r[0]
                for r in db.execute(
                    "SELECT person_key FROM memberships m WHERE target=? AND segment=? AND NOT EXISTS "
                    "(SELECT 1 FROM temp.plan_members p WHERE p.target=m.target AND p.segment=m.segment "
                    "AND p.person_key=m.person_key) ORDER BY person_key",
                    args,
                )
            ]
            describe = self._describer(writer)
            members = StateMembers(self.store, writer.name, segment.name, "members", count, describe)
            adds = StateMembers(self.store, writer.name, segment.name, "adds", new, describe)
            removes = [self.planner._gone_member(self.store, key, writer, {}, {}) for key in gone]
            made = self.store.membership_records(writer.name, segment.name) if removes else {}
            created = {m.person_key: made[m.person_key] for m in removes if m.person_key in made}
            out.append(SegmentChange(segment.name, members, adds, removes, created, True, None))
            summary.segments.setdefault(writer.name, {})[segment.name] = {
                "members": count,
                "adds": new,
                "removes": len(removes),
            }
            if self.list_changes:  # printed only by `plan`, `--full` and the JSON listing
                list_segment_changes(summary, writer.name, segment.name, adds, removes)
        return out

    def _describer(self, writer: Target) -> Callable[[list[str]], list[Member]]:
        def describe(keys: list[str]) -> list[Member]:
            return self.planner._members_from_state(self.store, writer, keys, None)

        return describe


class RunPeople:
    """Who this run resolved (temp.run_people), asked of the state one person at a time (tasks/sync.py)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def __contains__(self, key: object) -> bool:
        sql = "SELECT 1 FROM temp.run_people WHERE person_key=?"
        return self.store.db.execute(sql, (key,)).fetchone() is not None

    def values_of(self, key: str) -> Mapping[str, Any]:
        row = self.store.person(key)
        if row is None or key not in self:
            return {}
        values = decode_snapshot(row["snapshot"]).get("values", {})
        return {k: decode_value(v) for k, v in values.items()}


def _labels_of_refs(store: StateStore, target: str, refs: list[str]) -> dict[str, str]:
    """The last label written to each of these records for `target`."""
    out: dict[str, str] = {}
    for start in range(0, len(refs), BATCH):
        chunk = refs[start : start + BATCH]
        marks = ",".join("?" * len(chunk))
        out.update(
            store.db.execute(
                f"SELECT ref, label FROM labels WHERE target=? AND ref IN ({marks})", (target, *chunk)
            ).fetchall()
        )
    return out


def _lower(text: str | None) -> str | None:
    """Python's lower-casing (SQLite's lower() folds ASCII only), for the segment files' order."""
    return None if text is None else text.lower()
