"""Erasure on request (`connector forget`): a person's data leaves the state and every file connector writes,
the CRMs do what `erasure:` says, and a salted hash of their e-mail keeps them out of every later read.

What goes: the facts of every record carrying the e-mail (and of every record of the person it found), the
identity links, the person row and stage history, the labels written, segment memberships (with the target
records connector made for them), pending events in the outbox and their lines in the event file, rejected rows
of those records; each target's share goes through `Writer.erase` (segment files drop their rows; a CRM target
clears labels and segment values or campaign memberships, or leaves the records as they are). What stays: one
suppression row per e-mail, holding HMAC-SHA256(salt, normalised e-mail) and nothing else, and one erasure log
row holding counts only. The state file is vacuumed afterwards, so no deleted row lingers in its free pages.

Order matters: what each target must undo (record ids, campaign members) is read from the state first, the
targets act, and only then do the state rows go. A CRM action that fails does not hold up the erasure: the
state part still happens and the action is kept in `erasure_pending` with the target, the action and record ids
only (Salesforce / vtiger ids, which say nothing about a person without access to that CRM, which holds the
person anyway; never an e-mail, a name, a person key or a CRM error message, which may quote the record), and
tried again by the next run or forget until it goes through.

The salt comes from the environment (`CONNECTOR_ERASURE_SALT`, so several states can share suppressions) or is
generated once and kept in the state. A later read of the person's records is dropped before identity
resolution (`drop_suppressed`): no person, so no stage, no label, no segment, no task and no event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import structlog

from .config import AppConfigBase
from .context import RunContext
from .erasure_config import CrmAction
from .errors import ConnectorError
from .events.jsonl_file import rewrite_without
from .schema import Fact, RecordRef, normalise_email
from .sources.files.known_rows import KnownRows
from .state import StateStore
from .state_codec import decode_snapshot
from .writers.base import ErasureRequest, ErasureResult, Writer

log = structlog.get_logger(__name__)

SALT_ENV = "CONNECTOR_ERASURE_SALT"
_SALT_META = "erasure_salt"


@dataclass
class TargetErasure:
    """One target's share of an erasure: the action taken, counts of what was done, what is kept to retry."""

    action: str | None  # None: a target that addresses people, not records (its files always lose the rows)
    done: dict[str, int] = field(default_factory=dict)
    pending: int = 0  # records and member rows kept in the state to try again
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)  # what an admin must do by hand (names record ids)

    def add(self, result: ErasureResult) -> None:
        for what, n in result.done.items():
            self.done[what] = self.done.get(what, 0) + n
        if result.left:
            self.pending += len(result.left.refs) + sum(len(ids) for ids in result.left.memberships.values())
            self.error = result.error
        self.notes += result.notes
        self.manual += result.manual

    def to_json(self, stored: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if stored:  # the erasure log counts, it names no record
            out["manual"] = len(self.manual)
        return out


@dataclass
class ErasureReport:
    """What one erasure did: counts, and per target what happened in it. Printed, and stored as the erasure log
    (`to_json(stored=True)`: counts only, no record id, so it names no one)."""

    requested: int = 0
    not_an_email: int = 0
    people: int = 0
    records: int = 0
    state_rows: dict[str, int] = field(default_factory=dict)
    file_rows: int = 0
    crm: str = "leave"  # the configured `erasure.crm_action`
    targets: dict[str, TargetErasure] = field(default_factory=dict)
    # earlier erasures' CRM actions tried again first (they had failed), per target
    retried: dict[str, TargetErasure] = field(default_factory=dict)
    pending: int = 0  # CRM actions (one per target and erasure) still waiting in the state after this one

    def to_json(self, stored: bool = False) -> dict[str, Any]:
        out = asdict(self)
        out["targets"] = {k: v.to_json(stored) for k, v in self.targets.items()}
        out["retried"] = {k: v.to_json(stored) for k, v in self.retried.items()}
        return out

    def lines(self) -> list[str]:
        """The text report: the totals, then one line per target (and per earlier action tried again)."""
        out = [
            f"forgot {self.people} person(s), {self.records} record(s), {self.file_rows} file row(s); "
            f"{self.requested - self.not_an_email} e-mail(s) suppressed, {self.not_an_email} not an e-mail"
        ]
        for title, group in (("", self.targets), ("earlier erasure, tried again: ", self.retried)):
            for name, t in group.items():
                done = (
                    ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(t.done.items()))
                    or "nothing to do"
                )
                action = f" ({t.action})" if t.action else ""
                line = f"  {title}{name}{action}: {done}"
                if t.pending:
                    line += f"; {t.pending} kept to try again ({t.error})"
                out.append(line)
                out += [f"    {n}" for n in (*t.notes, *t.manual)]
        if self.pending:
            out.append(
                f"{self.pending} CRM action(s) kept in the state: the next run or forget tries them again"
            )
        return out


