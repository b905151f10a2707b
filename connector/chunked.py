"""The full path (a first run, `--full-recompute`) resolved and decided a part of everyone at a time.

Resolving everyone at once held every decoded fact, a union-find over every key string and every component
before the first person was decided: at a million people that alone was most of the run's peak memory. Here
the state is cut into parts that can never share a person, and each part is loaded, resolved, decided and
saved before the next is read.

Parts come from the link-key index (fact_index.py) and the identity rows: two facts that share no link key,
directly or through others, and whose records never belonged to one person, can never be folded into one
person or attached to one (incremental.py follows the same links). A union-find over integer ids, with the
names kept in a temporary SQLite table rather than in Python strings, groups the records; each part holds
whole groups, about `PART` records or more (one big group is one part).

Inside a part `identity.resolve` runs as before, so people, keys, merges and values are the ones a resolve of
everyone gives: the person keys already given out are asked of the state (the identity rows stay as they
were until every part is done, then the new ones replace them at once), and the keys claimed by earlier parts
are passed on. The one order left to chance is a brand-new person's key when two new people's key hashes
collide in 48 bits: then which of them gets the suffixed key follows the part order, not the sorted one.
"""

from __future__ import annotations

import datetime as dt
import os
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import structlog

from . import incremental
from .diffing import superseded_refs
from .engine import Decision
from .erasure import drop_suppressed
from .fact_index import link_keys
from .identity import KeySet, resolve
from .outcome import Summary
from .schema import Fact, Person
from .state import StateStore
from .tasks import store as task_ledger
from .vetoes import Veto, segment_vetoes

if TYPE_CHECKING:
    from .pipeline import Runner

# a part's people, their decisions, its converted leads (never labelled) and its segment vetoes
PartSink = Callable[[list[Person], Mapping[str, Decision], set[str], Mapping[str, Veto]], None]

log = structlog.get_logger(__name__)

PART = 5000  # records per part: small enough to stay flat in memory, big enough for few SQL round trips
PERSON = "\x00person:"  # a previous person key's node name (no merge key or record key starts so)
# secondary indexes a first run builds once over the filled tables (CREATE INDEX sorts the keys) instead of
# growing them a row at a time in random key order, each B-tree larger than the page cache at a million people.
# Not transitions_person: the follow-up tasks planner reads each part's latest transitions through it
# (tasks/planner.latest_transitions_of); without it every part would scan every transition stored so far.
BULK_INDEXES = ("people_next_check", "people_pipeline")


