"""What must change: label changes per target and segment adds/removes, from decisions and the state.

A label change is a record whose desired label differs from the last label written to it for that target. A
segment change compares who belongs in the segment now with the memberships the state holds for that target.
Nothing here writes; the run loop hands the result to the writers (or prints it, for `plan`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from .conditions import compile_condition
from .config import AppConfigBase, SegmentConfig
from .engine import Decision
from .outcome import Summary
from .plan import LabelChange, LazyMembers, Member, SegmentChange, Target
from .schema import Fact, Person, RecordRef, decode_value
from .segments import in_segment
from .state import StateStore
from .state_codec import decode_snapshot
from .vetoes import Veto


@dataclass
class Plan:
    labels: dict[str, list[LabelChange]]
    segments: dict[str, list[SegmentChange]]


class ChangePlanner:
    def __init__(self, config: AppConfigBase) -> None:
        self.config = config

    def plan(
        self,
        store: StateStore,
        writers: Sequence[Target],
        people: dict[str, Person],
        decisions: dict[str, Decision],
        as_of: dt.date,
        summary: Summary,
        superseded: set[str],
        vetoes: Mapping[str, Veto] | None = None,
        affected: set[str] | None = None,
        changed: set[str] | None = None,
    ) -> Plan:
        """`affected`: an incremental run's people (incremental.py); `people` holds those of them that still
        exist, everyone else is as the state says and only their membership is read (whole segments).
        `changed`: of those, the people whose stage or stored snapshot this run changed (None: unknown), so a
        segment none of them is in, with no add or remove, is handed over untouched."""
        # who is in each segment does not depend on the target: evaluate every segment once
        insiders = {
            seg.name: self._insiders(seg, people, decisions, as_of, vetoes or {})
            for seg in self.config.segments
        }
        plan = Plan({}, {})
        unchanged: dict[str, Any] = {}  # person key -> state row, read once for every target
        for writer in writers:
            plan.labels[writer.name] = self._label_changes(
                store, writer, people, decisions, superseded, summary
            )
            plan.segments[writer.name] = self._segment_changes(
                store, writer, insiders, people, decisions, summary, affected, unchanged, changed
            )
        return plan

    def _insiders(
        self,
        segment: SegmentConfig,
        people: dict[str, Person],
        decisions: dict[str, Decision],
        as_of: dt.date,
        vetoes: Mapping[str, Veto],
    ) -> list[str]:
        when = compile_condition(segment.when)
        suppressed = set(self.config.stage_model.suppress)
        return [
            key
            for key, person in people.items()
            if in_segment(person, decisions[key].stage, None, segment, suppressed, as_of, when)
            and not _vetoed(vetoes.get(key), segment)
        ]

    def _label_changes(
        self,
        store: StateStore,
        writer: Target,
        people: dict[str, Person],
        decisions: dict[str, Decision],
        superseded: set[str],
        summary: Summary,
    ) -> list[LabelChange]:
        if not (writer.source and writer.label_objects):
            return []  # a target that takes no labels (files) gets no label line either
        model = self.config.stage_model
        written = store.labels(writer.name)
        changes: list[LabelChange] = []
        for person in people.values():
            label = model.stage(decisions[person.key].stage).label_for(writer.name)
            for ref in person.refs_in(writer.source):
                if ref.object not in writer.label_objects or str(ref) in superseded:
                    continue
                old = written.get(str(ref))
                if old != label:
                    changes.append(LabelChange(person.key, ref, old, label))
        changes.sort(key=lambda c: (c.ref.object, c.ref.id))
        summary.labels[writer.name] = {"changes": len(changes)}
        summary.label_changes.extend(
            {
                "target": writer.name,
                "ref": str(c.ref),
                "person": c.person_key,
                # who it is, for people reading `plan --full` (a record id alone says nothing to them)
                "email": people[c.person_key].values.get("email"),
                "name": _name(people[c.person_key].values),
                "from": c.old,
                "to": c.new,
            }
            for c in changes
        )
        return changes

    def _segment_changes(
        self,
        store: StateStore,
        writer: Target,
        insiders: dict[str, list[str]],
        people: dict[str, Person],
        decisions: dict[str, Decision],
        summary: Summary,
        affected: set[str] | None = None,
        unchanged: dict[str, Any] | None = None,
        changed: set[str] | None = None,
    ) -> list[SegmentChange]:
        # an incremental run for a target addressing people reads only the memberships of the people it reached
        by_people = affected is not None and not writer.source
        current = (
            store.members_among(writer.name, affected or ()) if by_people else store.members(writer.name)
        )
        counts = store.member_counts(writer.name) if by_people else {}
        out: list[SegmentChange] = []
        for segment in self.config.segments:
            if writer.name not in segment.targets:
                continue
            fresh = [self._member(people[key], writer, decisions[key]) for key in insiders[segment.name]]
            before = current.get(segment.name, set())
            members: Sequence[Member]
            if by_people and affected is not None:
                # the others are members exactly as the state holds them (the last run wrote them all); a
                # target addressing people keeps every one of them, so who is in is known without describing
                # them: their snapshots are decoded only if the writer asks for the members
                # `before` here holds only the members this run reached, and those the state keeps no person
                # for (the full path drops them): the others stay, counted rather than listed
                orphans = _without_person(store, writer.name, segment.name)
                before = before | orphans
                now_keys = {m.person_key for m in fresh}
                left_alone = counts.get(segment.name, 0) - len(before)
                members = LazyMembers(
                    left_alone + len(now_keys),
                    partial(
                        self._all_members, store, writer, segment.name, fresh, affected | orphans, unchanged
                    ),
                )
                adds = [m for m in _in_order(fresh) if m.person_key not in before]
            else:
                listed = list(fresh)
                if affected is not None:
                    listed += self._members_from_state(store, writer, sorted(before - affected), unchanged)
                if writer.source:
                    listed = [m for m in listed if m.refs]  # the target system holds no record of the others
                members = _in_order(listed)
                now_keys = {m.person_key for m in members}
                adds = [m for m in members if m.person_key not in before]
            removes = [
                self._gone_member(store, key, writer, people, decisions) for key in sorted(before - now_keys)
            ]
            made = store.membership_records(writer.name, segment.name) if removes else {}
            created = {m.person_key: made[m.person_key] for m in removes if m.person_key in made}
            touched = changed is None or bool(adds or removes) or any(m.person_key in changed for m in fresh)
            redescribed: list[Member] | None = None
            if by_people and changed is not None:
                added = {m.person_key for m in adds}
                redescribed = [m for m in fresh if m.person_key in changed and m.person_key not in added]
            out.append(SegmentChange(segment.name, members, adds, removes, created, touched, redescribed))
            summary.segments.setdefault(writer.name, {})[segment.name] = {
                "members": len(members),
                "adds": len(adds),
                "removes": len(removes),
            }
            list_segment_changes(summary, writer.name, segment.name, adds, removes)
        return out

    def _member(self, person: Person, writer: Target, decision: Decision) -> Member:
        refs = tuple(person.refs_in(writer.source)) if writer.source else tuple(person.refs)
        return Member(
            person_key=person.key,
            refs=refs,
            email=person.values.get("email"),
            first_name=person.values.get("first_name"),
            last_name=person.values.get("last_name"),
            company=person.values.get("company"),
            stage=decision.stage,
            label=self.config.stage_model.stage(decision.stage).label_for(writer.name),
            values=member_values(person.values, person.extra),
        )

    def _all_members(
        self,
        store: StateStore,
        writer: Target,
        segment: str,
        fresh: list[Member],
        reached: set[str],
        rows: dict[str, Any] | None,
    ) -> list[Member]:
        kept = [k for k in store.segment_members(writer.name, segment) if k not in reached]
        return _in_order([*fresh, *self._members_from_state(store, writer, kept, rows)])

    def _members_from_state(
        self, store: StateStore, writer: Target, keys: list[str], rows: dict[str, Any] | None
    ) -> list[Member]:
        rows = {} if rows is None else rows
        missing = [k for k in keys if k not in rows]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in store.db.execute(
                f"SELECT person_key, stage, snapshot FROM people WHERE person_key IN ({marks})", chunk
            ):
                rows[row[0]] = (row[1], decode_snapshot(row[2]))
        return [self._member_from_snapshot(k, writer, *rows[k]) for k in keys if k in rows]

    def _member_from_snapshot(self, key: str, writer: Target, stage: str, snap: dict[str, Any]) -> Member:
        refs = tuple(RecordRef.parse(r) for r in snap.get("refs", []))
        if writer.source:
            refs = tuple(r for r in refs if r.source == writer.source)
        values = {k: decode_value(v) for k, v in snap.get("values", {}).items()}
        extra = {k: decode_value(v) for k, v in snap.get("extra", {}).items()}
        return Member(
            key,
            refs,
            values.get("email"),
            values.get("first_name"),
            values.get("last_name"),
            values.get("company"),
            stage,
            self.config.stage_model.stage(stage).label_for(writer.name),
            member_values(values, extra),
        )

    def _gone_member(
        self,
        store: StateStore,
        key: str,
        writer: Target,
        people: dict[str, Person],
        decisions: dict[str, Decision],
    ) -> Member:
        if key in people:
            return self._member(people[key], writer, decisions[key])
        # the person has no records left anywhere: describe them from the last snapshot
        row = store.person(key)
        if row is None:
            return self._member_from_snapshot(key, writer, self.config.stage_model.default, {})
        return self._member_from_snapshot(key, writer, row["stage"], decode_snapshot(row["snapshot"]))


def _without_person(store: StateStore, target: str, segment: str) -> set[str]:
    """Members the state holds no person row for (not described, so not kept: the full path drops them)."""
    rows = store.db.execute(
        "SELECT person_key FROM memberships m WHERE target=? AND segment=? AND NOT EXISTS "
        "(SELECT 1 FROM people p WHERE p.person_key = m.person_key)",
        (target, segment),
    )
    return {r[0] for r in rows}


def list_segment_changes(
    summary: Summary, target: str, segment: str, adds: Iterable[Member], removes: Iterable[Member]
) -> None:
    """A line per add and remove, for `plan`, `--full` and the JSON listing: who it is, not only a key."""
    for change, group in (("add", adds), ("remove", removes)):
        summary.segment_changes.extend(
            {
                "target": target,
                "segment": segment,
                "change": change,
                "person": m.person_key,
                "email": m.email,
                "name": _name({"first_name": m.first_name, "last_name": m.last_name}),
            }
            for m in group
        )


def _in_order(members: list[Member]) -> list[Member]:
    return sorted(members, key=lambda m: (m.email or "", m.person_key))


def member_values(values: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """What a `Member` carries of a person: the schema values, and extras under their `extra.` names."""
    return {**values, **{f"extra.{name}": value for name, value in extra.items()}}


def _vetoed(veto: Veto | None, segment: SegmentConfig) -> bool:
    """An opt-out or refused consent on any record keeps a person out of every segment; a sales suppression on
    any record keeps them out unless the segment asks for suppressed people (vetoes.py)."""
    return veto is not None and not (veto.sales and segment.include_suppressed)


def superseded_refs(facts: list[Fact]) -> set[str]:
    """Records that must not be labelled: converted leads (the CRM refuses updates; the contact carries it)."""
    out = set()
    for fact in facts:
        if (
            fact.values.get("converted") is True
            and fact.kind.value == "person"
            and not fact.values.get("is_contact")
        ):
            out.add(str(fact.ref))
    return out


def _name(values: Mapping[str, Any]) -> str | None:
    """First and last name as one, or None when neither is known."""
    return " ".join(str(values[k]) for k in ("first_name", "last_name") if values.get(k)) or None