def erasure_salt(store: StateStore, environ: Mapping[str, str]) -> str:
    """The salt of the e-mail hashes: the environment's, else the state's own (generated on first use)."""
    if environ.get(SALT_ENV):
        return environ[SALT_ENV]
    row = store.db.execute("SELECT value FROM meta WHERE key=?", (_SALT_META,)).fetchone()
    if row is not None:
        return str(row[0])
    with store.transaction():
        store.db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (_SALT_META, secrets.token_hex(32)))
    row = store.db.execute("SELECT value FROM meta WHERE key=?", (_SALT_META,)).fetchone()
    return str(row[0])


def email_hash(email: str, salt: str) -> str:
    return hmac.new(salt.encode(), email.encode(), hashlib.sha256).hexdigest()


def suppressed_hashes(store: StateStore) -> set[str]:
    return {r[0] for r in store.db.execute("SELECT hash FROM suppressions")}


def is_suppressed(store: StateStore, raw_email: str, environ: Mapping[str, str]) -> bool:
    email = normalise_email(raw_email)
    hashes = suppressed_hashes(store)
    return bool(email and hashes) and email_hash(email or "", erasure_salt(store, environ)) in hashes


def fact_emails(fact: Fact) -> set[str]:
    """Every e-mail a fact carries: its own, and the ones it merges or attaches on."""
    found = {
        k[len("email:") :] for k in (*fact.keys, *fact.attach, *fact.member_of) if k.startswith("email:")
    }
    own = normalise_email(fact.values.get("email"))
    if own:
        found.add(own)
    return found


def drop_suppressed(store: StateStore, facts: list[Fact], environ: Mapping[str, str]) -> list[Fact]:
    """`facts` without those of suppressed people; their stored facts are deleted again (a read brought
    them back), so the state keeps nothing of an erased person between runs."""
    hashes = suppressed_hashes(store)
    if not hashes:
        return facts
    salt = erasure_salt(store, environ)
    kept: list[Fact] = []
    dropped: list[Fact] = []
    for fact in facts:
        if any(email_hash(e, salt) in hashes for e in fact_emails(fact)):
            dropped.append(fact)
        else:
            kept.append(fact)
    if dropped:
        with store.transaction():
            for fact in dropped:
                store.delete_facts(fact.ref.source, fact.ref.object, [fact.ref.id])
        log.info("erasure.suppressed.dropped", records=len(dropped))
    return kept


