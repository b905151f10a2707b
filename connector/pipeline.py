"""One run: read what changed, resolve people, decide stages, write only what changed.

    read    every source (reading.py): map raw records to facts (a bad record is rejected with its reason and
            kept for the next run); facts and the cursor that covers them commit together
    resolve fold the facts a run reached (incremental.py; everyone a part at a time on a full run: chunked.py)
            into people with stable keys
    decide  one stage per person by the configured rules; transitions recorded with their reason
    diff    (diffing.py) labels that differ from the last label written per record and target; segment
            members to add and remove per target
    write   (run only; writing.py) hand the differences to each writer; record what succeeded, keep what failed
            (also when the writer lost its system part way: then that target stops, exit 4)

`plan` does the same inside a state transaction that is rolled back, and calls no writer.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

import structlog

from . import chunked, incremental, interrupts
from .config import AppConfigBase
from .context import RunContext, plugin_env
from .coverage import pipeline_figures, warn_if_short
from .diffing import ChangePlanner, Plan, superseded_refs
from .engine import Decision, Previous, StageEngine
from .erasure import drop_suppressed, retry_erasures
from .errors import (
    BudgetExceededError,
    ConfigError,
    ConnectorError,
    RecordError,
    StateError,
    UnreachableError,
)
from .events.feed import EventFeed
from .full_plan import FullPlanner, RunPeople
from .guard import mass_change_breaches
from .identity import Resolution, resolve
from .outcome import (
    EXIT_BUDGET,
    EXIT_CONFIG,
    EXIT_CRASH,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_MASS_CHANGE,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNREACHABLE,
    OUTCOMES,
    Summary,
    record_failure,
    record_state_failure,
)
from .reading import new_stats, read_source
from .registry import load_source, load_writer
from .retry import RetryPolicy
from .schema import Person, encode_value
from .sources.base import Source
from .state import PersonIndex, PersonRow, StateStore, TransitionRow
from .state_codec import same_snapshot
from .tasks import store as task_ledger
from .tasks.planner import TaskPlan
from .tasks.sync import sync_tasks
from .vetoes import Veto, segment_vetoes
from .writers.base import Writer
from .writing import write_target

log = structlog.get_logger(__name__)

__all__ = [
    "EXIT_BUDGET",
    "EXIT_CONFIG",
    "EXIT_CRASH",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_MASS_CHANGE",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_UNREACHABLE",
    "Runner",
    "Summary",
]


class Runner:
    def __init__(
        self,
        config: AppConfigBase,
        *,
        environ: dict[str, str] | None = None,
        policy: RetryPolicy | None = None,
        clock: Any = None,
        allow_mass_change: bool = False,
        full_recompute: bool = False,
        list_changes: bool = True,
    ) -> None:
        self.config = config
        # resolve and decide everyone, not only what changed (incremental.py); the next run may be incremental
        self.full_recompute = full_recompute
        # every label change and segment add/remove in the summary, for `plan`, `--full` and the JSON listing;
        # off for a plain `run`, which prints only the counts (at a million people a dict per change)
        self.list_changes = list_changes
        self.horizon = incremental.Horizon(config)
        self.allow_mass_change = allow_mass_change
        self.environ = environ
        self.policy = policy or RetryPolicy()
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.engine = StageEngine(config.stage_model)
        self.planner = ChangePlanner(config)
        self._superseded: set[str] = set()
        self._vetoes: dict[str, Veto] = {}
        self._suppressed_read = 0  # records of erased people the last resolve left out
        self._redescribed: set[str] = set()  # people whose stage or snapshot the last decide changed
        self.feed: EventFeed | None = None  # built with the writers (its labels are theirs)
        self.env = plugin_env(config, environ=environ, policy=self.policy)

    # ---- plugins --------------------------------------------------------------------------------------

    def build_sources(self) -> list[Source]:
        """The enabled sources, over the run's connections (opened here, without a network call)."""
        return [load_source(c.type).from_config(c, self.env) for c in self.config.sources if c.enabled]

    def build_writers(self) -> list[Writer]:
        """The enabled targets, each over its source's connection (the source's own, when it is built)."""
        return [load_writer(c.type).from_config(c, self.env) for c in self.config.targets if c.enabled]

    def build_feed(self, writers: Sequence[Writer]) -> EventFeed | None:
        """The event feed when `events:` is configured; a webhook secret missing from the environment is a
        config error here, before anything is read or written."""
        if self.config.events is None:
            return None
        return EventFeed(
            self.config.events,
            base_dir=self.config.base_dir,
            stage_model=self.config.stage_model,
            label_targets=[w.name for w in writers if w.label_objects],
            environ=self.environ,
            policy=self.policy,
            clock=self.clock,
        )

    def close_plugins(self, plugins: Sequence[Source | Writer]) -> None:
        """Close `plugins`, then the run's connections; closing must not hide the run's own outcome."""
        if self.feed is not None:
            self.feed.close()
        for plugin in plugins:
            try:
                plugin.close()
            except Exception as exc:
                log.warning("plugin.close.failed", plugin=plugin.name, error=str(exc))
        try:
            self.env.close()
        except Exception as exc:
            log.warning("connection.close.failed", error=str(exc))

    # ---- the run --------------------------------------------------------------------------------------

    def execute(self, mode: str, as_of: dt.date, store: StateStore | None = None) -> Summary:
        """`mode` is "run" or "plan". Never raises for expected failures: the summary carries the outcome."""
        summary = Summary(mode=mode, as_of=as_of.isoformat())
        owns_store = store is None
        try:
            store = store or StateStore(self.config.state_path())
        except StateError as exc:
            record_state_failure(summary, exc)
            return summary
        try:
            store.lock()
        except StateError as exc:
            record_state_failure(summary, exc)
            if owns_store:
                store.close()
            return summary
        except ConnectorError as exc:
            summary.outcome, summary.exit_code = "locked", EXIT_LOCKED
            summary.errors.append(str(exc))
            if owns_store:
                store.close()
            return summary
        started = self.clock()
        ctx = RunContext(as_of=as_of, started_at=started, dry_run=mode == "plan")
        sources: list[Source] = []
        writers: list[Writer] = []
        try:
            sources = self.build_sources()
            writers = self.build_writers()  # plan needs them too: label objects, call estimates
            self.feed = self.build_feed(writers)
        except ConfigError as exc:
            summary.outcome, summary.exit_code = "config_error", EXIT_CONFIG
            summary.errors.append(str(exc))
            self.close_plugins(_plugins(sources, writers))
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
                summary.run_id = ctx.run_id = run_id
                try:
                    self._execute(store, sources, writers, ctx, summary, run_id)
                except StateError as exc:  # stop before any further CRM write: nothing more can be recorded
                    record_state_failure(summary, exc)
                except BaseException as exc:  # also SIGTERM / Ctrl-C: the run row must not say "ok"
                    interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
                    summary.outcome = "interrupted" if interrupted else "crashed"
                    summary.exit_code = EXIT_INTERRUPTED if interrupted else EXIT_CRASH
                    summary.errors.append(f"{type(exc).__name__}: {exc}")
                    raise
                finally:
                    summary.api_calls = dict(ctx.api_calls)
                    with interrupts.deferred() as stop:
                        store.finish_run(run_id, summary.outcome, summary.exit_code, summary.to_json())
                        if stop.pending and summary.outcome != "interrupted":
                            # stopped while the row was being written: the process ends 130, so must the row
                            summary.outcome, summary.exit_code = "interrupted", EXIT_INTERRUPTED
                            store.finish_run(run_id, summary.outcome, summary.exit_code, summary.to_json())
        except StateError as exc:  # at begin_run, in a plan, or the run row itself could not be finished
            if summary.outcome != OUTCOMES["state"][0]:
                record_state_failure(summary, exc)
        finally:
            self.close_plugins(_plugins(sources, writers))
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
        budget_stop = False
        no_baseline: list[str] = []
        for source in sources:
            try:
                stats = summary.read.setdefault(source.name, new_stats())
                strictness = next(
                    (c.unknown_values for c in self.config.sources if c.name == source.name), "report"
                )
                read_source(store, source, ctx, stats, run_id, rejected_now, unknown_values=strictness)
                with store.transaction():
                    store.mark_baseline(source.name, run_id)
            except (ConfigError, BudgetExceededError, UnreachableError, OSError) as exc:
                kind = record_failure(summary, "source", source.name, exc)
                if kind != "unreachable":
                    # a config error or a spent budget ends the run before anything is written
                    summary.outcome, summary.exit_code = OUTCOMES[kind]
                    return
                unreachable = True  # the others go on; this source's last known records still count
                if not store.has_baseline(source.name):
                    no_baseline.append(source.name)
            finally:  # also when the values themselves end the run (`unknown_values: error`)
                for (fname, value), n in source.unknown_values.items():
                    summary.unknown_values[f"{source.name}.{fname}={value}"] = n

        if no_baseline:
            self._hold_without_baseline(store, no_baseline, summary, rejected_now)
            return

        basis = incremental.fingerprint(self.config)
        scope: incremental.Affected | None = None
        if not self.full_recompute and incremental.basis_holds(store, basis, ctx.as_of):
            scope = incremental.affected(store, ctx.as_of)
            log.info("run.incremental", facts=len(scope.facts), people=len(scope.people))
        full: FullPlanner | None = None
        tasks_planned: TaskPlan | None = None
        people: dict[str, Person] = {}
        decisions: dict[str, Decision] = {}
        if scope is None:  # everyone, one part at a time, planned a part at a time too (bounded memory)
            full = FullPlanner(
                self.planner,
                store,
                writers,
                ctx.as_of,
                list_changes=self.list_changes,
                tasks=bool(self.config.tasks),
                task_targets=writers,
                pipeline=self.config.pipeline is not None,
            )
            chunked.resolve_and_decide(
                self, store, as_of=ctx.as_of, run_id=run_id, summary=summary, each_part=full.add
            )
            incremental.keep_totals(store, summary.stages, summary.people)
        else:
            resolution = self._resolve(store, as_of=ctx.as_of, scope=scope)
            summary.suppressed = self._suppressed_read
            decisions = self._decide(store, resolution.people, ctx.as_of, run_id, summary, scope=scope)
            people = {p.key: p for p in resolution.people}
            del resolution
        affected = None if scope is None else scope.people | set(people)
        if self.config.pipeline is not None:
            # the full path kept the open deals of each part; an incremental run's others are as the state
            # keeps them
            pairs: Any = full.pipeline if full is not None else incremental.pipeline_pairs(store)
            summary.pipeline = pipeline_figures(
                self.config.pipeline, self.config.stage_model, pairs, ctx.as_of
            )
            warn_if_short(summary.pipeline)
        if full is not None:
            plan = full.finish(summary)
            tasks_planned = full.tasks
        else:
            plan = self.planner.plan(
                store,
                writers,
                people,
                decisions,
                ctx.as_of,
                summary,
                self._superseded,
                self._vetoes,
                affected=affected,
                changed=self._redescribed,
            )
        for w in writers:
            w_labels, w_segments = plan.labels.get(w.name, []), plan.segments.get(w.name, [])
            summary.estimated_write_calls[w.name] = w.estimate_plan_calls(w_labels, w_segments)

        # the read-only checks a write depends on, in plan and run alike (so a plan predicts the run)
        predicted: dict[str, dict[str, RecordError]] = {}
        stopped: set[str] = set()
        for writer in writers:
            changes = plan.labels.get(writer.name, [])
            segments = plan.segments.get(writer.name, [])
            if not changes and not segments:
                continue
            try:
                predicted[writer.name] = writer.preflight(changes, segments, ctx)
            except (ConfigError, BudgetExceededError, UnreachableError, OSError) as exc:
                kind = record_failure(summary, "writer", writer.name, exc)
                if kind == "config":  # a missing or read-only label field: exit 2 before any write
                    summary.outcome, summary.exit_code = OUTCOMES[kind]
                    return
                stopped.add(writer.name)
                budget_stop |= kind == "budget"
                unreachable |= kind == "unreachable"
            _note_predicted(summary, writer.name, predicted.get(writer.name, {}))

        if self.feed is not None and ctx.dry_run:
            summary.events = {"would_emit": _events_in(summary, plan)}
        if self._held_by_guard(store, plan, summary):
            self._deliver_events(store, ctx, summary)  # transitions were recorded: their events still go
            _tally_rejected(store, summary, rejected_now)
            return

        if not ctx.dry_run:
            for writer in writers:
                if writer.name in stopped:
                    continue
                try:
                    write_target(
                        store,
                        writer,
                        plan,
                        ctx,
                        summary,
                        run_id,
                        rejected_now,
                        predicted.get(writer.name, {}),
                        self.feed,
                    )
                except (ConfigError, BudgetExceededError, UnreachableError, OSError) as exc:
                    kind = record_failure(summary, "writer", writer.name, exc)
                    if kind == "config":
                        summary.outcome, summary.exit_code = OUTCOMES[kind]
                        return
                    # a spent budget or a dead system stops this target only; the other targets go on
                    stopped.add(writer.name)
                    budget_stop |= kind == "budget"
                    unreachable |= kind == "unreachable"

        # follow-up tasks: after every label and segment write, never holding them up (tasks/sync.py)
        task_failures = sync_tasks(
            self.config,
            store,
            writers,
            people if full is None else RunPeople(store),
            decisions,
            ctx,
            summary,
            run_id,
            rejected_now,
            stopped,
            planned=tasks_planned,
        )
        budget_stop |= "budget" in task_failures
        unreachable |= "unreachable" in task_failures
        if not ctx.dry_run:
            if full is None:
                self._forget_gone_records(store, writers, people, affected)
            else:
                _forget_gone_records_sql(store, writers)
            summary.erasure_pending = retry_erasures(
                store, [w for w in writers if w.name not in stopped], ctx, summary.notes
            )
        self._deliver_events(store, ctx, summary)  # after every CRM write, never before
        _tally_rejected(store, summary, rejected_now)
        if budget_stop:
            summary.outcome, summary.exit_code = "budget_stop", EXIT_BUDGET
        elif unreachable:
            summary.outcome, summary.exit_code = "unreachable", EXIT_UNREACHABLE
        elif (
            summary.rejected["count"]
            or summary.erasure_pending
            or (ctx.dry_run and summary.predicted_rejections)
        ):
            summary.outcome, summary.exit_code = "partial", EXIT_PARTIAL
        if "config" in task_failures:  # a task field missing in a CRM: the labels and segments went out
            summary.outcome, summary.exit_code = OUTCOMES["config"]
        if not ctx.dry_run and not stopped and summary.outcome in ("ok", "partial"):
            # every write went out or was kept rejected: the state says what each target holds, so the next
            # run may start from what changed (incremental.py)
            incremental.set_basis(store, basis, ctx.as_of)

    def _held_by_guard(self, store: StateStore, plan: Plan, summary: Summary) -> bool:
        """The mass-change guard's verdict on the plan (guard.py); True when nothing may be written."""
        breaches = mass_change_breaches(self.config, store, plan)
        if not breaches:
            return False
        summary.guard = {
            "verdict": "allowed" if self.allow_mass_change else "hold",
            "breaches": [b.to_json() for b in breaches],
        }
        if self.allow_mass_change:
            for breach in breaches:
                log.warning("guard.mass_change.allowed", detail=breach.describe())
                summary.notes.append(
                    f"mass-change guard let through (--allow-mass-change): {breach.describe()}"
                )
            return False
        for breach in breaches:
            log.error("guard.mass_change.hold", detail=breach.describe())
            summary.errors.append(f"mass-change guard: {breach.describe()}")
        summary.errors.append(
            "mass-change guard: nothing was written. Check the sources and the config (a source that answered "
            "with part of its records, a changed value map or rule); if the change is right, run once with "
            "--allow-mass-change"
        )
        summary.outcome, summary.exit_code = "mass_change_held", EXIT_MASS_CHANGE
        return True

    def _hold_without_baseline(
        self, store: StateStore, missing: list[str], summary: Summary, rejected_now: Counter[str]
    ) -> None:
        """A source that has never been read to its end is down: nothing may be decided or written.

        Its facts are not "last known", they are unknown: an opt-out or a sales decision held only there would
        be missed, and a marketer's segment or a CRM label would carry the mistake. What the other sources
        read stays stored (their cursors moved with it), so the next run that reaches the missing source
        decides on everything at once."""
        names = ", ".join(missing)
        summary.outcome, summary.exit_code = "no_baseline", EXIT_UNREACHABLE
        summary.no_baseline = list(missing)
        summary.errors.append(
            f"{names}: never read completely yet (no baseline) and unreachable now: no stage decided, "
            "no label and no segment membership written anywhere this run; the next run that reaches "
            f"{names} reads it in full and then decides"
        )
        log.error("run.held.no_baseline", sources=missing)
        _tally_rejected(store, summary, rejected_now)

    def _deliver_events(self, store: StateStore, ctx: RunContext, summary: Summary) -> None:
        """Send the event outbox to its sinks (events/feed.py). A sink that fails keeps its events for the
        next run and is reported; it changes no exit code: the CRM writes it follows are done and recorded."""
        if self.feed is None or ctx.dry_run:
            return
        sinks = self.feed.deliver(store)
        summary.events = {"sinks": sinks}
        for sink, result in sinks.items():
            if "error" in result:
                summary.notes.append(
                    f"events: {sink} took {result['delivered']}, {result['pending']} kept for the next run "
                    f"({result['error']})"
                )

    def _forget_gone_records(
        self,
        store: StateStore,
        writers: list[Writer],
        people: dict[str, Person],
        affected: set[str] | None = None,
    ) -> None:
        """Drop remembered labels of records that no longer exist (deleted, merged away), and people with no
        records left once no target still lists them in a segment: until their removal went through, their
        last snapshot is what describes them to the writers (e-mail, records).

        `affected`: an incremental run looks only at the labels and people it reached (incremental.py)."""
        live = {str(ref) for person in people.values() for ref in person.refs}
        with store.transaction():
            still_member: set[str] = set()
            for writer in writers:
                labels = (
                    store.labels(writer.name)
                    if affected is None
                    else _labels_of(store, writer.name, affected)
                )
                stale = [ref for ref in labels if ref not in live]
                store.forget_labels(writer.name, stale)
                store.clear_rejected("write", writer.name, stale)
                held = (
                    store.members(writer.name)
                    if affected is None
                    else store.members_among(writer.name, affected)
                )
                for keys in held.values():
                    still_member |= keys
            candidates = store.person_keys() if affected is None else affected
            store.remove_people(k for k in candidates if k not in people and k not in still_member)

    # ---- resolve and decide -------------------------------------------------------------------------

    def _resolve(
        self, store: StateStore, *, as_of: dt.date, scope: incremental.Affected | None = None
    ) -> Resolution:
        """Everyone, or (`scope`) only the facts an incremental run reached: the same people either way."""
        roles = {s.name: s.effective_role() for s in self.config.sources}
        # an erased person's records, read again, never found a person (no stage, segment, task or event)
        read = list(store.all_facts()) if scope is None else scope.facts
        facts = drop_suppressed(store, read, os.environ if self.environ is None else self.environ)
        self._suppressed_read = len(read) - len(facts)
        self._superseded = superseded_refs(facts)
        resolution = resolve(
            facts,
            store.identity() if scope is None else scope.identity,
            as_of=as_of,
            merge_on=self.config.identity.merge_on,
            roles=roles,
            source_priority=self.config.identity.source_priority,
            taken=None if scope is None else incremental.TakenKeys(store),
        )
        self._vetoes = segment_vetoes(facts, resolution.people, roles)
        with store.transaction():
            for old, new in resolution.aliases.items():
                store.rename_person(old, new)
                task_ledger.rename_person(store, old, new)
                log.info("identity.merged", retired=old, into=new)
            if scope is None:
                store.replace_identity(resolution.identity)
                incremental.ensure_index(store, facts)
            else:
                store.replace_identity_of(scope.people, resolution.identity)
            incremental.clear_dirty(store)
            incremental.drop_basis(store)  # until this run's writes are all done
        return resolution

    def _decide(
        self,
        store: StateStore,
        people: list[Person],
        as_of: dt.date,
        run_id: int,
        summary: Summary,
        scope: incremental.Affected | None = None,
        part: bool = False,
    ) -> dict[str, Decision]:
        """`part`: `people` are one part of everyone (chunked.py): only their rows are read, and the totals
        left in `summary` are theirs alone, for the caller to add up."""
        partial = scope is not None or part
        previous = store.people() if not partial else store.people_of([p.key for p in people])
        decisions: dict[str, Decision] = {}
        stage_counts: Counter[str] = Counter()
        moves: Counter[str] = Counter()
        # collected and written in one statement each: a first run saves every person and every transition
        to_save: list[PersonRow] = []
        to_record: list[tuple[TransitionRow, Person, Decision]] = []
        self._redescribed = set()
        for person in people:
            row = previous.get(person.key)
            prev = Previous(row["stage"], row["path_stage"]) if row else None
            decision = self.engine.decide(person, prev, as_of)
            decisions[person.key] = decision
            stage_counts[decision.stage] += 1
            snapshot = _snapshot(person)
            index = incremental.person_index(self.horizon, person, as_of)
            changed = row is None or row["stage"] != decision.stage
            if changed:
                from_stage = prev.stage if prev else None
                to_record.append(
                    (
                        (
                            person.key,
                            from_stage,
                            decision.stage,
                            as_of,
                            run_id,
                            decision.rule,
                            decision.reason(),
                        ),
                        person,
                        decision,
                    )
                )
                moves[f"{prev.stage if prev else '(new)'}->{decision.stage}"] += 1
            since = as_of if changed or row is None else dt.date.fromisoformat(row["since"])
            # encoded once (state_codec.py): compared with the stored bytes and saved as they are, so a first
            # run keeps a few hundred bytes per person until the save, not the dicts
            decision_blob = store.codec.encode_decision(decision.to_json())
            snapshot_blob = store.codec.encode_snapshot(snapshot)
            if row is None or changed or not same_snapshot(row["snapshot"], snapshot_blob):
                self._redescribed.add(person.key)  # a segment member described differently now
            if (
                row is None
                or changed
                or row["path_stage"] != decision.path_stage
                or row["decision"] != decision_blob
                or row["snapshot"] != snapshot_blob
                or not _same_index(row, index)
            ):
                to_save.append(
                    (
                        person.key,
                        decision.stage,
                        decision.path_stage,
                        since,
                        decision_blob,
                        snapshot_blob,
                        run_id,
                        index,
                    )
                )
        with store.transaction():
            ids = store.add_transitions([t for t, _, _ in to_record])
            # in the transitions' own transaction: never one without the other
            if self.feed is not None:
                for transition_id, (t, person, decision) in zip(ids, to_record, strict=True):
                    self.feed.stage_changed(
                        store, transition_id, person.key, person.refs, t[1], decision, as_of, run_id
                    )
            store.save_people(to_save)
        summary.stages = {s: stage_counts.get(s, 0) for s in self.config.stage_model.ordered()}
        summary.transitions = dict(moves.most_common())
        per_source: Counter[str] = Counter()
        for person in people:
            for src in {r.source for r in person.refs} | set(person.values.get("sources") or []):
                per_source[src] += 1
        summary.people = {"total": len(people), **dict(sorted(per_source.items()))}
        if scope is not None:  # everyone else is as the state keeps them
            summary.stages, summary.people = incremental.totals(store, scope, summary.stages, summary.people)
        return decisions


