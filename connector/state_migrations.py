"""The state's schema version, checked on open, and the numbered migrations that bring an older state up to it.

A fresh state gets the version-1 schema (`state.SCHEMA`, as connector first shipped it) and then every
migration in order, exactly like an old state does: a fresh state and a migrated one cannot drift apart.
Each migration runs in its own transaction together with the version bump, so a crash (or a full disk) part
way leaves the state at the last version that completed. A state written by a newer connector is refused: its
tables may mean things this connector does not know.

To change the schema, add the next number to `MIGRATIONS` (never edit one that has shipped) and a test that
opens tests/data/state-v1.sqlite (a state written by the version-1 code).
"""

from __future__ import annotations

from pathlib import Path

import structlog

from .errors import StateError
from .state_guard import REBUILD_HINT, GuardedConnection

log = structlog.get_logger(__name__)

# number -> (why, statements); each statement runs with execute() (executescript would commit part way)
MIGRATIONS: dict[int, tuple[str, tuple[str, ...]]] = {
    2: (
        "index labels and memberships by person: a merge renames a person in both without scanning them",
        (
            "CREATE INDEX IF NOT EXISTS labels_person ON labels (person_key)",
            "CREATE INDEX IF NOT EXISTS memberships_person ON memberships (person_key)",
        ),
    ),
    3: (
        "baselines: which sources have been read to their end once (a run never decides without them); a "
        "state from before counts a source with stored cursors or facts as read",
        (
            "CREATE TABLE IF NOT EXISTS baselines (source TEXT PRIMARY KEY, run_id INTEGER, completed_at TEXT NOT NULL)",
            "INSERT OR IGNORE INTO baselines (source, run_id, completed_at) "
            "SELECT source, NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
            "FROM (SELECT source FROM cursors UNION SELECT source FROM facts)",
        ),
    ),
    4: (
        "membership_records: the target records connector itself created for a membership (Salesforce "
        "CampaignMember Ids): a removal deletes only these, never a member someone else made",
        (
            "CREATE TABLE IF NOT EXISTS membership_records (target TEXT NOT NULL, segment TEXT NOT NULL, "
            "person_key TEXT NOT NULL, record_id TEXT NOT NULL, PRIMARY KEY (target, segment, person_key, record_id))",
        ),
    ),
    5: (
        "event outbox: stage transitions and segment membership changes as CloudEvents, written in the same "
        "transaction as the change, kept until every configured sink (file, webhooks) has taken them in order",
        (
            "CREATE TABLE IF NOT EXISTS event_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "event_id TEXT NOT NULL UNIQUE, person_key TEXT NOT NULL, body TEXT NOT NULL, run_id INTEGER)",
            "CREATE INDEX IF NOT EXISTS event_outbox_person ON event_outbox (person_key)",
            "CREATE TABLE IF NOT EXISTS event_sinks (sink TEXT PRIMARY KEY, delivered_seq INTEGER NOT NULL, "
            "updated_at TEXT NOT NULL)",
        ),
    ),
    6: (
        "erasure on request: salted hashes of forgotten e-mails (never the e-mails) keep those people out of "
        "every later read, and a log of each erasure that counts what went, naming no one",
        (
            "CREATE TABLE IF NOT EXISTS suppressions (hash TEXT PRIMARY KEY, erasure_id INTEGER, at TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS erasures (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, "
            "summary TEXT NOT NULL)",
        ),
    ),
    7: (
        "erasure CRM actions that failed (a CRM down during `forget`), kept to be tried again by the next run "
        "or forget: the target, the action and record ids only (never an e-mail, a name or a person key)",
        (
            "CREATE TABLE IF NOT EXISTS erasure_pending (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "erasure_id INTEGER NOT NULL, target TEXT NOT NULL, action TEXT NOT NULL, work TEXT NOT NULL, "
            "attempts INTEGER NOT NULL DEFAULT 1, error TEXT, updated_at TEXT NOT NULL)",
        ),
    ),
    8: (
        "follow-up tasks: one row per task occurrence and target, written pending before the CRM call and "
        "done after, so a task is created once whatever the number of runs, crashes or retries",
        (
            "CREATE TABLE IF NOT EXISTS tasks (key TEXT NOT NULL, target TEXT NOT NULL, task TEXT NOT NULL, "
            "person_key TEXT NOT NULL, occurrence TEXT NOT NULL, status TEXT NOT NULL, record_id TEXT, "
            "reason TEXT, payload TEXT NOT NULL, run_id INTEGER, updated_at TEXT NOT NULL, "
            "PRIMARY KEY (key, target))",
            "CREATE INDEX IF NOT EXISTS tasks_person ON tasks (person_key)",
        ),
    ),
    9: (
        "incremental runs: a content hash per fact (an unchanged record is known without decoding it), an index "
        "of every fact's identity and attach keys (the people a changed record touches are found without "
        "resolving everyone), the records changed since they were last resolved, and per person the next date "
        "its outcome could flip, its sources and its open pipeline (run totals come from the state)",
        (
            "ALTER TABLE facts ADD COLUMN hash BLOB",
            "CREATE TABLE IF NOT EXISTS fact_keys (key TEXT NOT NULL, ref TEXT NOT NULL, PRIMARY KEY (key, ref)) "
            "WITHOUT ROWID",
            "CREATE INDEX IF NOT EXISTS fact_keys_ref ON fact_keys (ref)",
            "CREATE TABLE IF NOT EXISTS dirty_facts (ref TEXT PRIMARY KEY, old_keys TEXT NOT NULL) WITHOUT ROWID",
            "ALTER TABLE people ADD COLUMN next_check TEXT",
            "ALTER TABLE people ADD COLUMN sources TEXT",
            "ALTER TABLE people ADD COLUMN pipeline TEXT",
            "CREATE INDEX IF NOT EXISTS people_next_check ON people (next_check)",
        ),
    ),
    10: (
        "compact state: facts and identity keyed by their text keys without a rowid (the key was stored twice, "
        "in the table and in its primary-key index); the link-key index holds each link once; fact payloads and people's decisions and snapshots are "
        "written compact from now on (state_codec.py; rows written before stay readable and are re-encoded "
        "when next saved)",
        (
            "CREATE TABLE facts_v10 (source TEXT NOT NULL, object TEXT NOT NULL, record_id TEXT NOT NULL, "
            "kind TEXT NOT NULL, modified_at TEXT, payload NOT NULL, hash BLOB, "
            "PRIMARY KEY (source, object, record_id)) WITHOUT ROWID",
            "INSERT INTO facts_v10 SELECT source, object, record_id, kind, modified_at, payload, hash FROM facts",
            "DROP TABLE facts",
            "ALTER TABLE facts_v10 RENAME TO facts",
            "CREATE TABLE identity_v10 (merge_key TEXT PRIMARY KEY, person_key TEXT NOT NULL) WITHOUT ROWID",
            "INSERT INTO identity_v10 SELECT merge_key, person_key FROM identity",
            "DROP TABLE identity",
            "ALTER TABLE identity_v10 RENAME TO identity",
            "CREATE INDEX IF NOT EXISTS identity_person ON identity (person_key)",
            # the link-key index is searched by key only (a record's own keys are in its fact), and a record's
            # own key is the record itself: no index by ref, no row per record for it
            "DROP INDEX IF EXISTS fact_keys_ref",
            "DELETE FROM fact_keys WHERE key = ref",
        ),
    ),
    11: (
        "zstd dictionaries: one per kind of row (fact payloads per source object, decisions, snapshots, "
        "transition reasons), trained on redacted rows (no one's own values), never changed once written; "
        "rows compressed with one name it in their frame (state_codec.py; zlib rows and text stay readable, "
        "and transition reasons are compressed from now on)",
        (
            "CREATE TABLE IF NOT EXISTS dictionaries (id INTEGER PRIMARY KEY, kind TEXT NOT NULL UNIQUE, "
            "content BLOB NOT NULL, samples INTEGER NOT NULL, created_at TEXT NOT NULL)",
        ),
    ),
    12: (
        "cost follows change: the number of stored facts per source object, kept up to date as facts are stored "
        "and deleted, so a complete read of a file finds that nothing is gone without listing every record it "
        "holds; and an index of the people with an open pipeline, so the run totals read only those",
        (
            "CREATE TABLE IF NOT EXISTS fact_counts (source TEXT NOT NULL, object TEXT NOT NULL, "
            "n INTEGER NOT NULL, PRIMARY KEY (source, object)) WITHOUT ROWID",
            "INSERT INTO fact_counts SELECT source, object, COUNT(*) FROM facts GROUP BY source, object",
            "CREATE INDEX IF NOT EXISTS people_pipeline ON people (person_key) WHERE pipeline IS NOT NULL",
        ),
    ),
}
SCHEMA_VERSION = max(MIGRATIONS, default=1)