def parts(store: StateStore, size: int | None = None) -> Iterator[list[str]]:
    """Record refs (`source:object:id`) in groups that no person spans, about `size` (`PART`) records each."""
    size = size or PART
    db = store.db
    db.execute("DROP TABLE IF EXISTS temp.part_nodes")
    db.execute("DROP TABLE IF EXISTS temp.part_refs")
    db.execute("CREATE TEMP TABLE part_nodes (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
    db.execute("CREATE TEMP TABLE part_refs (part INTEGER NOT NULL, ref TEXT NOT NULL)")
    # the records first, so ids 1..records are the records
    db.execute(
        "INSERT OR IGNORE INTO part_nodes (name) SELECT source || ':' || object || ':' || record_id FROM facts"
    )
    records = db.execute("SELECT COALESCE(MAX(id), 0) FROM part_nodes").fetchone()[0]
    db.execute("INSERT OR IGNORE INTO part_nodes (name) SELECT key FROM fact_keys")
    db.execute("INSERT OR IGNORE INTO part_nodes (name) SELECT merge_key FROM identity")
    db.execute("INSERT OR IGNORE INTO part_nodes (name) SELECT ? || person_key FROM identity", (PERSON,))
    count = db.execute("SELECT COALESCE(MAX(id), 0) FROM part_nodes").fetchone()[0]
    parent = array("q", range(count + 1))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving keeps the trees flat without recursion
            i = parent[i]
        return i

    edges = (
        "SELECT a.id, b.id FROM fact_keys k JOIN part_nodes a ON a.name = k.key "
        "JOIN part_nodes b ON b.name = k.ref",
        "SELECT a.id, b.id FROM identity i JOIN part_nodes a ON a.name = i.merge_key "
        "JOIN part_nodes b ON b.name = ? || i.person_key",
    )
    for n, sql in enumerate(edges):
        for a, b in db.execute(sql, (PERSON,) if n else ()):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    db.executemany(
        "INSERT INTO part_refs VALUES (?, ?)",
        (
            (find(i), name)
            for i, name in db.execute("SELECT id, name FROM part_nodes WHERE id <= ?", (records,))
        ),
    )
    parent = array("q")  # freed before the parts are handed out
    db.execute("DROP TABLE temp.part_nodes")
    db.execute("CREATE INDEX temp.part_refs_order ON part_refs (part, ref)")
    # read a page at a time, each query done before the caller writes (no statement left open across commits)
    batch: list[str] = []
    last: tuple[int, str] = (-1, "")
    while page := db.execute(
        "SELECT part, ref FROM part_refs WHERE (part, ref) > (?, ?) ORDER BY part, ref LIMIT ?",
        (*last, max(size, 1000)),
    ).fetchall():
        for part, ref in page:
            if part != last[0] and len(batch) >= size:
                yield batch
                batch = []
            last = (part, ref)
            batch.append(ref)
    if batch:
        yield batch
    db.execute("DROP TABLE IF EXISTS temp.part_refs")


def resolve_and_decide(
    runner: Runner,
    store: StateStore,
    *,
    as_of: dt.date,
    run_id: int,
    summary: Summary,
    each_part: PartSink,
) -> None:
    """Everyone resolved and decided part by part (the full path). Each part's people and decisions go to
    `each_part` (full_plan.FullPlanner.add: the plan is made a part at a time too) and are then let go."""
    config = runner.config
    roles = {s.name: s.effective_role() for s in config.sources}
    environ = os.environ if runner.environ is None else runner.environ
    with store.transaction():
        incremental.drop_basis(store)  # until this run's writes are all done
        _ensure_index(store)
        store.db.execute("DROP TABLE IF EXISTS temp.next_identity")
        store.db.execute(
            # without a rowid, a scan walks it in key order: the copy into identity appends, page after page
            "CREATE TEMP TABLE next_identity (merge_key TEXT PRIMARY KEY, person_key TEXT NOT NULL) WITHOUT ROWID"
        )
    # the identity rows stay as they were until every part is done; a first run has none to ask about
    fresh = store.db.execute("SELECT 1 FROM identity LIMIT 1").fetchone() is None
    taken: KeySet = set() if fresh else incremental.TakenKeys(store)
    claimed: set[str] = set()
    stages: Counter[str] = Counter()
    moves: Counter[str] = Counter()
    per_source: Counter[str] = Counter()
    runner._suppressed_read = 0
    # one transaction for every part: committed part by part, each part's rows dirtied pages all over the
    # people, transitions and index B-trees (random keys) and every commit wrote them to the WAL again
    with store.transaction():
        rebuild = _drop_bulk_indexes(store) if fresh else []
        for refs in parts(store):
            read = sorted(store.stored_facts(refs).values(), key=_order)
            facts = drop_suppressed(store, read, environ)
            runner._suppressed_read += len(read) - len(facts)
            superseded = superseded_refs(facts)
            # the identity rows of every key these records can hold (a first run has none to look up)
            previous = {} if fresh else store.identity_of(sorted({k for f in facts for k in link_keys(f)}))
            resolution = resolve(
                facts,
                previous,
                as_of=as_of,
                merge_on=config.identity.merge_on,
                roles=roles,
                source_priority=config.identity.source_priority,
                taken=taken,
                claimed=claimed,
            )
            vetoes = segment_vetoes(facts, resolution.people, roles)
            del read, facts
            with store.transaction():
                for old, new in resolution.aliases.items():
                    store.rename_person(old, new)
                    task_ledger.rename_person(store, old, new)
                    log.info("identity.merged", retired=old, into=new)
                store.db.executemany(
                    "INSERT OR REPLACE INTO temp.next_identity VALUES (?, ?)", resolution.identity.items()
                )
            decided = runner._decide(store, resolution.people, as_of, run_id, summary, part=True)
            each_part(resolution.people, decided, superseded, vetoes)
            stages.update(summary.stages)
            moves.update(summary.transitions)
            total = summary.people.pop("total", 0)
            per_source.update(summary.people)
            per_source["\x00total"] += total
            del resolution, decided, superseded, vetoes
        with store.transaction():  # a savepoint
            store.db.execute("DELETE FROM identity")
            store.db.execute(
                "INSERT INTO identity SELECT merge_key, person_key FROM temp.next_identity ORDER BY merge_key"
            )
            store.db.execute("DROP TABLE temp.next_identity")
            for sql in rebuild:  # as they were, in this same transaction: a run stopped midway keeps them
                store.db.execute(sql)
            incremental.clear_dirty(store)
    summary.suppressed = runner._suppressed_read
    summary.stages = {s: stages.get(s, 0) for s in config.stage_model.ordered()}
    summary.transitions = dict(moves.most_common())
    total = per_source.pop("\x00total", 0)
    summary.people = {"total": total, **dict(sorted(per_source.items()))}


def _drop_bulk_indexes(store: StateStore) -> list[str]:
    """Drop `BULK_INDEXES` when nobody is stored yet (a first run), returning the statements that create them
    again as the schema holds them. With people stored (`--full-recompute`) every part updates rows the
    indexes already hold, so they stay. Nothing the parts run reads through these indexes (they serve the
    incremental path: who is due a check, whose deals are open)."""
    db = store.db
    if db.execute("SELECT 1 FROM people LIMIT 1").fetchone() is not None:
        return []
    marks = ",".join("?" * len(BULK_INDEXES))
    rows = db.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type='index' AND name IN ({marks}) ORDER BY name",
        BULK_INDEXES,
    ).fetchall()
    for name, _ in rows:
        db.execute(f'DROP INDEX "{name}"')
    return [sql for _, sql in rows]


def _ensure_index(store: StateStore) -> None:
    """The link-key index the parts come from. Every fact stored with a content hash was indexed as it was
    stored (state.upsert_facts); only facts stored before the index existed (no hash) need a pass over them,
    which decodes each one (a first run would decode everything twice for nothing)."""
    db = store.db
    if db.execute("SELECT 1 FROM meta WHERE key=?", (incremental.INDEX,)).fetchone() is not None:
        return
    if db.execute("SELECT 1 FROM facts WHERE hash IS NULL LIMIT 1").fetchone() is None:
        db.execute("INSERT INTO meta VALUES (?, '1')", (incremental.INDEX,))
        return
    incremental.ensure_index(store, store.all_facts())


def _order(fact: Fact) -> tuple[str, str, str]:
    """The order the state lists facts in (source, object, record id), as resolving everyone read them."""
    return (fact.ref.source, fact.ref.object, fact.ref.id)
