"""Erasure on request (`connector forget`): a person's data leaves the state and the segment files, and a
salted hash of their e-mail keeps them out of every later read.

What goes: the facts of every record carrying the e-mail (and of every record of the person it found), the
identity links, the person row and stage history, the labels written, segment memberships (with the target
records connector made for them), pending events in the outbox, rejected rows of those records, and their
rows in each segment file and its change log. What stays: one suppression row per e-mail, holding
HMAC-SHA256(salt, normalised e-mail) and nothing else, and one erasure log row holding counts only.

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
from typing import Any

import structlog

from .config import AppConfigBase
from .schema import Fact, normalise_email
from .state import StateStore
from .writers.segment_files.config import SegmentFilesConfig
from .writers.segment_files.writer import SegmentFilesWriter, write_if_changed

log = structlog.get_logger(__name__)

SALT_ENV = "CONNECTOR_ERASURE_SALT"
_SALT_META = "erasure_salt"


@dataclass
class ErasureReport:
    """What one erasure did: counts only, so it can be logged, printed and stored (no personal data)."""

    requested: int = 0
    not_an_email: int = 0
    people: int = 0
    records: int = 0
    state_rows: dict[str, int] = field(default_factory=dict)
    file_rows: int = 0
    crm: str = "leave"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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
) -> ErasureReport:
    """Erase the people with these e-mails from the state and the segment files; suppress them for good."""
    report = ErasureReport()
    emails: set[str] = set()
    for raw in raw_emails:
        report.requested += 1
        email = normalise_email(raw)
        if email is None:
            report.not_an_email += 1
        else:
            emails.add(email)
    salt = erasure_salt(store, environ)
    facts = list(store.all_facts())
    identity = store.identity()
    keys = {identity[f"email:{e}"] for e in emails if f"email:{e}" in identity}
    refs = {str(f.ref) for f in facts if fact_emails(f) & emails}
    keys |= {identity[r] for r in refs if r in identity}
    people = store.people()
    for key in keys:
        row = people.get(key)
        if row is not None:
            refs |= set(json.loads(row["snapshot"]).get("refs") or [])
    # what the segment files show of them: their e-mails, and the e-mails their person rows carried
    shown = set(emails) | {e for f in facts if str(f.ref) in refs for e in fact_emails(f)}
    report.people, report.records = len(keys), len(refs)
    report.file_rows = _forget_file_rows(config, keys, shown) + _forget_event_lines(config, keys, shown)
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
        report.state_rows = counts
        store.db.execute(
            "UPDATE erasures SET summary=? WHERE id=?",
            (json.dumps(report.to_json(), sort_keys=True), erasure_id),
        )
    log.info("erasure.done", **{k: v for k, v in report.to_json().items() if k != "state_rows"})
    return report


def _delete_rows(store: StateStore, keys: set[str], refs: set[str]) -> dict[str, int]:
    counts: dict[str, int] = {}

    def run(table: str, sql: str, args: Sequence[tuple[str, ...]]) -> None:
        total = 0
        for arg in args:
            total += max(store.db.execute(sql, arg).rowcount, 0)
        counts[table] = counts.get(table, 0) + total

    by_key = [(k,) for k in sorted(keys)]
    by_ref = [(r,) for r in sorted(refs)]
    run("facts", "DELETE FROM facts WHERE source || ':' || object || ':' || record_id = ?", by_ref)
    run("identity", "DELETE FROM identity WHERE person_key=?", by_key)
    run("identity", "DELETE FROM identity WHERE merge_key=?", by_ref)
    run("people", "DELETE FROM people WHERE person_key=?", by_key)
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


def _forget_file_rows(config: AppConfigBase, keys: set[str], emails: set[str]) -> int:
    """Remove the people's rows from every segment file and change log; returns how many rows went."""
    removed = 0
    for target in config.targets:
        if not isinstance(target, SegmentFilesConfig):
            continue
        writer = SegmentFilesWriter(target, config.base_dir)
        for segment in config.segments:
            if target.name in segment.targets:
                removed += writer.forget_rows(segment.name, keys, emails)
    return removed


def _forget_event_lines(config: AppConfigBase, keys: set[str], emails: set[str]) -> int:
    """Remove the people's events from the feed's JSON Lines file (subject = person key; data may name their
    records and e-mail): the file is connector's to keep, what a webhook took is the receiver's."""
    if config.events is None or not config.events.file:
        return 0
    path = config.base_dir / config.events.file
    if not path.exists():
        return 0
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines(keepends=True)
    kept = [line for line in lines if not _names_someone(line, keys, emails)]
    if len(kept) != len(lines):
        write_if_changed(path, "".join(kept).encode("utf-8"))
    return len(lines) - len(kept)


def _names_someone(line: str, keys: set[str], emails: set[str]) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        event = None
    if isinstance(event, dict) and event.get("subject") in keys:
        return True
    lowered = line.lower()
    return any(k in line for k in keys) or any(e in lowered for e in emails)