def forget(
    config: AppConfigBase,
    store: StateStore,
    raw_emails: Iterable[str],
    environ: Mapping[str, str],
    at: dt.datetime,
    *,
    writers: Sequence[Writer],
    ctx: RunContext | None = None,
) -> ErasureReport:
    """Erase the people with these e-mails from the state, every target (`writers`: every configured target,
    enabled or not, as a disabled one may still hold files) and the event file; suppress them for good."""
    ctx = ctx or RunContext(as_of=at.date(), started_at=at)
    report = ErasureReport(crm=config.erasure.crm_action)
    emails: set[str] = set()
    for raw in raw_emails:
        report.requested += 1
        email = normalise_email(raw)
        if email is None:
            report.not_an_email += 1
        else:
            emails.add(email)
    salt = erasure_salt(store, environ)
    report.retried = retry_pending(store, writers, ctx)  # earlier erasures' failed CRM actions first
    facts = list(store.all_facts())
    identity = store.identity()
    keys = {identity[f"email:{e}"] for e in emails if f"email:{e}" in identity}
    refs = {str(f.ref) for f in facts if fact_emails(f) & emails}
    keys |= {identity[r] for r in refs if r in identity}
    people = store.people()
    for key in keys:
        row = people.get(key)
        if row is not None:
            refs |= set(decode_snapshot(row["snapshot"]).get("refs") or [])
    # what the files show of them: their e-mails, and the e-mails their person rows carried
    shown = set(emails) | {e for f in facts if str(f.ref) in refs for e in fact_emails(f)}
    report.people, report.records = len(keys), len(refs)
    records = tuple(sorted((RecordRef.parse(r) for r in refs if r.count(":") >= 2), key=str))

    # every target acts before the state forgets what they must undo
    pending: list[tuple[str, str, ErasureRequest, str | None]] = []
    enabled = {t.name: t.enabled for t in config.targets}
    for writer in writers:
        action = _action(config, writer)
        request = ErasureRequest(
            refs=records,
            memberships=_memberships(store, writer.name, keys),
            person_keys=frozenset(keys),
            emails=frozenset(shown),
        )
        if not enabled.get(writer.name, True) and writer.source is not None:
            action = "leave"  # a disabled CRM target is not reached (its files, if any, still are)
        result = _erase(writer, request, action, ctx)
        target = report.targets[writer.name] = TargetErasure(action if writer.source is not None else None)
        target.add(result)
        report.file_rows += result.done.get("file_rows", 0)
        if result.left:
            pending.append((writer.name, action, result.left, result.error))
    report.file_rows += _forget_event_lines(config, keys, shown)

    # file rows recorded as stored may name facts deleted below (Batch.live_stored): gone first, so a stop
    # part way never leaves one vouching for a deleted fact
    KnownRows.drop_every(config.state_path().parent)
    with store.transaction():
        counts = _delete_rows(store, keys, refs)
        # a rejected read names its row by file:line or key and keeps the raw record: match the e-mail itself
        for email in sorted(shown):
            cur = store.db.execute(
                "DELETE FROM rejected WHERE instr(lower(item), ?) > 0 OR instr(lower(COALESCE(payload, '')), ?) > 0",
                (email, email),
            )
            counts["rejected"] = counts.get("rejected", 0) + max(cur.rowcount, 0)
        cur = store.db.execute("INSERT INTO erasures (at, summary) VALUES (?, '{}')", (at.isoformat(),))
        erasure_id = int(cur.lastrowid or 0)
        store.db.executemany(
            "INSERT OR IGNORE INTO suppressions VALUES (?, ?, ?)",
            [(email_hash(e, salt), erasure_id, at.isoformat()) for e in sorted(emails)],
        )
        for name, taken, left, error in pending:
            store.db.execute(
                "INSERT INTO erasure_pending (erasure_id, target, action, work, error, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (erasure_id, name, taken, json.dumps(left.to_pending()), error, at.isoformat()),
            )
        report.state_rows = counts
        report.pending = pending_count(store)
        store.db.execute(
            "UPDATE erasures SET summary=? WHERE id=?",
            (json.dumps(report.to_json(stored=True), sort_keys=True), erasure_id),
        )
    _wipe_free_pages(store)
    log.info(
        "erasure.done",
        people=report.people,
        records=report.records,
        file_rows=report.file_rows,
        pending=report.pending,
        targets={k: v.done for k, v in report.targets.items()},
    )
    return report


def pending_count(store: StateStore) -> int:
    return int(store.db.execute("SELECT COUNT(*) FROM erasure_pending").fetchone()[0])


def retry_pending(store: StateStore, writers: Sequence[Writer], ctx: RunContext) -> dict[str, TargetErasure]:
    """Try again the CRM actions of earlier erasures that failed, oldest first; what goes through leaves the
    state, what fails again stays with its new error. A target no longer configured keeps its rows."""
    by_name = {w.name: w for w in writers}
    rows = list(store.db.execute("SELECT id, target, action, work FROM erasure_pending ORDER BY id"))
    results: dict[str, TargetErasure] = {}
    for row in rows:
        writer = by_name.get(row["target"])
        if writer is None:
            continue
        action = cast(CrmAction, row["action"])
        result = _erase(writer, ErasureRequest.from_pending(json.loads(row["work"])), action, ctx)
        results.setdefault(writer.name, TargetErasure(action)).add(result)
        with store.transaction():
            if result.left:
                store.db.execute(
                    "UPDATE erasure_pending SET work=?, error=?, attempts=attempts + 1, updated_at=? WHERE id=?",
                    (
                        json.dumps(result.left.to_pending()),
                        result.error,
                        ctx.started_at.isoformat(),
                        row["id"],
                    ),
                )
            else:
                store.db.execute("DELETE FROM erasure_pending WHERE id=?", (row["id"],))
    if rows:
        log.info("erasure.pending.retried", actions=len(rows), left=pending_count(store))
    return results


def retry_erasures(store: StateStore, writers: Sequence[Writer], ctx: RunContext, notes: list[str]) -> int:
    """For a run: try the pending CRM actions of earlier erasures again, note what happened, and return how
    many still wait (the run then ends partial, exit 3)."""
    if not pending_count(store):
        return 0
    for name, result in retry_pending(store, writers, ctx).items():
        done = (
            ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(result.done.items())) or "nothing done"
        )
        left = f"; {result.pending} still kept ({result.error})" if result.pending else ""
        notes.append(f"erasure: {name} ({result.action}) tried again: {done}{left}")
        notes.extend(f"erasure: {n}" for n in (*result.notes, *result.manual))
    return pending_count(store)


def _action(config: AppConfigBase, writer: Writer) -> CrmAction:
    return config.erasure.action_for(writer.name)