def _forget_gone_records_sql(store: StateStore, writers: list[Writer]) -> None:
    """`Runner._forget_gone_records` of the full path, asked of SQLite: the records and people this run
    resolved are in temp.run_refs and temp.run_people (full_plan.py), so nobody's keys are gathered here."""
    db = store.db
    with store.transaction():
        for writer in writers:
            stale = [
                r[0]
                for r in db.execute(
                    "SELECT ref FROM labels WHERE target=? AND NOT EXISTS "
                    "(SELECT 1 FROM temp.run_refs l WHERE l.ref = labels.ref)",
                    (writer.name,),
                )
            ]
            store.forget_labels(writer.name, stale)
            store.clear_rejected("write", writer.name, stale)
        marks = ",".join("?" * len(writers))
        gone = [
            r[0]
            for r in db.execute(
                "SELECT person_key FROM people p WHERE NOT EXISTS (SELECT 1 FROM temp.run_people r WHERE "
                "r.person_key = p.person_key) AND NOT EXISTS (SELECT 1 FROM memberships m WHERE "
                f"m.person_key = p.person_key AND m.target IN ({marks}))",
                [w.name for w in writers],
            )
        ]
        store.remove_people(gone)


def _plugins(sources: list[Source], writers: list[Writer]) -> list[Source | Writer]:
    return [*sources, *writers]


