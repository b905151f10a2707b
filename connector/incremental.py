"""Incremental runs: resolve and decide only the people a run can have changed.

A person's outcome (stage, labels, segment memberships) can change only when (a) a fact of theirs changed, was
added or deleted, (b) the as-of date crossed a date at which one of their rules, segment conditions or
contract choices flips (`next_check`, kept per person), or (c) a write for them was rejected last time and must
be tried again. Everything else is as the last run left it, provided that run finished its writes: the state
then says exactly what each target holds.

So the run starts from the records that changed (`dirty_facts`, marked by the state as facts are stored or
deleted), the people due for a check and the pending rejections, and follows link keys (fact_index.py) and
identity rows until nothing new is reached: every fact that can share a person with a changed one, and every
fact of every person it belonged to before. Resolving those facts alone gives the same people as resolving
everyone (a component never reaches outside the closure), and merges or splits stay inside it.

The incremental path is taken only when the state holds a *basis*: the last run decided with the same config,
on an as-of date not after this one, and completed every write (no target stopped, no guard hold). Anything
else, and `--full-recompute`, takes the full path, which sets the basis again when it completes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from .conditions import Group, Leaf, Negation, Node, compile_condition
from .config import LOADER_KEYS, AppConfigBase
from .fact_index import link_keys
from .schema import Fact, Person
from .state import PersonIndex, StateStore

log = structlog.get_logger(__name__)

BASIS = "incremental_basis"
INDEX = "fact_index"
CHUNK = 500


# ---- the basis: may this run be incremental? ------------------------------------------------------------


def fingerprint(config: AppConfigBase) -> str:
    """Any change of the config (a rule, a segment, a target, merge_on) can change anyone's outcome; the
    loader's notes of where the file is and how the command line spelled it cannot (`-c x.yaml` and
    `-c ./x.yaml` are one config, and a run after either stays incremental)."""
    data = config.model_dump(mode="json", exclude=set(LOADER_KEYS))
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def basis_holds(store: StateStore, config_fingerprint: str, as_of: dt.date) -> bool:
    row = store.db.execute("SELECT value FROM meta WHERE key=?", (BASIS,)).fetchone()
    index = store.db.execute("SELECT value FROM meta WHERE key=?", (INDEX,)).fetchone()
    if row is None or index is None:
        return False
    basis = json.loads(row[0])
    # next_check only looks forward: an as-of date before the last one may undo any window
    return bool(basis.get("config") == config_fingerprint and basis.get("as_of", "9999") <= as_of.isoformat())


def drop_basis(store: StateStore) -> None:
    store.db.execute("DELETE FROM meta WHERE key=?", (BASIS,))
    # the totals kept for the basis go with it: a run that stops part way leaves none (see `totals`)
    store.drop_totals()


def set_basis(store: StateStore, config_fingerprint: str, as_of: dt.date) -> None:
    with store.transaction():
        store.db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value=excluded.value",
            (BASIS, json.dumps({"config": config_fingerprint, "as_of": as_of.isoformat()})),
        )


def ensure_index(store: StateStore, facts: Iterable[Fact]) -> None:
    """Fill the link-key index once for facts stored before it existed (the full path calls this)."""
    if store.db.execute("SELECT 1 FROM meta WHERE key=?", (INDEX,)).fetchone() is not None:
        return
    store.db.execute("DELETE FROM fact_keys")
    store.db.executemany(
        "INSERT OR IGNORE INTO fact_keys VALUES (?, ?)",
        ((key, ref) for f in facts for ref in (str(f.ref),) for key in link_keys(f) if key != ref),
    )
    store.db.execute("INSERT INTO meta VALUES (?, '1')", (INDEX,))


def clear_dirty(store: StateStore) -> None:
    store.db.execute("DELETE FROM dirty_facts")


# ---- the affected set -----------------------------------------------------------------------------------


@dataclass
class Affected:
    facts: list[Fact]  # in the order the full path reads them (source, object, record id)
    people: set[str]  # person keys the closure reached (identity and state before this run)
    refs: set[str]  # every record reached, facts or not (a deleted record has none)
    identity: dict[str, str] = field(default_factory=dict)  # merge key -> person key, for the keys reached
    # the run totals the last run left, and the part of them that the people reached made up before this run
    # (`totals` takes the second out of the first and puts in what this run decided for them)
    kept: Totals | None = None
    before: Totals | None = None


def affected(store: StateStore, as_of: dt.date) -> Affected:
    db = store.db
    refs: set[str] = set()
    keys: set[str] = set()
    people: set[str] = set()
    new_refs: set[str] = set()
    new_keys: set[str] = set()
    new_people: set[str] = set()
    loaded: dict[str, Fact] = {}  # every stored fact reached, decoded once
    for ref, old_keys in db.execute("SELECT ref, old_keys FROM dirty_facts"):
        new_refs.add(ref)
        new_keys.update(json.loads(old_keys))
    for row in db.execute("SELECT object, item FROM rejected WHERE phase='write'"):
        if row[0] == "segment":
            new_people.add(row[1].rsplit(":", 1)[1])
        elif row[0] == "task":  # `person/task/key` (tasks/sync.py)
            new_people.add(row[1].split("/", 1)[0])
        else:
            new_refs.add(row[1])
    # a follow-up task written pending (a crash after the create) or refused is retried with its person
    new_people.update(
        r[0]
        for r in db.execute("SELECT DISTINCT person_key FROM tasks WHERE status IN ('pending', 'rejected')")
    )
    new_people.update(
        r[0] for r in db.execute("SELECT person_key FROM people WHERE next_check <= ?", (as_of.isoformat(),))
    )
    while new_refs or new_keys or new_people:
        refs |= new_refs
        keys |= new_keys
        people |= new_people
        found_keys = set(new_refs)  # a record's own key is one of its link keys (and identity keys)
        reached = store.stored_facts(new_refs)
        loaded.update(reached)
        for fact in reached.values():  # the index is searched by key only: a record's keys are in its fact
            found_keys |= link_keys(fact)
        found_keys |= _select(store, "SELECT merge_key FROM identity WHERE person_key IN ({})", new_people)
        found_refs = _select(store, "SELECT ref FROM fact_keys WHERE key IN ({})", new_keys)
        # a key naming a record (its own key, a cross-reference) reaches that record, stored or not; the index
        # keeps no row for it. Anything else with two colons is a harmless extra: all it reaches is followed
        found_refs |= {k for k in new_keys if k.count(":") >= 2}
        found_people = _select(store, "SELECT person_key FROM identity WHERE merge_key IN ({})", new_keys)
        new_keys = found_keys - keys
        new_refs = found_refs - refs
        new_people = found_people - people
    identity: dict[str, str] = {}
    for chunk in _chunks(sorted(keys)):
        marks = ",".join("?" * len(chunk))
        identity.update(
            db.execute(f"SELECT merge_key, person_key FROM identity WHERE merge_key IN ({marks})", chunk)
        )
    facts = sorted(loaded.values(), key=lambda f: (f.ref.source, f.ref.object, f.ref.id))
    kept = store.kept_totals()
    before = _live_totals_of(store, people) if kept is not None else None
    return Affected(facts, people, refs, identity, Totals.of_json(kept), before)


def _select(store: StateStore, sql: str, values: set[str]) -> set[str]:
    out: set[str] = set()
    for chunk in _chunks(sorted(values)):
        out.update(r[0] for r in store.db.execute(sql.format(",".join("?" * len(chunk))), chunk))
    return out


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


class TakenKeys:
    """The person keys identity held before this run, asked of the state one at a time (a new person's
    key must not collide with anyone's), plus the keys minted in this run."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.minted: set[str] = set()

    def __contains__(self, key: object) -> bool:
        if key in self.minted:
            return True
        row = self.store.db.execute("SELECT 1 FROM identity WHERE person_key=? LIMIT 1", (key,)).fetchone()
        return row is not None

    def add(self, key: str) -> None:
        self.minted.add(key)


# ---- what a later run must know of a person -----------------------------------------------------------


class Horizon:
    """The day offsets the configured rules and segments compare dates at; from them, per person, the next
    as-of date at which one of those comparisons (or the choice of the nearest future contract end) flips."""

    def __init__(self, config: AppConfigBase) -> None:
        offsets = {0}
        nodes = [compile_condition(r.when) for r in config.stage_model.rules]
        nodes += [compile_condition(s.when) for s in config.segments]
        nodes += [compile_condition(t.when) for t in config.tasks if t.when is not None]
        for node in nodes:
            _offsets(node, offsets)
        for task in config.tasks:
            # a follow-up task's window opens `before` days ahead of its date and closes the day after `after`
            # (tasks/triggers.py): both are days a person must be looked at again, facts changed or not
            before, after = task.trigger.window()
            offsets.update((before, -after))
        self.offsets = sorted(offsets)

    def next_check(self, person: Person, as_of: dt.date) -> dt.date | None:
        best: dt.date | None = None
        for value in [*person.values.values(), *person.extra.values()]:
            if isinstance(value, dt.datetime):
                value = value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
            if not isinstance(value, dt.date):
                continue
            for k in self.offsets:
                for day in (value - dt.timedelta(days=k), value - dt.timedelta(days=k - 1)):
                    if day > as_of and (best is None or day < best):
                        best = day
        return best


def _offsets(node: Node, out: set[int]) -> None:
    if isinstance(node, Group):
        for child in node.children:
            _offsets(child, out)
    elif isinstance(node, Negation):
        _offsets(node.child, out)
    elif isinstance(node, Leaf):
        if node.window is not None:
            out.update(node.window)
        operands = (
            node.operand if isinstance(node.operand, list | tuple | set | frozenset) else [node.operand]
        )
        for operand in operands:
            days = _relative_days(operand)
            if days is not None:
                out.add(days)


def _relative_days(operand: Any) -> int | None:
    from .conditions import RELATIVE_DAY

    if not isinstance(operand, str):
        return None
    match = RELATIVE_DAY.match(operand.strip().lower())
    if not match:
        return None
    sign, days = match.groups()
    return int(days or 0) * (-1 if sign == "-" else 1)


def person_index(horizon: Horizon, person: Person, as_of: dt.date) -> PersonIndex:
    values = person.values
    sources = tuple(sorted({r.source for r in person.refs} | set(values.get("sources") or [])))
    pipeline = None
    if values.get("opportunity_open"):
        pipeline = {
            "opportunity_open": values.get("opportunity_open"),
            "opportunity_open_amount": values.get("opportunity_open_amount"),
        }
    return PersonIndex(horizon.next_check(person, as_of), sources, pipeline)


# ---- run totals from the state --------------------------------------------------------------------------

LIVE = "EXISTS (SELECT 1 FROM identity i WHERE i.person_key = people.person_key)"


@dataclass
class Totals:
    """People per stage, in all and per source: the totals a run reports of everyone who has records."""

    stages: dict[str, int]
    people: dict[str, int]  # "total", then per source

    @classmethod
    def of_json(cls, data: dict[str, Any] | None) -> Totals | None:
        if data is None:
            return None
        return cls(dict(data["stages"]), dict(data["people"]))

    def to_json(self) -> dict[str, Any]:
        return {"stages": self.stages, "people": self.people}


def keep_totals(store: StateStore, stages: dict[str, int], people: dict[str, int]) -> None:
    """The totals a full run counted, kept for the incremental runs that follow it."""
    with store.transaction():
        store.keep_totals(Totals(stages, people).to_json())


def totals(
    store: StateStore, scope: Affected, stages: dict[str, int], people: dict[str, int]
) -> tuple[dict[str, int], dict[str, int]]:
    """An incremental run's totals over everyone, from `stages` and `people` counted over the people it decided.

    Nobody outside the people a run reached changes stage, sources or records, so the totals are the kept
    ones, less what the reached people counted for before, plus what the decided ones count for now (a
    reached person who was not decided again has no records left, so counts for nothing). Counting the
    whole people table instead costs a scan of every person on every run. Without kept totals (a state from
    before they were kept, or after an erasure) they are counted from the state, and kept from then on."""
    kept, before = scope.kept, scope.before
    if kept is not None and before is not None:
        new_stages = {s: kept.stages.get(s, 0) - before.stages.get(s, 0) + stages.get(s, 0) for s in stages}
        names = (set(kept.people) | set(people)) - {"total"}
        per_source = {s: kept.people.get(s, 0) - before.people.get(s, 0) + people.get(s, 0) for s in names}
        total = kept.people.get("total", 0) - before.people.get("total", 0) + people.get("total", 0)
        counts = [*new_stages.values(), *per_source.values(), total]
        if min(counts, default=0) >= 0:
            result = (new_stages, {"total": total, **{s: n for s, n in sorted(per_source.items()) if n}})
            keep_totals(store, *result)
            return result
        log.warning("run.totals.inconsistent", detail="kept totals counted again from the state")
    counted = stage_counts(store)
    result = ({s: counted.get(s, 0) for s in stages}, people_counts(store))
    keep_totals(store, *result)
    return result


def _live_totals_of(store: StateStore, keys: set[str]) -> Totals:
    """What these people count for in the totals now (those with records: see `stage_counts`)."""
    stages: dict[str, int] = defaultdict(int)
    people: dict[str, int] = defaultdict(int)
    for chunk in _chunks(sorted(keys)):
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT stage, sources FROM people WHERE person_key IN ({marks}) AND {LIVE}"
        for stage, sources in store.db.execute(sql, chunk):
            stages[stage] += 1
            people["total"] += 1
            _count_sources(people, sources, 1)
    return Totals(dict(stages), dict(people))


def stage_counts(store: StateStore) -> dict[str, int]:
    """People per stage, over everyone who still has records (a person kept only until their removal from a
    segment went through is not counted, as the full path does not)."""
    rows = store.db.execute(f"SELECT stage, COUNT(*) FROM people WHERE {LIVE} GROUP BY stage")
    return {r[0]: r[1] for r in rows}


def people_counts(store: StateStore) -> dict[str, int]:
    total = 0
    per_source: dict[str, int] = defaultdict(int)
    # people share a handful of source combinations: SQLite counts each, Python only splits the few
    rows = store.db.execute(f"SELECT sources, COUNT(*) FROM people WHERE {LIVE} GROUP BY sources")
    for sources, n in rows:
        total += n
        _count_sources(per_source, sources, n)
    return {"total": total, **dict(sorted(per_source.items()))}


def _count_sources(counts: dict[str, int], sources: str | None, n: int) -> None:
    """Add `n` people to each source of a people row's `sources` (one name a line)."""
    for src in (sources or "").split("\n"):
        if src:
            counts[src] += n


def pipeline_pairs(store: StateStore) -> list[tuple[str, dict[str, Any]]]:
    # the partial index people_pipeline (migration 12) holds only the people with an open pipeline
    rows = store.db.execute(f"SELECT stage, pipeline FROM people WHERE pipeline IS NOT NULL AND {LIVE}")
    return [(r[0], json.loads(r[1])) for r in rows]
