"""Reading one source into the state: map raw records, keep rejects, recognise echoes, move the cursor.

Facts and the cursor that covers them are stored in one transaction per batch, so a cursor never moves past
records that were not safely stored. Records earlier runs rejected are retried first.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import structlog

from .context import RunContext
from .errors import ConfigError, RecordError
from .fact_index import content_hash
from .logs import mask_text
from .schema import Fact, decode_value, encode_value
from .sources.base import Batch, Source
from .state import StateStore

log = structlog.get_logger(__name__)


def reject_reason(exc: BaseException) -> str:
    return mask_text(str(exc)) or type(exc).__name__


def new_stats() -> dict[str, int]:
    return {"records": 0, "unchanged": 0, "deleted": 0, "rejected": 0, "retried_ok": 0}


def read_source(
    store: StateStore,
    source: Source,
    ctx: RunContext,
    stats: dict[str, int],
    run_id: int,
    rejected_now: Counter[str],
    *,
    unknown_values: str = "report",
) -> None:
    """Read what changed in `source` into `store`; counts go to `stats`, rejection reasons to `rejected_now`.

    `unknown_values="error"`: the first batch holding a picklist value with no meaning raises ConfigError
    inside its transaction, so neither its records nor its cursor are stored.
    """
    name = source.name
    strict = unknown_values == "error"

    # Retry what earlier runs rejected first, so a fresher copy read below wins over the stored one.
    retry_rows = store.rejected("read", name)
    # a retry that fails is counted only if the fresh read below neither fixed nor rejected it again
    retry_failed: dict[str, str] = {}
    read_rejected: set[str] = set()
    if retry_rows:
        with store.transaction():
            for row in retry_rows:
                raw = (
                    {k: decode_value(v) for k, v in json.loads(row["payload"]).items()}
                    if row["payload"]
                    else None
                )
                if raw is None or row["object"] is None:
                    continue
                try:
                    fact = source.map(row["object"], raw)
                except RecordError as exc:
                    store.reject(
                        "read",
                        name,
                        row["item"],
                        reject_reason(exc),
                        run_id,
                        obj=row["object"],
                        code=exc.code,
                    )
                    retry_failed[row["item"]] = f"{name}: {exc.code or 'rejected'}"
                    continue
                store.upsert_facts(drop_echoes(store, name, [fact]))
                store.clear_rejected("read", name, [row["item"]])
                stats["retried_ok"] += 1
            if strict:
                refuse_unknown_values(source)

    cursors = store.cursors(name)
    for batch in source.read(cursors, ctx):
        with store.transaction():
            store_batch(store, source, batch, stats, run_id, rejected_now, read_rejected)
            if strict:
                refuse_unknown_values(source)
    if retry_failed:
        pending = {r["item"] for r in store.rejected("read", name)}
        for item, reason_key in retry_failed.items():
            if item in pending and item not in read_rejected:
                rejected_now[reason_key] += 1
    log.info("source.read.done", source=name, **stats)


def refuse_unknown_values(source: Source) -> None:
    """A config error naming every (field, value) with no meaning seen so far and how many records carry it."""
    if not source.unknown_values:
        return
    seen = ", ".join(
        f"{field} '{value}' ({n} record{'s' if n != 1 else ''})"
        for (field, value), n in sorted(source.unknown_values.items())
    )
    raise ConfigError(
        f"sources.{source.name}.unknown_values is 'error' and the data holds picklist values with no meaning: "
        f"{seen}; give them a meaning in value_maps (nothing was written)"
    )


def store_batch(
    store: StateStore,
    source: Source,
    batch: Batch,
    stats: dict[str, int],
    run_id: int,
    rejected_now: Counter[str],
    read_rejected: set[str],
) -> None:
    """Map, store and delete what one batch carries, and move its cursor: all in the caller's transaction."""
    name = source.name
    facts: list[Fact] = []
    for raw in batch.records:
        try:
            facts.append(source.map(batch.object, raw))
        except RecordError as exc:
            item = f"{batch.object}:{raw_id(raw)}"
            read_rejected.add(item)
            reason = reject_reason(exc)
            store.reject(
                "read",
                name,
                item,
                reason,
                run_id,
                obj=batch.object,
                code=exc.code,
                payload=jsonable(raw),
            )
            rejected_now[f"{name}: {exc.code or 'rejected'}"] += 1
            stats["rejected"] += 1
            log.warning("source.record.rejected", source=name, object=batch.object, item=item, reason=reason)
    deleted: dict[str, list[str]] = defaultdict(list)
    for fact in facts:
        if fact.deleted:
            deleted[fact.ref.object].append(fact.ref.id)
    deleted[batch.object].extend(batch.deleted)
    live = [f for f in facts if not f.deleted]
    fresh = drop_echoes(store, name, live)
    stats["unchanged"] += len(live) - len(fresh)
    store.upsert_facts(fresh)
    for obj, ids in deleted.items():
        if ids:
            stats["deleted"] += store.delete_facts(name, obj, ids)
            store.clear_rejected("read", name, [f"{obj}:{i}" for i in ids])
    if batch.live_ids is not None:
        gone = gone_ids(store, name, batch, read_rejected)
        stats["deleted"] += store.delete_facts(name, batch.object, gone)
        stale = [
            r["item"]
            for r in store.rejected("read", name)
            if r["object"] == batch.object and r["item"].split(":", 1)[1] not in batch.live_ids
        ]
        store.clear_rejected("read", name, stale)
    store.clear_rejected("read", name, [f"{f.ref.object}:{f.ref.id}" for f in facts])
    stats["records"] += len(facts) + batch.unchanged
    stats["unchanged"] += batch.unchanged
    if batch.cursor is not None:
        store.set_cursor(name, batch.object, batch.cursor)


