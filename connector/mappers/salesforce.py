"""Salesforce records to `Fact`s: pure, no client, no clock.

The source hands each raw record (REST JSON or a Bulk CSV row, which differ only in how parents and booleans
look) together with the picklist meanings it read from the org (`OrgMeanings`). Picklists are explained by the
YAML value map first, then by the org (`LeadStatus.IsConverted`, `OpportunityStage.IsClosed/IsWon`), then by
Salesforce's stock lead statuses (`DEFAULT_LEAD_STATUS`); a value none explains is returned in `MappedRecord.unknown` and its field left unset: never guessed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from ..errors import RecordError
from ..schema import LEAD_STATUS_MEANINGS, OPPORTUNITY_MEANINGS, Fact, FactKind, RecordRef, normalise_email
from .fields import ObjectMapping, map_fields, translate

log = structlog.get_logger(__name__)

# Key under which the source puts an opportunity's contact ids (read from OpportunityContactRole).
CONTACT_ROLES_KEY = "_contact_ids"


# Salesforce's stock Lead statuses (a new org's LeadStatus picklist). The org's LeadStatus rows tell only which
# status converts a lead (IsConverted), not which ones mean "being worked on" or "sales said no", so without these
# every stock lead fell to the default stage and a closed-not-converted lead lost its suppression. A YAML value map
# overrides any of them; a status the org has renamed or added is not in here and stays unknown until mapped.
DEFAULT_LEAD_STATUS: dict[str, str] = {
    "open - not contacted": "new",
    "working - contacted": "working",
    "closed - converted": "converted",
    "closed - not converted": "qualified_out",
}


@dataclass(frozen=True)
class StageMeaning:
    closed: bool
    won: bool


@dataclass
class OrgMeanings:
    """Picklist meanings the org itself defines, keyed by case-folded API name and label."""

    lead_converted: dict[str, bool] = field(default_factory=dict)
    opportunity: dict[str, StageMeaning] = field(default_factory=dict)


@dataclass
class MappedRecord:
    fact: Fact
    unknown: list[tuple[str, str]] = field(default_factory=list)


def parse_sf_datetime(raw: Any) -> dt.datetime:
    """`2026-01-31T10:00:00.000+0000` (REST) or `...000Z` (Bulk) as an aware UTC datetime; ValueError else."""
    if isinstance(raw, dt.datetime):
        if raw.tzinfo is None:
            raise ValueError("datetime without a time zone")
        try:
            return raw.astimezone(dt.UTC)
        except OverflowError:
            raise ValueError(f"'{raw}' is outside the datetimes UTC can hold") from None
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"'{raw}' is not a Salesforce datetime")
    text = raw.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = text[:-5] + text[-5:-2] + ":" + text[-2:]
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"'{raw}' has no time zone")
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # the first hour of year 1 with a positive offset: no UTC instant in range
        raise ValueError(f"'{raw}' is outside the datetimes UTC can hold") from None


def truthy(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    return isinstance(raw, str) and raw.strip().lower() == "true"


def get_field(record: Mapping[str, Any], name: str) -> Any:
    """A field by API name; `Account.Name` reads a Bulk CSV column or walks a nested REST parent."""
    if name in record:
        return record[name]
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def lead_status_meaning(raw: Any, mapping: ObjectMapping, meanings: OrgMeanings) -> tuple[bool, str | None]:
    """(explained, meaning) of a Lead `Status` value."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return True, None
    value_map = mapping.value_maps.get("lead_status")
    if value_map:
        found, meaning = translate("lead_status", raw, value_map)
        if found:
            return True, None if meaning is None else str(meaning)
    key = str(raw).strip().casefold()
    if meanings.lead_converted.get(key):
        return True, "converted"
    stock = DEFAULT_LEAD_STATUS.get(key)
    # an org whose own row says this status does not convert is believed over the stock name
    if stock is not None and not (stock == "converted" and meanings.lead_converted.get(key) is False):
        return True, stock
    if key in LEAD_STATUS_MEANINGS:
        return True, key
    return False, None