def stored_version(db: GuardedConnection, path: Path) -> int | None:
    """The schema version the state says it has; None for an empty file (a state not created yet)."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return None
    row = (
        db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if "meta" in tables
        else None
    )
    if row is None:
        raise StateError(
            f"state file {path} is a SQLite database but not a connector state (no schema version; it holds "
            f"{', '.join(sorted(tables)[:5])}): point state.path in the config at another file",
            path=str(path),
            kind="foreign",
        )
    try:
        return int(row[0])
    except ValueError:
        raise StateError(
            f"state file {path} has an unreadable schema version {row[0]!r}: {REBUILD_HINT}", path=str(path)
        ) from None


def prepare(db: GuardedConnection, path: Path, base_schema: str) -> int:
    """Create or migrate the state up to `SCHEMA_VERSION`; refuse one newer than that. Returns the version."""
    version = stored_version(db, path)
    if version is not None and version > SCHEMA_VERSION:
        raise StateError(
            f"state file {path} has schema version {version}, written by a newer connector (this one knows up to "
            f"{SCHEMA_VERSION}): upgrade connector, or {REBUILD_HINT}",
            path=str(path),
            kind="newer",
        )
    if version is None:
        _in_transaction(db, path, 1, _statements(base_schema), created=True)
        version = 1
    while version < SCHEMA_VERSION:
        version += 1
        why, statements = MIGRATIONS[version]
        _in_transaction(db, path, version, statements)
        log.info("state.migrated", path=str(path), version=version, why=why)
    return version


def _in_transaction(
    db: GuardedConnection, path: Path, version: int, statements: tuple[str, ...], created: bool = False
) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        # another process may have done this step while we waited for the write lock
        current = stored_version(db, path)
        if (current is None and created) or (current is not None and current == version - 1):
            for sql in statements:
                db.execute(sql)
            db.execute(
                "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                (str(version),),
            )
    except BaseException:
        if db.in_transaction:  # SQLite rolls back by itself on some failures (disk full, I/O error)
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _statements(script: str) -> tuple[str, ...]:
    """The statements of a schema script (no semicolon inside a statement there)."""
    return tuple(s.strip() for s in script.split(";") if s.strip())
