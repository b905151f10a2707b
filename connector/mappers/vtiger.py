"""vtiger records -> `Fact`s. Pure: no client, no clock, no I/O.

vtiger returns every value as a string (`""` for empty, `"5000.00000000"`, `"1"` for a checked box) and
references as `<prefix>x<crmid>` ids. The source resolves custom-field labels to `cf_NNN` names through
`describe` before it builds a `VtigerModuleSpec`, so this module only ever sees real field names.

Picklists with a meaning (`leadstatus`, `sales_stage`) are kept raw (`lead_status_raw`,
`opportunity_stage_raw`) and translated through the YAML value map merged over the stock defaults below; a
value neither knows is reported in `MappedRecord.unknown` and left unset, never guessed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from ..errors import RecordError
from ..schema import Fact, FactKind, RecordRef, normalise_email
from .fields import ObjectMapping, map_fields, translate

log = structlog.get_logger(__name__)

# Stock vtiger lead statuses. Sales' own verdicts (junk, lost) are qualified_out; "Contact in Future" is
# vtiger's nurture; untouched or cold leads are new; being worked on (including hot/warm interest) is
# working; "Pre Qualified" and "Qualified" are sales' positive qualification.
DEFAULT_LEAD_STATUS: dict[str, str] = {
    "Not Contacted": "new",
    "Cold": "new",
    "Attempted to Contact": "working",
    "Contacted": "working",
    "Warm": "working",
    "Hot": "working",
    "Pre Qualified": "qualified",
    "Qualified": "qualified",
    "Contact in Future": "nurture",
    "Junk Lead": "qualified_out",
    "Lost Lead": "qualified_out",
}
# Stock vtiger sales stages: a quote out or in negotiation is "proposal" (the 001 model's opportunity phase).
DEFAULT_SALES_STAGE: dict[str, str] = {
    "Prospecting": "open",
    "Qualification": "open",
    "Needs Analysis": "open",
    "Value Proposition": "open",
    "Id. Decision Makers": "open",
    "Perception Analysis": "open",
    "Proposal or Price Quote": "proposal",
    "Negotiation or Review": "proposal",
    "Closed Won": "won",
    "Closed Lost": "lost",
}
# meaning field -> (raw field that carries the value as written, stock value map)
PICKLIST_MEANINGS: dict[str, tuple[str, dict[str, str]]] = {
    "lead_status": ("lead_status_raw", DEFAULT_LEAD_STATUS),
    "opportunity_stage": ("opportunity_stage_raw", DEFAULT_SALES_STAGE),
}
# reference fields an opportunity / contract hangs on, most specific first (a contact before an account)
DEFAULT_LINKS: dict[str, tuple[str, ...]] = {
    "Potentials": ("contact_id", "related_to"),
    "ServiceContracts": ("sc_related_to",),
}
PERSON_LINK_MODULES = frozenset({"Contacts", "Accounts", "Leads"})
DEFAULT_ID_PREFIXES: dict[str, str] = {
    "1": "Campaigns",
    "10": "Leads",
    "11": "Accounts",
    "12": "Contacts",
    "13": "Potentials",
    "25": "ServiceContracts",
}


@dataclass(frozen=True)
class VtigerModuleSpec:
    """Everything the mapper needs about one configured module, with field names already resolved."""

    source: str
    module: str
    mapping: ObjectMapping  # keys are vtiger field names; picklist fields target their *_raw field
    picklists: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # meaning -> value map
    links: tuple[str, ...] = ()
    account_field: str | None = None  # Contacts: account_id -> member_of
    is_contact: bool = False
    id_prefixes: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ID_PREFIXES))


@dataclass
class MappedRecord:
    fact: Fact
    unknown: list[tuple[str, str]] = field(default_factory=list)  # (meaning field, raw value)


def parse_modified(raw: Any) -> dt.datetime | None:
    """vtiger's `modifiedtime` ("2026-11-23 12:46:32", UTC) as an aware datetime."""
    if raw is None or str(raw).strip() == "":
        return None
    return dt.datetime.strptime(str(raw).strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)