def stage_values(raw: Any, mapping: ObjectMapping, meanings: OrgMeanings) -> tuple[bool, dict[str, Any]]:
    """(explained, values) of an Opportunity `StageName`: stage meaning plus closed / won flags."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return True, {}
    key = str(raw).strip().casefold()
    org = meanings.opportunity.get(key)
    meaning: str | None = None
    value_map = mapping.value_maps.get("opportunity_stage")
    if value_map:
        found, mapped = translate("opportunity_stage", raw, value_map)
        if found and mapped is not None:
            meaning = str(mapped)
    if meaning is None and org is not None:
        meaning = "won" if org.won else "lost" if org.closed else "open"
    if meaning is None and key in OPPORTUNITY_MEANINGS:
        meaning = key
    if meaning is None:
        return False, {}
    closed = org.closed if org is not None else meaning in ("won", "lost")
    won = org.won if org is not None else meaning == "won"
    return True, {"opportunity_stage": meaning, "opportunity_closed": closed, "opportunity_won": won}


def map_record(
    source: str, obj: str, raw: Mapping[str, Any], mapping: ObjectMapping, meanings: OrgMeanings
) -> MappedRecord:
    """Map one raw record of `obj`; RecordError with the reason when it cannot be mapped."""
    rid = raw.get("Id")
    if not rid:
        raise RecordError(f"{obj} record without Id", code="NO_ID")
    ref = RecordRef(source, obj, str(rid))
    try:
        modified_at = parse_sf_datetime(raw.get("SystemModstamp"))
    except ValueError as exc:
        raise RecordError(f"{ref}: SystemModstamp: {exc}", code="BAD_VALUE") from None
    try:
        mapped = map_fields(raw, mapping, getter=get_field, bad_email="drop")
    except RecordError as exc:
        raise RecordError(f"{ref}: {exc}", code=exc.code) from None
    for why in mapped.dropped:  # the record still counts; only its e-mail is no identity key
        log.warning("mapper.email.dropped", record=str(ref), reason=why)
    values, unknown = mapped.values, list(mapped.unknown)
    fact = Fact(ref=ref, kind=mapping.kind, modified_at=modified_at, values=values, extra=mapped.extra)

    if obj == "Lead" and "Status" in raw:
        _derive_lead_status(raw, mapping, meanings, values, unknown)
    if mapping.kind is FactKind.OPPORTUNITY and "StageName" in raw:
        _derive_stage(raw, mapping, meanings, values, unknown)

    if mapping.kind is FactKind.PERSON:
        _person_keys(source, obj, raw, fact)
    elif mapping.kind is FactKind.OPPORTUNITY:
        contacts = [c for c in raw.get(CONTACT_ROLES_KEY) or [] if c]
        if contacts:
            fact.attach = [f"{source}:Contact:{c}" for c in sorted(set(contacts))]
        elif raw.get("AccountId"):
            fact.attach = [f"{source}:Account:{raw['AccountId']}"]
    elif mapping.kind is FactKind.CONTRACT:
        fact.attach = _contract_attach(source, obj, raw, ref)
    return MappedRecord(fact=fact, unknown=unknown)


def _derive_lead_status(
    raw: Mapping[str, Any],
    mapping: ObjectMapping,
    meanings: OrgMeanings,
    values: dict[str, Any],
    unknown: list[tuple[str, str]],
) -> None:
    status = raw.get("Status")
    # map_fields treated Status like any field: drop what it guessed, the meaning comes from here
    values.pop("lead_status", None)
    unknown[:] = [u for u in unknown if u[0] != "lead_status"]
    explained, meaning = lead_status_meaning(status, mapping, meanings)
    if status is not None and str(status).strip():
        values.setdefault("lead_status_raw", str(status).strip())
    if truthy(raw.get("IsConverted")):
        meaning, explained = "converted", True
    if not explained:
        unknown.append(("lead_status", str(status)))
    elif meaning is not None:
        values["lead_status"] = meaning


def _derive_stage(
    raw: Mapping[str, Any],
    mapping: ObjectMapping,
    meanings: OrgMeanings,
    values: dict[str, Any],
    unknown: list[tuple[str, str]],
) -> None:
    stage = raw.get("StageName")
    for name in ("opportunity_stage", "opportunity_closed", "opportunity_won"):
        values.pop(name, None)
    unknown[:] = [u for u in unknown if u[0] != "opportunity_stage"]
    if stage is not None and str(stage).strip():
        values.setdefault("opportunity_stage_raw", str(stage).strip())
    explained, derived = stage_values(stage, mapping, meanings)
    if not explained:
        unknown.append(("opportunity_stage", str(stage)))
    values.update(derived)


def _person_keys(source: str, obj: str, raw: Mapping[str, Any], fact: Fact) -> None:
    keys = [str(fact.ref)]
    email = normalise_email(fact.values.get("email"))
    if email:
        fact.values["email"] = email
        keys.append(f"email:{email}")
    else:
        fact.values.pop("email", None)
    external = fact.values.get("external_id")
    if external:
        keys.append(f"ext:{external}")
    if obj == "Lead" and truthy(raw.get("IsConverted")):
        fact.values["converted"] = True
        fact.values["lead_status"] = "converted"
        contact = raw.get("ConvertedContactId")
        if contact:
            keys.append(f"{source}:Contact:{contact}")
    if obj == "Contact":
        fact.values["is_contact"] = True
        if raw.get("AccountId"):
            fact.member_of = [f"{source}:Account:{raw['AccountId']}"]
    fact.keys = keys


def _contract_attach(source: str, obj: str, raw: Mapping[str, Any], ref: RecordRef) -> list[str]:
    # A date field on an Account, Contact or Lead belongs to that record; a Contract to its account.
    if obj not in ("Account", "Contact", "Lead") and raw.get("AccountId"):
        return [f"{source}:Account:{raw['AccountId']}"]
    return [str(ref)]
