"""The shared funnel schema: what every mapper produces and what the stage engine reads.

Mappers turn a raw record of any system into a `Fact`: one person record (a lead, a contact, an enrichment row)
or one thing that belongs to people (an opportunity, a contract). Identity resolution folds facts into
`Person`s. Neither type knows which CRM a value came from beyond the `RecordRef` provenance it carries, so the
stage engine stays CRM-agnostic.

Signal values are plain JSON-able Python values: str, bool, int, float, `datetime.date`, or None.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FactKind(StrEnum):
    PERSON = "person"  # a lead, a contact, or any row that *is* a person
    OPPORTUNITY = "opportunity"  # belongs to the people it links to
    CONTRACT = "contract"  # own or a competitor's contract, with an end date
    ENRICHMENT = "enrichment"  # signals joined onto people by a configured key


_KINDS = {kind.value: kind for kind in FactKind}  # FactKind(text) is an enum call: slower than a dict


class FieldType(StrEnum):
    STR = "str"
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    DATE = "date"


# Normalised meanings of CRM picklists. Value maps in YAML translate each system's raw values into these, so
# rules can say `lead_status: qualified_out` whatever the CRM calls it.
LEAD_STATUS_MEANINGS = ("new", "working", "nurture", "qualified", "qualified_out", "converted")
OPPORTUNITY_MEANINGS = ("open", "proposal", "won", "lost")


@dataclass(frozen=True)
class SchemaField:
    name: str
    type: FieldType
    doc: str
    # how values from several facts of one person combine: "latest" (newest fact wins), "any" (bool or),
    # "max", "min", "sum", "min_future" (the nearest date on or after as-of, else the latest past one)
    combine: str = "latest"
    sales_decision: bool = False  # a sales decision beats a marketing signal (see identity precedence)


# Signals a person carries after resolution. Facts may set any of them; rules and segments may test any of them.
PERSON_FIELDS: dict[str, SchemaField] = {
    f.name: f
    for f in [
        SchemaField("email", FieldType.STR, "normalised e-mail (lower case, trimmed)"),
        SchemaField("first_name", FieldType.STR, "given name"),
        SchemaField("last_name", FieldType.STR, "family name"),
        SchemaField("company", FieldType.STR, "company or account name"),
        SchemaField("domain", FieldType.STR, "company web domain, derived from e-mail when not given"),
        SchemaField("country", FieldType.STR, "country"),
        SchemaField("lead_status", FieldType.STR, "normalised lead status meaning", sales_decision=True),
        SchemaField("lead_status_raw", FieldType.STR, "lead status as written in the source"),
        SchemaField(
            "converted", FieldType.BOOL, "the lead was converted", combine="any", sales_decision=True
        ),
        SchemaField("is_contact", FieldType.BOOL, "a CRM contact record exists", combine="any"),
        SchemaField("opportunity_count", FieldType.INT, "opportunities linked", combine="sum"),
        SchemaField("opportunity_open", FieldType.BOOL, "an open opportunity exists", combine="any"),
        SchemaField(
            "opportunity_stage", FieldType.STR, "most advanced normalised opportunity meaning", combine="max"
        ),
        SchemaField("opportunity_stage_raw", FieldType.STR, "stage name as written in the source"),
        SchemaField("opportunity_won", FieldType.BOOL, "a won opportunity exists", combine="any"),
        SchemaField(
            "opportunity_lost", FieldType.BOOL, "the latest closed opportunity was lost", sales_decision=True
        ),
        SchemaField(
            "opportunity_amount", FieldType.FLOAT, "amount of open and won opportunities", combine="sum"
        ),
        # the open pipeline alone: pipeline coverage must not count deals already won
        SchemaField(
            "opportunity_open_amount", FieldType.FLOAT, "amount of open opportunities only", combine="sum"
        ),
        SchemaField("opportunity_close_date", FieldType.DATE, "latest opportunity close date", combine="max"),
        SchemaField("won_date", FieldType.DATE, "latest won opportunity close date", combine="max"),
        SchemaField("contract_start", FieldType.DATE, "start of our own contract", combine="max"),
        SchemaField("contract_end", FieldType.DATE, "end of our own contract", combine="min_future"),
        SchemaField("competitor", FieldType.STR, "competitor holding a contract with the person"),
        SchemaField(
            "competitor_contract_end", FieldType.DATE, "end of a competitor's contract", combine="min_future"
        ),
        SchemaField("web_visits", FieldType.INT, "web visits counted by enrichment", combine="sum"),
        SchemaField("last_visit", FieldType.DATE, "latest web visit", combine="max"),
        SchemaField("newsletter", FieldType.BOOL, "signed up for the newsletter", combine="any"),
        SchemaField("review_score", FieldType.FLOAT, "review or satisfaction score (0-10)", combine="max"),
        SchemaField("birth_date", FieldType.DATE, "birth date (life-event signal)"),
        SchemaField(
            "nurture_until", FieldType.DATE, "revisit date set by sales for nurture", sales_decision=True
        ),
        SchemaField("opted_out", FieldType.BOOL, "e-mail opt-out anywhere", combine="any"),
        SchemaField("consent", FieldType.BOOL, "explicit marketing consent"),
        SchemaField("external_id", FieldType.STR, "an external id shared between systems"),
    ]
}

# Fields an opportunity fact may carry (folded into the person fields above by identity resolution).
OPPORTUNITY_FIELDS = {
    "opportunity_stage": FieldType.STR,
    "opportunity_stage_raw": FieldType.STR,
    "opportunity_amount": FieldType.FLOAT,
    "opportunity_close_date": FieldType.DATE,
    "opportunity_closed": FieldType.BOOL,
    "opportunity_won": FieldType.BOOL,
}
CONTRACT_FIELDS = {
    "contract_start": FieldType.DATE,
    "contract_end": FieldType.DATE,
    "competitor": FieldType.STR,
}

# Fields the engine computes; rules and segments may read them too.
DERIVED_FIELDS: dict[str, FieldType] = {
    "stage": FieldType.STR,
    "previous_stage": FieldType.STR,
    "sources": FieldType.STR,  # membership test: `sources: {contains: sf_prod}`
}


def all_condition_fields() -> dict[str, FieldType]:
    """Every field a rule or segment condition may name (schema, derived and `extra.*` fields)."""
    out = {name: f.type for name, f in PERSON_FIELDS.items()}
    out.update(DERIVED_FIELDS)
    return out


@dataclass(frozen=True, order=True)
class RecordRef:
    """Where a record lives: the configured source name, the object/module and the record id."""

    source: str
    object: str
    id: str

    def __str__(self) -> str:
        return f"{self.source}:{self.object}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> RecordRef:
        source, obj, rid = text.split(":", 2)
        return cls(source, obj, rid)


@dataclass
class Fact:
    """One mapped record.

    `keys` are identity keys that mean *the same person* (``email:ann@x.nl``, ``xref:sf:003…``); two person
    facts sharing one are merged. `attach` are keys a non-person fact hangs on (``sf:Account:001…``,
    ``email:…``): the fact joins every person carrying one of them in `keys` or `member_of`. `member_of` are
    keys a person belongs to without merging on them (an account, a domain).

    `changed_at` stamps each value with when it last changed (reading keeps a stamp while the record's value
    stays the same), so precedence can weigh a value by its own age: an edit of one field of a record does not
    make its other values newer. A value without a stamp changed when the record did (`modified_at`); facts
    stored before stamps existed carry none.
    """

    ref: RecordRef
    kind: FactKind
    modified_at: dt.datetime | None = None
    deleted: bool = False
    keys: list[str] = field(default_factory=list)
    attach: list[str] = field(default_factory=list)
    member_of: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    changed_at: dict[str, dt.datetime] = field(default_factory=dict)

    def changed(self, name: str) -> dt.datetime | None:
        """When the value of `name` last changed: its own stamp, else the record's modified time."""
        return self.changed_at.get(name) or self.modified_at

    def stamp_changes(self, previous: Fact | None) -> None:
        """Stamp each value: a value equal to the one `previous` (this record's stored facts) held keeps that
        one's stamp (A -> B -> A is stamped at the last change); any other value changed at `modified_at`.

        Only stamps that differ from `modified_at` are kept: that is the fallback of `changed` anyway."""
        stamps: dict[str, dt.datetime] = {}
        for name, value in self.values.items():
            stamp = self.modified_at
            if previous is not None and name in previous.values:
                if encode_value(previous.values[name]) == encode_value(value):
                    stamp = previous.changed(name)
            if stamp is not None and stamp != self.modified_at:
                stamps[name] = stamp
        self.changed_at = stamps

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": str(self.ref),
            "kind": self.kind.value,
            "modified_at": self.modified_at.isoformat() if self.modified_at else None,
            "changed_at": {k: v.isoformat() for k, v in sorted(self.changed_at.items())},
            "keys": self.keys,
            "attach": self.attach,
            "member_of": self.member_of,
            "values": {k: encode_value(v) for k, v in self.values.items()},
            "extra": {k: encode_value(v) for k, v in self.extra.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fact:
        # every stored fact a run resolves is decoded here; decode_value changes only the encoded dicts
        # ({"$date": ...}), so plain values skip the call
        return cls(
            ref=RecordRef.parse(data["ref"]),
            kind=_KINDS.get(data["kind"]) or FactKind(data["kind"]),
            modified_at=dt.datetime.fromisoformat(data["modified_at"]) if data.get("modified_at") else None,
            keys=list(data.get("keys", [])),
            attach=list(data.get("attach", [])),
            member_of=list(data.get("member_of", [])),
            values={
                k: decode_value(v) if isinstance(v, dict) else v for k, v in data.get("values", {}).items()
            },
            extra={
                k: decode_value(v) if isinstance(v, dict) else v for k, v in data.get("extra", {}).items()
            },
            # absent from facts stored before per-field stamps: every value then dates from `modified_at`
            changed_at={k: dt.datetime.fromisoformat(v) for k, v in data.get("changed_at", {}).items()},
        )


def encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    return value


def decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "$date" in value:
            return dt.date.fromisoformat(value["$date"])
        if "$dt" in value:
            return dt.datetime.fromisoformat(value["$dt"])
    return value


@dataclass
class Person:
    """One real person, resolved across sources. `key` is stable across runs (kept in state)."""

    key: str
    refs: list[RecordRef] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # which fact (ref) supplied each value, for `explain`
    provenance: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        if name.startswith("extra."):
            return self.extra.get(name[len("extra.") :])
        return self.values.get(name)

    def refs_in(self, source: str) -> list[RecordRef]:
        return [r for r in self.refs if r.source == source]


def normalise_email(raw: Any) -> str | None:
    """Lower-cased, trimmed e-mail, or None when it is not plausibly an address."""
    if not isinstance(raw, str):
        return None
    text = raw.strip().lower()
    if text.startswith("mailto:"):
        text = text[len("mailto:") :]
    if "@" not in text or text.startswith("@") or text.endswith("@") or " " in text:
        return None
    return text


def email_domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1]