def _erase(writer: Writer, request: ErasureRequest, action: CrmAction, ctx: RunContext) -> ErasureResult:
    """`writer.erase`, with a failure of the whole call (the CRM down, credentials refused) turned into the
    whole request left to try again. Only the target's own records are ever kept (another source's record id
    may be an e-mail: a file row joined on it)."""
    try:
        result = writer.erase(request, action, ctx)
    except ConnectorError as exc:
        code = getattr(exc, "code", None) or type(exc).__name__
        log.warning("erasure.target.failed", target=writer.name, action=action, error=code)
        result = ErasureResult(left=request, error=str(code))
    if result.left:
        own = tuple(r for r in result.left.refs if r.source == writer.source)
        result.left = ErasureRequest(refs=own, memberships=dict(result.left.memberships))
        if not result.left.refs and not any(result.left.memberships.values()):
            result.left = None  # nothing of this target's own to try again
    return result


def _memberships(store: StateStore, target: str, keys: set[str]) -> dict[str, tuple[str, ...]]:
    """segment -> the records connector created for the people's membership there (CampaignMember Ids)."""
    found: dict[str, list[str]] = {}
    for key in sorted(keys):
        for (segment,) in store.db.execute(
            "SELECT segment FROM memberships WHERE target=? AND person_key=?", (target, key)
        ):
            found.setdefault(segment, [])
        for segment, record_id in store.db.execute(
            "SELECT segment, record_id FROM membership_records WHERE target=? AND person_key=?", (target, key)
        ):
            found.setdefault(segment, []).append(record_id)
    return {s: tuple(ids) for s, ids in sorted(found.items())}


def _wipe_free_pages(store: StateStore) -> None:
    """Deleted rows stay readable in a SQLite file's free pages and in its write-ahead log until overwritten:
    rebuild the file (VACUUM) and empty the log, so the bytes of the state no longer hold what was erased."""
    store.db.execute("VACUUM")
    busy = store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy is not None and busy[0]:
        log.warning(
            "erasure.wal.busy", reason="a reader held the state: its log is emptied at the next checkpoint"
        )


def _delete_rows(store: StateStore, keys: set[str], refs: set[str]) -> dict[str, int]:
    counts: dict[str, int] = {}

    def run(table: str, sql: str, args: Sequence[tuple[str, ...]]) -> None:
        total = store.db.executemany(sql, args).rowcount if args else 0  # rows deleted, summed over args
        counts[table] = counts.get(table, 0) + max(total, 0)

    by_key = [(k,) for k in sorted(keys)]
    by_ref = [(r,) for r in sorted(refs)]
    run("facts", "DELETE FROM facts WHERE source || ':' || object || ':' || record_id = ?", by_ref)
    # the incremental index (incremental.py) names a record's keys, its e-mail among them
    run("fact_keys", "DELETE FROM fact_keys WHERE ref=?", by_ref)
    run("dirty_facts", "DELETE FROM dirty_facts WHERE ref=?", by_ref)
    run("identity", "DELETE FROM identity WHERE person_key=?", by_key)
    run("identity", "DELETE FROM identity WHERE merge_key=?", by_ref)
    run("people", "DELETE FROM people WHERE person_key=?", by_key)
    store.drop_totals()  # the next run counts its totals again (incremental.totals)
    store.recount_facts()  # facts went outside StateStore.delete_facts
    run("transitions", "DELETE FROM transitions WHERE person_key=?", by_key)
    run("labels", "DELETE FROM labels WHERE person_key=?", by_key)
    run("memberships", "DELETE FROM memberships WHERE person_key=?", by_key)
    run("membership_records", "DELETE FROM membership_records WHERE person_key=?", by_key)
    run("event_outbox", "DELETE FROM event_outbox WHERE person_key=?", by_key)
    run("tasks", "DELETE FROM tasks WHERE person_key=?", by_key)
    # a refused task is kept as `<person key>/<task>/<key>` (connector/tasks/sync.py)
    run(
        "rejected",
        "DELETE FROM rejected WHERE object='task' AND substr(item, 1, length(?) + 1) = ? || '/'",
        [(k, k) for (k,) in by_key],
    )
    run("rejected", "DELETE FROM rejected WHERE item=?", by_key + by_ref)
    return counts


def _forget_event_lines(config: AppConfigBase, keys: set[str], emails: set[str]) -> int:
    """Remove the people's events from the feed's JSON Lines file (subject = person key; data may name their
    records and e-mail): the file is connector's to keep, what a webhook took is the receiver's."""
    if config.events is None or not config.events.file:
        return 0
    return rewrite_without(
        config.base_dir / config.events.file, lambda line: _names_someone(line, keys, emails)
    )


def _names_someone(line: str, keys: set[str], emails: set[str]) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        event = None
    if isinstance(event, dict) and event.get("subject") in keys:
        return True
    lowered = line.lower()
    return any(k in line for k in keys) or any(e in lowered for e in emails)