def gone_ids(store: StateStore, source: str, batch: Batch, read_rejected: set[str]) -> set[str]:
    """The stored records of the batch's object that its `live_ids` no longer name.

    Listing every stored id of a file costs a read of all its facts; when the source vouches that every live
    id it did not reject is stored (`live_stored`), the kept count of stored facts tells whether any is left
    over, and only then are they listed."""
    obj, live = batch.object, batch.live_ids or set()
    if batch.live_stored:
        prefix = f"{obj}:"
        refused = [i.removeprefix(prefix) for i in read_rejected if i.startswith(prefix)]
        refused = [i for i in refused if i in live]
        # a refused row is stored only if an earlier read stored it
        stored_refused = store.fact_hashes(source, obj, refused) if refused else {}
        if store.fact_count(source, obj) == len(live) - len(refused) + len(stored_refused):
            return set()
    return store.fact_ids(source, obj) - live


def drop_echoes(store: StateStore, source: str, facts: list[Fact]) -> list[Fact]:
    """Leave out records whose mapped content did not change, only their modified time; stamp each value of
    the rest with when it last changed.

    A run's own writes (stage labels, segment fields) come back through the next incremental read with a new
    modified time. The label is not a signal, so the mapped fact is identical except for that time. Keeping
    the stored fact keeps its time too, so the run's own writes never make a record look newer in the
    precedence between sources (which would flip a person's stage back and forth between runs).

    A record that did change keeps the stamps of the values that did not (`Fact.stamp_changes`): precedence is
    per field, so an edit of a company name does not make the same record's old lead status newer than a
    sales decision taken since in another CRM.
    """
    by_object: dict[str, list[Fact]] = defaultdict(list)
    for fact in facts:
        by_object[fact.ref.object].append(fact)
    fresh: list[Fact] = []
    for obj, group in by_object.items():
        # the content hash tells an echo without decoding the stored fact; only a changed record (or one
        # stored before hashes were kept) needs its stored form, for the stamps of the values it kept
        hashes = store.fact_hashes(source, obj, [f.ref.id for f in group])
        differ = [f for f in group if hashes.get(f.ref.id) is None or hashes[f.ref.id] != content_hash(f)]
        known = [f.ref.id for f in differ if f.ref.id in hashes]
        stored = store.fact_payloads(source, obj, known) if known else {}
        for fact in differ:
            old = stored.get(fact.ref.id)
            if old is not None and same_content(old, fact.to_json()):
                continue
            fact.stamp_changes(Fact.from_json(old) if old is not None else None)
            fresh.append(fact)
    return fresh


def same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    # times are not content: a fresh read carries no stamps yet, and old stored facts carry none at all
    times = ("modified_at", "changed_at")
    return {k: v for k, v in a.items() if k not in times} == {k: v for k, v in b.items() if k not in times}


def raw_id(raw: dict[str, Any]) -> str:
    for key in ("__id__", "Id", "id"):
        if raw.get(key):
            return str(raw[key])
    if raw.get("__file__") is not None:
        return f"{raw['__file__']}:{raw.get('__line__')}"
    return json.dumps(raw, sort_keys=True, default=str)[:120]


def jsonable(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: encode_value(v) for k, v in raw.items()}
