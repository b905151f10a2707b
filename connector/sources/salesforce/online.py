"""What `connector check` and `connector discover` ask of an org for a salesforce source: metadata only.

`check` logs in, compares the configured API version with the versions the org serves, checks every object
and mapped field against describe (the describe cache where it is fresh), reads the LeadStatus /
OpportunityStage rows that give picklist values their meaning, and the org's daily API allowance (`/limits`).
It reads no record: a `where` condition can only be judged by a query, so `plan` (which reads) checks it.

`discover` lists the org's objects (global describe), or describes the ones asked for in full from the org (an
admin writing a config wants today's fields, labels and picklists, which the trimmed describe cache does not
keep), with each Lead status's IsConverted and each Opportunity stage's IsClosed / IsWon.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...context import RunContext
from ...crm.salesforce.client import SalesforceRequestError, has, is_describe
from ...discovery import Discovery, FieldInfo, ObjectInfo, PicklistValue
from ...errors import ConfigError
from ...findings import Findings
from ...mappers.salesforce import get_field, lead_status_meaning, stage_values, truthy
from .org import CONTACT_ROLE

if TYPE_CHECKING:
    from .source import SalesforceSource

# the fields a config usually maps, per object ("*": any object), to start the `fields:` block with
SUGGEST: dict[str, dict[str, str]] = {
    "*": {
        "Email": "email",
        "FirstName": "first_name",
        "LastName": "last_name",
        "Company": "company",
        "Country": "country",
        "HasOptedOutOfEmail": "opted_out",
        "Birthdate": "birth_date",
    },
    "Lead": {"Status": "lead_status"},
    "Opportunity": {
        "StageName": "opportunity_stage_raw",
        "Amount": "opportunity_amount",
        "CloseDate": "opportunity_close_date",
    },
    "Contract": {"StartDate": "contract_start", "EndDate": "contract_end"},
}
KINDS = {"Opportunity": "opportunity", "Contract": "contract"}
# picklist field -> the org's rows that give its values a meaning
MEANING_ROWS = {("Lead", "Status"): "LeadStatus", ("Opportunity", "StageName"): "OpportunityStage"}


def check(source: SalesforceSource, ctx: RunContext) -> Findings:
    found = Findings(source.name)
    client, cfg = source.client, source.cfg
    # no budget share of our own here: check makes a handful of calls, and reports the allowance itself
    source.connection.bind(ctx, counted_as=source.name, budget_share=None)
    instance = found.attempt("login", lambda: client.instance_url)  # the first use logs in
    if instance is None:
        return found
    found.ok("login", f"{cfg.auth} flow, instance {instance}")
    versions = found.attempt("api version", lambda: _versions(source))
    if versions is not None:
        newest = max(versions, key=_version_key, default="?")
        if cfg.api_version in versions:
            found.ok("api version", f"v{cfg.api_version} (the org serves up to v{newest})")
        else:
            found.fail(
                "api version", f"the org does not serve v{cfg.api_version} (it serves up to v{newest})"
            )
    objects = [*cfg.objects, *([CONTACT_ROLE] if "Opportunity" in cfg.objects else [])]
    for obj in objects:
        _check_object(source, found, obj)
    for obj, rows_of in (("Lead", "LeadStatus"), ("Opportunity", "OpportunityStage")):
        if obj in cfg.objects:
            # from the org, not the cache: an admin runs check right after changing the picklist (the
            # rows are cached again, so the run after it starts from them)
            rows = found.attempt(rows_of, functools.partial(source.org.meaning_rows, rows_of, refresh=True))
            if rows is not None:
                found.ok(rows_of, _meaning_summary(rows_of, rows))
                found.attempt(f"picklist {obj}", functools.partial(_unmeant_values, source, found, obj, rows))
    _check_allowance(source, found)
    return found


def _versions(source: SalesforceSource) -> list[str]:
    body = source.client.get_json(
        "/services/data/", what="api versions", expect=lambda b: isinstance(b, list)
    )
    return [str(v.get("version")) for v in body if isinstance(v, dict) and v.get("version")]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _check_object(source: SalesforceSource, found: Findings, obj: str) -> None:
    client = source.client
    fields = found.attempt(f"object {obj}", lambda: client.field_names(obj))
    if fields is None:
        return
    cached = " (describe from the cache)" if obj in client.cached_describes else ""
    missing = [f for f in ("Id", "SystemModstamp") if f not in fields]
    if missing:
        found.fail(f"object {obj}", f"lacks {', '.join(missing)}: it cannot be read incrementally")
    else:
        found.ok(f"object {obj}", f"readable, {len(fields)} fields{cached}")
    mapping = source.cfg.objects.get(obj)
    if mapping is None:
        return
    for name in mapping.fields:
        what = f"field {obj}.{name}"
        there = found.attempt(what, functools.partial(source.org.has_field, obj, name))
        if there:
            kind = fields[name].get("type") if name in fields else "through a relationship"
            found.ok(what, f"readable ({kind})")
        elif there is not None:
            found.fail(what, f"no such field on {obj}, or the API user may not read it")
    if mapping.where:
        found.info(f"where {obj}", "a condition is judged by the org only in a query: `plan` checks it")


def _meaning_summary(obj: str, rows: list[dict[str, Any]]) -> str:
    names = [str(get_field(r, "ApiName") or get_field(r, "MasterLabel")) for r in rows]
    if obj == "LeadStatus":
        converted = [n for n, r in zip(names, rows, strict=True) if truthy(r.get("IsConverted"))]
        return f"{len(rows)} lead statuses; converted: {', '.join(converted) or 'none'}"
    won = [n for n, r in zip(names, rows, strict=True) if truthy(r.get("IsWon"))]
    closed = [n for n, r in zip(names, rows, strict=True) if truthy(r.get("IsClosed"))]
    return f"{len(rows)} stages; closed: {', '.join(closed) or 'none'}; won: {', '.join(won) or 'none'}"


def _unmeant_values(source: SalesforceSource, found: Findings, obj: str, rows: list[dict[str, Any]]) -> None:
    """The values of Lead.Status / Opportunity.StageName (the org's rows, and the describe's picklist) that
    neither a value map, the org's flags nor a stock meaning explains: judged by the mapper's own functions,
    so these are exactly the values a run would count as unknown once records carry them. An info finding;
    a fail when the source says `unknown_values: error` (such a value in the data stops a run)."""
    mapping = source.cfg.objects[obj]
    field = "Status" if obj == "Lead" else "StageName"
    offered: dict[str, str] = {}
    for row in rows:
        name = get_field(row, "ApiName") or get_field(row, "MasterLabel")
        if name:
            offered.setdefault(str(name).strip().casefold(), str(name))
    described = source.client.field_names(obj).get(field) or {}
    for value in described.get("picklistValues") or []:
        if isinstance(value, dict) and value.get("value") and value.get("active", True):
            offered.setdefault(str(value["value"]).strip().casefold(), str(value["value"]))
    meanings = source.org.load_meanings()
    if obj == "Lead":
        missing = [v for v in offered.values() if not lead_status_meaning(v, mapping, meanings)[0]]
    else:
        missing = [v for v in offered.values() if not stage_values(v, mapping, meanings)[0]]
    if not missing:
        found.ok(f"picklist {obj}.{field}", f"every one of {len(offered)} value(s) has a meaning")
        return
    found.add(
        f"picklist {obj}.{field}",
        "fail" if source.cfg.unknown_values == "error" else "info",
        f"{len(missing)} value(s) with no meaning (add them to value_maps): "
        + ", ".join(f"'{v}'" for v in missing)
        + (
            " (unknown_values: error: a record holding one stops a run)"
            if source.cfg.unknown_values == "error"
            else ""
        ),
    )


def _check_allowance(source: SalesforceSource, found: Findings) -> None:
    limits = found.attempt(
        "api allowance",
        lambda: source.client.get_json(
            "limits", what="limits", expect=lambda b: has(b, DailyApiRequests=dict)
        ),
    )
    if limits is None:
        return
    daily: Mapping[str, Any] = limits["DailyApiRequests"]
    total, left = int(daily.get("Max") or 0), int(daily.get("Remaining") or 0)
    used = total - left
    share = source.cfg.api_budget_share
    if share is None:
        found.ok("api allowance", f"{left} of {total} calls left today (no share configured)")
        return
    ceiling = int(share * total)
    if used >= ceiling:
        found.fail(
            "api allowance",
            f"{used} of {total} calls used today, at or past this source's {share:.0%} ({ceiling}): a run "
            "would stop at once (exit 6)",
        )
    else:
        found.ok(
            "api allowance",
            f"{left} of {total} calls left today; a run may use {ceiling - used} more ({share:.0%} share)",
        )


# -- discover ------------------------------------------------------------------------------------------------
def discover(source: SalesforceSource, objects: Sequence[str], ctx: RunContext) -> Discovery:
    source.connection.bind(ctx, counted_as=source.name, budget_share=None)
    client = source.client
    if not objects:
        body = client.get_json("sobjects/", what="global describe", expect=lambda b: has(b, sobjects=list))
        listed = tuple(
            ObjectInfo(str(o["name"]), str(o.get("label") or o["name"]), KINDS.get(str(o["name"]), "person"))
            for o in body["sobjects"]
            if isinstance(o, dict) and o.get("name") and o.get("queryable", True)
        )
        return Discovery(source.name, "salesforce", "objects", listed)
    return Discovery(source.name, "salesforce", "objects", tuple(_describe(source, obj) for obj in objects))


def _describe(source: SalesforceSource, obj: str) -> ObjectInfo:
    try:
        body = source.client.get_json(f"sobjects/{obj}/describe", what=f"describe {obj}", expect=is_describe)
    except SalesforceRequestError as exc:
        if exc.status == 404:
            raise ConfigError(f"source {source.name}: the org has no object '{obj}'") from None
        raise
    fields = []
    for f in body["fields"]:
        name = str(f["name"])
        rows_of = MEANING_ROWS.get((obj, name))
        flags = _flags(source, rows_of) if rows_of else {}
        picklist = tuple(
            _value(str(p.get("value")), str(p.get("label") or p.get("value")), flags)
            for p in f.get("picklistValues") or []
            if isinstance(p, dict) and p.get("active", True) and p.get("value") is not None
        )
        fields.append(
            FieldInfo(
                key=name,
                name=name,
                label=str(f.get("label") or name),
                type=str(f.get("type") or "?"),
                writable=bool(f.get("updateable")),
                picklist=picklist,
                suggest=SUGGEST.get(obj, {}).get(name) or SUGGEST["*"].get(name),
            )
        )
    return ObjectInfo(obj, str(body.get("label") or obj), KINDS.get(obj, "person"), tuple(fields))


def _flags(source: SalesforceSource, obj: str) -> dict[str, dict[str, bool]]:
    """Value (API name and label, case-folded) -> the flags the org's row gives it."""
    out: dict[str, dict[str, bool]] = {}
    for row in source.org.meaning_rows(obj):
        flags: dict[str, bool] = {
            k: truthy(row.get(k)) for k in ("IsConverted", "IsClosed", "IsWon") if k in row
        }
        for key in (get_field(row, "ApiName"), get_field(row, "MasterLabel")):
            if key:
                out[str(key).strip().casefold()] = flags
    return out


def _value(value: str, label: str, flags: Mapping[str, Mapping[str, bool]]) -> PicklistValue:
    said = dict(flags.get(value.strip().casefold()) or flags.get(label.strip().casefold()) or {})
    meaning = None
    if said.get("IsConverted"):
        meaning = "converted"
    elif said.get("IsWon"):
        meaning = "won"
    elif said.get("IsClosed"):
        meaning = "lost"
    return PicklistValue(value, label, said, meaning)