def ref_key(source: str, record_id: str, prefixes: Mapping[str, str]) -> str | None:
    """`<source>:<Module>:<id>` for a reference id, or None when the prefix is not a known module."""
    head, sep, _ = record_id.partition("x")
    module = prefixes.get(head) if sep else None
    return f"{source}:{module}:{record_id}" if module else None


def map_record(raw: Mapping[str, Any], spec: VtigerModuleSpec) -> MappedRecord:
    """Map one vtiger record; raise `RecordError` naming the record when it cannot be used."""
    record_id = str(raw.get("id") or "").strip()
    if not record_id:
        raise RecordError(f"{spec.module} record without an id", code="MISSING_ID")
    where = f"{spec.module} {record_id}"
    try:
        modified = parse_modified(raw.get("modifiedtime"))
    except ValueError:
        raise RecordError(
            f"{where}: modifiedtime '{raw.get('modifiedtime')}' is not 'YYYY-MM-DD HH:MM:SS'",
            code="BAD_VALUE",
        ) from None
    try:
        mapped = map_fields(raw, spec.mapping, bad_email="drop")
    except RecordError as exc:
        raise RecordError(f"{where}: {exc}", code=exc.code) from None
    for why in mapped.dropped:  # the record still counts; only its e-mail is no identity key
        log.warning("mapper.email.dropped", record=where, reason=why)

    values = dict(mapped.values)
    unknown = list(mapped.unknown)
    for meaning, value_map in spec.picklists.items():
        raw_field = PICKLIST_MEANINGS[meaning][0]
        written = values.get(raw_field)
        if written is None:
            continue
        found, translated = translate(meaning, written, value_map)
        if not found:
            unknown.append((meaning, str(written)))
        elif translated is not None:
            values[meaning] = translated
    if "opportunity_stage" in values:
        values["opportunity_won"] = values["opportunity_stage"] == "won"
        values["opportunity_closed"] = values["opportunity_stage"] in ("won", "lost")

    ref = RecordRef(spec.source, spec.module, record_id)
    fact = Fact(
        ref=ref, kind=spec.mapping.kind, modified_at=modified, values=values, extra=dict(mapped.extra)
    )
    kind = spec.mapping.kind
    if kind is FactKind.PERSON:
        _person(fact, raw, spec)
    elif kind is FactKind.ENRICHMENT:
        # an account (or another record people belong to): joins everyone whose member_of names it
        fact.attach = [str(ref)]
    else:
        fact.attach = _links(raw, spec, where)
    return MappedRecord(fact=fact, unknown=unknown)


def _person(fact: Fact, raw: Mapping[str, Any], spec: VtigerModuleSpec) -> None:
    email = normalise_email(fact.values.get("email"))
    if email:
        fact.values["email"] = email
    else:
        fact.values.pop("email", None)  # vtiger stores "not-an-email" as given; it is no identity
    external_id = fact.values.get("external_id")
    fact.keys = [str(fact.ref)]
    if email:
        fact.keys.append(f"email:{email}")
    if external_id:
        fact.keys.append(f"ext:{external_id}")
    if spec.is_contact:
        fact.values["is_contact"] = True
    if spec.account_field:
        account = str(raw.get(spec.account_field) or "").strip()
        key = ref_key(spec.source, account, spec.id_prefixes) if account else None
        if key:
            fact.member_of = [key]


def _links(raw: Mapping[str, Any], spec: VtigerModuleSpec, where: str) -> list[str]:
    for name in spec.links:
        value = str(raw.get(name) or "").strip()
        if not value:
            continue
        key = ref_key(spec.source, value, spec.id_prefixes)
        if key and key.split(":", 2)[1] in PERSON_LINK_MODULES:
            return [key]
    fields = ", ".join(spec.links) or "no link fields configured"
    raise RecordError(f"{where}: linked to no contact or account ({fields})", code="NO_LINK")
