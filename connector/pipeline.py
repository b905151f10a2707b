"""One run: read what changed, resolve people, decide stages, write only what changed.

    read    every source: map raw records to facts (a bad record is rejected with its reason and kept for
            the next run); facts and the cursor that covers them commit together
    resolve fold all known facts into people with stable keys
    decide  one stage per person by the configured rules; transitions recorded with their reason
    diff    labels that differ from the last label written per record and target; segment members to add and
            remove per target
    write   (run only) hand the differences to each writer; record what succeeded, keep what failed

`plan` does the same inside a state transaction that is rolled back, and calls no writer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import structlog

from .conditions import compile_condition
from .config import AppConfigBase, SegmentConfig
from .context import RunContext
from .engine import Decision, Previous, StageEngine
from .errors import (
    BudgetExceededError,
    ConfigError,
    ConnectorError,
    RecordError,
    UnreachableError,
)
from .identity import Resolution, resolve
from .logs import mask_text
from .registry import PluginEnv, source_plugins, writer_plugins
from .retry import RetryPolicy
from .schema import Fact, Person, RecordRef, decode_value, encode_value
from .segments import in_segment
from .sources.base import Batch, Source
from .state import StateStore
from .writers.base import LabelChange, Member, SegmentChange, Writer

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_CONFIG = 2
EXIT_PARTIAL = 3
EXIT_UNREACHABLE = 4
EXIT_LOCKED = 5
EXIT_BUDGET = 6
EXIT_INTERRUPTED = 130


@dataclass
class Summary:
    mode: str
    as_of: str
    run_id: int | None = None
    outcome: str = "ok"
    exit_code: int = EXIT_OK
    people: dict[str, int] = field(default_factory=dict)
    read: dict[str, dict[str, int]] = field(default_factory=dict)
    stages: dict[str, int] = field(default_factory=dict)
    transitions: dict[str, int] = field(default_factory=dict)
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    segments: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    rejected: dict[str, Any] = field(default_factory=lambda: {"count": 0, "pending": 0, "reasons": {}})
    api_calls: dict[str, int] = field(default_factory=dict)
    estimated_write_calls: dict[str, int] = field(default_factory=dict)
    unknown_values: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    label_changes: list[dict[str, Any]] = field(default_factory=list)
    segment_changes: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, detail: bool = False) -> dict[str, Any]:
        out = {
            k: v for k, v in self.__dict__.items() if detail or k not in ("label_changes", "segment_changes")
        }
        return out


@dataclass
class _Plan:
    labels: dict[str, list[LabelChange]]
    segments: dict[str, list[SegmentChange]]


def _reject_reason(exc: BaseException) -> str:
    return mask_text(str(exc)) or type(exc).__name__


class Runner:
    def __init__(
        self,
        config: AppConfigBase,
        *,
        environ: dict[str, str] | None = None,
        policy: RetryPolicy | None = None,
        clock: Any = None,
    ) -> None:
        self.config = config
        self.environ = environ
        self.policy = policy or RetryPolicy()
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.engine = StageEngine(config.stage_model)
        self._superseded: set[str] = set()
        self.env = PluginEnv(
            app=config, policy=self.policy, state_dir=config.state_path().parent, environ=environ
        )

    # ---- plugins --------------------------------------------------------------------------------------

    def build_sources(self) -> list[Source]:
        plugins = source_plugins()
        return [plugins[c.type].factory(c, self.env) for c in self.config.sources if c.enabled]

    def build_writers(self) -> list[Writer]:
        plugins = writer_plugins()
        return [plugins[c.type].factory(c, self.env) for c in self.config.targets if c.enabled]

    # ---- the run --------------------------------------------------------------------------------------

    def execute(self, mode: str, as_of: dt.date, store: StateStore | None = None) -> Summary:
        """`mode` is "run" or "plan". Never raises for expected failures: the summary carries the outcome."""
        summary = Summary(mode=mode, as_of=as_of.isoformat())
        owns_store = store is None
        store = store or StateStore(self.config.state_path())
        try:
            store.lock()
        except ConnectorError as exc:
            summary.outcome, summary.exit_code = "locked", EXIT_LOCKED
            summary.errors.append(str(exc))
            if owns_store:
                store.close()
            return summary
        started = self.clock()
        ctx = RunContext(as_of=as_of, started_at=started, dry_run=mode == "plan")
        self.env.shared.clear()
        try:
            sources = self.build_sources()
            writers = self.build_writers()  # plan needs them too: label objects, call estimates
        except ConfigError as exc:
            summary.outcome, summary.exit_code = "config_error", EXIT_CONFIG
            summary.errors.append(str(exc))
            store.unlock()
            if owns_store:
                store.close()
            return summary
        try:
            if mode == "plan":
                with store.dry_run():
                    self._execute(store, sources, writers, ctx, summary, 0)
            else:
                run_id = store.begin_run(mode, as_of, started)
                summary.run_id = run_id
                try:
                    self._execute(store, sources, writers, ctx, summary, run_id)
                except BaseException as exc:  # also SIGTERM / Ctrl-C: the run row must not say "ok"
                    interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
                    summary.outcome = "interrupted" if interrupted else "crashed"
                    summary.exit_code = EXIT_CRASH
                    summary.errors.append(f"{type(exc).__name__}: {exc}")
                    raise
                finally:
                    summary.api_calls = dict(ctx.api_calls)
                    store.finish_run(run_id, summary.outcome, summary.exit_code, summary.to_json())
        finally:
            plugins: list[Source | Writer] = [*sources, *writers]
            for plugin in plugins:
                try:
                    plugin.close()
                except Exception as exc:  # closing must not hide the run's own outcome
                    log.warning("plugin.close.failed", plugin=getattr(plugin, "name", "?"), error=str(exc))
            store.unlock()
            if owns_store:
                store.close()
        summary.api_calls = dict(ctx.api_calls)
        return summary

    def _execute(
        self,
        store: StateStore,
        sources: list[Source],
        writers: list[Writer],
        ctx: RunContext,
        summary: Summary,
        run_id: int,
    ) -> None:
        rejected_now: Counter[str] = Counter()
        unreachable = False
        for source in sources:
            try:
                self._read_source(store, source, ctx, summary, run_id, rejected_now)
            except (ConfigError, BudgetExceededError, UnreachableError, OSError) as exc:
                kind = _record_failure(summary, "source", source.name, exc)
                if kind != "unreachable":
                    # a config error or a spent budget ends the run before anything is written
                    summary.outcome, summary.exit_code = OUTCOMES[kind]
                    return
                unreachable = True  # the others go on; this source's last known records still count
            unknown = getattr(source, "unknown_values", None)
            if unknown:
                for (fname, value), n in unknown.items():
                    summary.unknown_values[f"{source.name}.{fname}={value}"] = n

        resolution = self._resolve(store, as_of=ctx.as_of)
        decisions = self._decide(store, resolution.people, ctx.as_of, run_id, summary)
        people = {p.key: p for p in resolution.people}
        plan = self._plan(store, writers, people, decisions, ctx.as_of, summary)
        for w in writers:
            n_labels = len(plan.labels.get(w.name, []))
            adds = sum(len(c.adds) for c in plan.segments.get(w.name, []))
            removes = sum(len(c.removes) for c in plan.segments.get(w.name, []))
            summary.estimated_write_calls[w.name] = w.estimate_calls(n_labels, adds, removes)

        budget_stop = False
        if not ctx.dry_run:
            for writer in writers:
                try:
                    self._write(store, writer, plan, ctx, summary, run_id, rejected_now)
                except (ConfigError, BudgetExceededError, UnreachableError, OSError) as exc:
                    kind = _record_failure(summary, "writer", writer.name, exc)
                    if kind == "config":
                        summary.outcome, summary.exit_code = OUTCOMES[kind]
                        return
                    # a spent budget or a dead system stops this target only; the other targets go on
                    budget_stop |= kind == "budget"
                    unreachable |= kind == "unreachable"

        if not ctx.dry_run:
            self._forget_gone_records(store, writers, people)
        summary.rejected["count"] = sum(rejected_now.values())
        summary.rejected["reasons"] = dict(rejected_now.most_common(20))
        summary.rejected["pending"] = len(store.rejected())
        if budget_stop:
            summary.outcome, summary.exit_code = "budget_stop", EXIT_BUDGET
        elif unreachable:
            summary.outcome, summary.exit_code = "unreachable", EXIT_UNREACHABLE
        elif summary.rejected["count"]:
            summary.outcome, summary.exit_code = "partial", EXIT_PARTIAL

    def _forget_gone_records(
        self, store: StateStore, writers: list[Writer], people: dict[str, Person]
    ) -> None:
        """Drop remembered labels of records that no longer exist (deleted, merged away)."""
        live = {str(ref) for person in people.values() for ref in person.refs}
        with store.transaction():
            for writer in writers:
                stale = [ref for ref in store.labels(writer.name) if ref not in live]
                store.forget_labels(writer.name, stale)
                store.clear_rejected("write", writer.name, stale)

    # ---- read ---------------------------------------------------------------------------------------

    def _read_source(
        self,
        store: StateStore,
        source: Source,
        ctx: RunContext,
        summary: Summary,
        run_id: int,
        rejected_now: Counter[str],
    ) -> None:
        name = source.name
        stats = summary.read.setdefault(
            name, {"records": 0, "unchanged": 0, "deleted": 0, "rejected": 0, "retried_ok": 0}
        )

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
                            _reject_reason(exc),
                            run_id,
                            obj=row["object"],
                            code=exc.code,
                        )
                        retry_failed[row["item"]] = f"{name}: {exc.code or 'rejected'}"
                        continue
                    store.upsert_facts([fact])
                    store.clear_rejected("read", name, [row["item"]])
                    stats["retried_ok"] += 1

        cursors = store.cursors(name)
        for batch in source.read(cursors, ctx):
            with store.transaction():
                self._store_batch(store, source, batch, stats, run_id, rejected_now, read_rejected)
        if retry_failed:
            pending = {r["item"] for r in store.rejected("read", name)}
            for item, reason_key in retry_failed.items():
                if item in pending and item not in read_rejected:
                    rejected_now[reason_key] += 1
        log.info("source.read.done", source=name, **stats)

    def _store_batch(
        self,
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
                item = f"{batch.object}:{_raw_id(raw)}"
                read_rejected.add(item)
                reason = _reject_reason(exc)
                store.reject(
                    "read",
                    name,
                    item,
                    reason,
                    run_id,
                    obj=batch.object,
                    code=exc.code,
                    payload=_jsonable(raw),
                )
                rejected_now[f"{name}: {exc.code or 'rejected'}"] += 1
                stats["rejected"] += 1
                log.warning(
                    "source.record.rejected", source=name, object=batch.object, item=item, reason=reason
                )
        deleted: dict[str, list[str]] = defaultdict(list)
        for fact in facts:
            if fact.deleted:
                deleted[fact.ref.object].append(fact.ref.id)
        deleted[batch.object].extend(batch.deleted)
        live = [f for f in facts if not f.deleted]
        fresh = _drop_echoes(store, name, live)
        stats["unchanged"] += len(live) - len(fresh)
        store.upsert_facts(fresh)
        for obj, ids in deleted.items():
            if ids:
                stats["deleted"] += store.delete_facts(name, obj, ids)
                store.clear_rejected("read", name, [f"{obj}:{i}" for i in ids])
        if batch.live_ids is not None:
            gone = store.fact_ids(name, batch.object) - batch.live_ids
            stats["deleted"] += store.delete_facts(name, batch.object, gone)
            stale = [
                r["item"]
                for r in store.rejected("read", name)
                if r["object"] == batch.object and r["item"].split(":", 1)[1] not in batch.live_ids
            ]
            store.clear_rejected("read", name, stale)
        store.clear_rejected("read", name, [f"{f.ref.object}:{f.ref.id}" for f in facts])
        stats["records"] += len(facts)
        if batch.cursor is not None:
            store.set_cursor(name, batch.object, batch.cursor)

    # ---- resolve and decide -------------------------------------------------------------------------

    def _resolve(self, store: StateStore, *, as_of: dt.date) -> Resolution:
        roles = {s.name: s.effective_role() for s in self.config.sources}
        facts = list(store.all_facts())
        self._superseded = _superseded_refs(facts)
        resolution = resolve(
            facts,
            store.identity(),
            as_of=as_of,
            merge_on=self.config.identity.merge_on,
            roles=roles,
            source_priority=self.config.identity.source_priority,
        )
        with store.transaction():
            for old, new in resolution.aliases.items():
                store.rename_person(old, new)
                log.info("identity.merged", retired=old, into=new)
            store.replace_identity(resolution.identity)
        return resolution

    def _decide(
        self, store: StateStore, people: list[Person], as_of: dt.date, run_id: int, summary: Summary
    ) -> dict[str, Decision]:
        previous = store.people()
        decisions: dict[str, Decision] = {}
        stage_counts: Counter[str] = Counter()
        moves: Counter[str] = Counter()
        with store.transaction():
            for person in people:
                row = previous.get(person.key)
                prev = Previous(row["stage"], row["path_stage"]) if row else None
                decision = self.engine.decide(person, prev, as_of)
                decisions[person.key] = decision
                stage_counts[decision.stage] += 1
                snapshot = _snapshot(person)
                changed = row is None or row["stage"] != decision.stage
                if changed:
                    store.add_transition(
                        person.key,
                        prev.stage if prev else None,
                        decision.stage,
                        as_of,
                        run_id,
                        decision.rule,
                        decision.reason(),
                    )
                    moves[f"{prev.stage if prev else '(new)'}->{decision.stage}"] += 1
                since = as_of if changed or row is None else dt.date.fromisoformat(row["since"])
                decision_json = json.dumps(decision.to_json(), sort_keys=True, default=str)
                snapshot_json = json.dumps(snapshot, sort_keys=True, default=str)
                if (
                    row is None
                    or changed
                    or row["path_stage"] != decision.path_stage
                    or row["decision"] != decision_json
                    or row["snapshot"] != snapshot_json
                ):
                    store.save_person(
                        person.key,
                        decision.stage,
                        decision.path_stage,
                        since,
                        decision.to_json(),
                        snapshot,
                        run_id,
                    )
            gone = set(previous) - {p.key for p in people}
            store.remove_people(gone)
        summary.stages = {s: stage_counts.get(s, 0) for s in self.config.stage_model.ordered()}
        summary.transitions = dict(moves.most_common())
        per_source: Counter[str] = Counter()
        for person in people:
            for src in {r.source for r in person.refs} | set(person.values.get("sources") or []):
                per_source[src] += 1
        summary.people = {"total": len(people), **dict(sorted(per_source.items()))}
        return decisions

    # ---- diff ---------------------------------------------------------------------------------------

    def _plan(
        self,
        store: StateStore,
        writers: list[Writer],
        people: dict[str, Person],
        decisions: dict[str, Decision],
        as_of: dt.date,
        summary: Summary,
    ) -> _Plan:
        model = self.config.stage_model
        labels: dict[str, list[LabelChange]] = {}
        segments: dict[str, list[SegmentChange]] = {}
        unlabelled = self._superseded
        suppressed = set(model.suppress)
        for writer in writers:
            changes: list[LabelChange] = []
            if writer.source and writer.label_objects:
                written = store.labels(writer.name)
                for person in people.values():
                    stage = decisions[person.key].stage
                    label = model.stage(stage).label_for(writer.name)
                    for ref in person.refs_in(writer.source):
                        if ref.object not in writer.label_objects or str(ref) in unlabelled:
                            continue
                        old = written.get(str(ref))
                        if old != label:
                            changes.append(LabelChange(person.key, ref, old, label))
            changes.sort(key=lambda c: (c.ref.object, c.ref.id))
            labels[writer.name] = changes
            summary.labels[writer.name] = {"changes": len(changes)}
            for change in changes:
                summary.label_changes.append(
                    {
                        "target": writer.name,
                        "ref": str(change.ref),
                        "person": change.person_key,
                        "from": change.old,
                        "to": change.new,
                    }
                )

            current = store.members(writer.name)
            seg_changes: list[SegmentChange] = []
            for segment in self.config.segments:
                if writer.name not in segment.targets:
                    continue
                members = self._members(segment, writer, people, decisions, suppressed, as_of)
                now_keys = {m.person_key for m in members}
                before = current.get(segment.name, set())
                adds = [m for m in members if m.person_key not in before]
                removes = [
                    self._gone_member(store, key, writer, people, decisions)
                    for key in sorted(before - now_keys)
                ]
                seg_changes.append(SegmentChange(segment.name, members, adds, removes))
                summary.segments.setdefault(writer.name, {})[segment.name] = {
                    "members": len(members),
                    "adds": len(adds),
                    "removes": len(removes),
                }
                for m in adds:
                    summary.segment_changes.append(
                        {
                            "target": writer.name,
                            "segment": segment.name,
                            "change": "add",
                            "person": m.person_key,
                            "email": m.email,
                        }
                    )
                for m in removes:
                    summary.segment_changes.append(
                        {
                            "target": writer.name,
                            "segment": segment.name,
                            "change": "remove",
                            "person": m.person_key,
                            "email": m.email,
                        }
                    )
            segments[writer.name] = seg_changes
        return _Plan(labels, segments)

    def _member(self, person: Person, writer: Writer, decision: Decision) -> Member:
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
        )

    def _members(
        self,
        segment: SegmentConfig,
        writer: Writer,
        people: dict[str, Person],
        decisions: dict[str, Decision],
        suppressed: set[str],
        as_of: dt.date,
    ) -> list[Member]:
        out = []
        when = compile_condition(segment.when)
        for person in people.values():
            decision = decisions[person.key]
            if not in_segment(person, decision.stage, None, segment, suppressed, as_of, when):
                continue
            member = self._member(person, writer, decision)
            if writer.source and not member.refs:
                continue  # the target system holds no record of this person
            out.append(member)
        out.sort(key=lambda m: (m.email or "", m.person_key))
        return out

    def _gone_member(
        self,
        store: StateStore,
        key: str,
        writer: Writer,
        people: dict[str, Person],
        decisions: dict[str, Decision],
    ) -> Member:
        if key in people:
            return self._member(people[key], writer, decisions[key])
        # the person has no records left anywhere: describe them from the last snapshot
        row = store.person(key)
        snap = json.loads(row["snapshot"]) if row else {}
        refs = tuple(RecordRef.parse(r) for r in snap.get("refs", []))
        if writer.source:
            refs = tuple(r for r in refs if r.source == writer.source)
        values = snap.get("values", {})
        stage = row["stage"] if row else self.config.stage_model.default
        return Member(
            key,
            refs,
            values.get("email"),
            values.get("first_name"),
            values.get("last_name"),
            values.get("company"),
            stage,
            self.config.stage_model.stage(stage).label_for(writer.name),
        )

    # ---- write --------------------------------------------------------------------------------------

    def _write(
        self,
        store: StateStore,
        writer: Writer,
        plan: _Plan,
        ctx: RunContext,
        summary: Summary,
        run_id: int,
        rejected_now: Counter[str],
    ) -> None:
        changes = plan.labels.get(writer.name, [])
        stats = summary.labels[writer.name]
        if changes:
            result = writer.write_labels(changes, ctx)
            done = [c for c in changes if str(c.ref) not in result.failed]
            with store.transaction():
                store.set_labels(writer.name, [(c.ref, c.person_key, c.new) for c in done], run_id)
                store.clear_rejected("write", writer.name, [str(c.ref) for c in done])
                for item, exc in result.failed.items():
                    store.reject(
                        "write", writer.name, item, _reject_reason(exc), run_id, obj="label", code=exc.code
                    )
                    rejected_now[f"{writer.name}: {exc.code or 'rejected'}"] += 1
            stats["written"] = len(done)
            stats["failed"] = len(result.failed)
            summary.notes.extend(result.notes)
            log.info(
                "writer.labels.done",
                target=writer.name,
                written=len(done),
                failed=len(result.failed),
                calls=result.calls,
            )
        for change in plan.segments.get(writer.name, []):
            # writers that publish the whole segment (files) also want unchanged segments: names and stages
            # of members may have changed, and an empty segment still gets its (empty) file
            if not change.adds and not change.removes and not getattr(writer, "publishes_snapshots", False):
                continue
            result = writer.sync_segment(change, ctx)
            added = [m.person_key for m in change.adds if m.person_key not in result.failed]
            removed = [m.person_key for m in change.removes if m.person_key not in result.failed]
            with store.transaction():
                store.add_members(writer.name, change.segment, added, ctx.as_of, run_id)
                store.remove_members(writer.name, change.segment, removed)
                store.clear_rejected("write", writer.name, [f"{change.segment}:{k}" for k in added + removed])
                for item, exc in result.failed.items():
                    store.reject(
                        "write",
                        writer.name,
                        f"{change.segment}:{item}",
                        _reject_reason(exc),
                        run_id,
                        obj="segment",
                        code=exc.code,
                    )
                    rejected_now[f"{writer.name}: {exc.code or 'rejected'}"] += 1
            seg_stats = summary.segments[writer.name][change.segment]
            seg_stats["added"] = len(added)
            seg_stats["removed"] = len(removed)
            seg_stats["failed"] = len(result.failed)
            summary.notes.extend(result.notes)
            log.info(
                "writer.segment.done",
                target=writer.name,
                segment=change.segment,
                added=len(added),
                removed=len(removed),
                failed=len(result.failed),
                calls=result.calls,
            )


def _drop_echoes(store: StateStore, source: str, facts: list[Fact]) -> list[Fact]:
    """Leave out records whose mapped content did not change, only their modified time.

    A run's own writes (stage labels, segment fields) come back through the next incremental read with a new
    modified time. The label is not a signal, so the mapped fact is identical except for that time. Keeping
    the stored fact keeps its time too, so the run's own writes never make a record look newer in the
    precedence between sources (which would flip a person's stage back and forth between runs).
    """
    by_object: dict[str, list[Fact]] = defaultdict(list)
    for fact in facts:
        by_object[fact.ref.object].append(fact)
    fresh: list[Fact] = []
    for obj, group in by_object.items():
        stored = store.fact_payloads(source, obj, [f.ref.id for f in group])
        for fact in group:
            old = stored.get(fact.ref.id)
            if old is not None and _same_content(old, fact.to_json()):
                continue
            fresh.append(fact)
    return fresh


def _same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k != "modified_at"} == {
        k: v for k, v in b.items() if k != "modified_at"
    }


OUTCOMES = {"config": ("config_error", EXIT_CONFIG), "budget": ("budget_stop", EXIT_BUDGET)}


def _record_failure(summary: Summary, role: str, name: str, exc: Exception) -> str:
    """Classify a source's or writer's failure ("config", "budget", "unreachable") and note it in the summary."""
    if isinstance(exc, ConfigError):
        kind = "config"
    elif isinstance(exc, BudgetExceededError):
        kind = "budget"
    else:
        kind = "unreachable"
    text = mask_text(str(exc))  # the summary is printed and kept in state: no secret may ride along
    summary.errors.append(f"{name}: unreachable: {text}" if kind == "unreachable" else f"{name}: {text}")
    log.error(f"{role}.{kind}", name=name, error=str(exc))
    return kind


def _raw_id(raw: dict[str, Any]) -> str:
    for key in ("__id__", "Id", "id"):
        if raw.get(key):
            return str(raw[key])
    if raw.get("__file__") is not None:
        return f"{raw['__file__']}:{raw.get('__line__')}"
    return json.dumps(raw, sort_keys=True, default=str)[:120]


def _jsonable(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: encode_value(v) for k, v in raw.items()}


def _superseded_refs(facts: list[Fact]) -> set[str]:
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


def _snapshot(person: Person) -> dict[str, Any]:
    return {
        "refs": [str(r) for r in person.refs],
        "values": {k: encode_value(v) for k, v in sorted(person.values.items())},
        "extra": {k: encode_value(v) for k, v in sorted(person.extra.items())},
        "provenance": person.provenance,
    }