def _events_in(summary: Summary, plan: Plan) -> int:
    """How many events a run would record: one per transition, one per segment add or remove per target."""
    moves = sum(summary.transitions.values())
    return moves + sum(len(c.adds) + len(c.removes) for changes in plan.segments.values() for c in changes)


def _note_predicted(summary: Summary, target: str, refused: dict[str, RecordError]) -> None:
    if not refused:
        return
    reasons = Counter(exc.code or "rejected" for exc in refused.values())
    summary.predicted_rejections[target] = {
        "count": len(refused),
        "reasons": dict(reasons.most_common(20)),
        "examples": [str(exc) for _, exc in sorted(refused.items())[:5]],  # the record, field and value
    }
    log.warning("writer.preflight.refused", target=target, count=len(refused), reasons=dict(reasons))


def _tally_rejected(store: StateStore, summary: Summary, rejected_now: Counter[str]) -> None:
    summary.rejected["count"] = sum(rejected_now.values())
    summary.rejected["reasons"] = dict(rejected_now.most_common(20))
    summary.rejected["pending"] = len(store.rejected())


def _labels_of(store: StateStore, target: str, keys: set[str]) -> list[str]:
    """Records holding a label of `target` written for one of these people."""
    out: list[str] = []
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        marks = ",".join("?" * len(chunk))
        out += [
            r[0]
            for r in store.db.execute(
                f"SELECT ref FROM labels WHERE target=? AND person_key IN ({marks})", (target, *chunk)
            )
        ]
    return out


def _same_index(row: Any, index: PersonIndex) -> bool:
    return bool(
        row["next_check"] == (index.next_check.isoformat() if index.next_check else None)
        and row["sources"] == "\n".join(index.sources)
        and row["pipeline"] == (json.dumps(index.pipeline, sort_keys=True) if index.pipeline else None)
    )


def _snapshot(person: Person) -> dict[str, Any]:
    return {
        "refs": [str(r) for r in person.refs],
        "values": {k: encode_value(v) for k, v in sorted(person.values.items())},
        "extra": {k: encode_value(v) for k, v in sorted(person.extra.items())},
        "provenance": person.provenance,
    }
