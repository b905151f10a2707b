"""What `connector check` and `connector discover` ask of a vtiger CRM for a vtiger source: metadata only.

`check` logs in (the answer names the webservice and vtiger versions and the API user's time zone, which must
be UTC: incremental reads compare `modifiedtime` in UTC), confirms each configured module with `listtypes`
and each mapped field (`label:` ones too) with `describe`. It reads no record. vtiger meters no calls: there
is no allowance to report.

`discover` lists the modules (`listtypes`) or describes the ones asked for, with each custom field named the
way the YAML names it (`label:<label>`: the cf_NNN name differs between installs) and the stock meaning
connector gives vtiger's stock lead statuses and sales stages (vtiger itself says nothing of their meaning).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...context import RunContext
from ...crm.vtiger.client import VtigerApiError, read_error
from ...crm.vtiger.describe import LABEL_PREFIX, ModuleInfo
from ...discovery import Discovery, FieldInfo, ObjectInfo, PicklistValue
from ...errors import ConfigError, RetriableError
from ...findings import Findings
from ...mappers.fields import translate
from ...mappers.vtiger import DEFAULT_LEAD_STATUS, DEFAULT_SALES_STAGE, PICKLIST_MEANINGS

if TYPE_CHECKING:
    from .source import VtigerSource

SUGGEST: dict[str, dict[str, str]] = {
    "*": {
        "email": "email",
        "firstname": "first_name",
        "lastname": "last_name",
        "company": "company",
        "emailoptout": "opted_out",
        "birthday": "birth_date",
    },
    "Leads": {"leadstatus": "lead_status", "country": "country"},
    "Potentials": {
        "sales_stage": "opportunity_stage_raw",
        "amount": "opportunity_amount",
        "closingdate": "opportunity_close_date",
    },
    "ServiceContracts": {"start_date": "contract_start", "due_date": "contract_end"},
}
KINDS = {"Potentials": "opportunity", "ServiceContracts": "contract"}
STOCK_MEANINGS = {
    ("Leads", "leadstatus"): DEFAULT_LEAD_STATUS,
    ("Potentials", "sales_stage"): DEFAULT_SALES_STAGE,
}
STOCK_VERSION = "8."  # the vtiger the client is built to (8.2.0, see the shared WEBSERVICE.md)


def _types(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict) or not isinstance(result.get("types"), list):
        raise RetriableError("vtiger listtypes: expected a list of types", code="BAD_RESPONSE")
    return result


def _listtypes(source: VtigerSource) -> dict[str, Any]:
    try:
        return dict(source.client.call("listtypes", check=_types))
    except VtigerApiError as exc:
        raise read_error(exc, f"sources.{source.name}: listtypes") from None


def check(source: VtigerSource, ctx: RunContext) -> Findings:
    found = Findings(source.name)
    client = source.client
    client.on_call = lambda _op: ctx.count_call(source.name)
    listed = found.attempt("login", lambda: _listtypes(source))  # the first call logs in
    if listed is None:
        return found
    info = client.login_info
    found.ok("login", f"as {client.username} at {client.endpoint}")
    version = info.get("vtigerVersion") or "?"
    found.add(
        "api version",
        "ok" if version.startswith(STOCK_VERSION) else "info",
        f"webservice {info.get('version') or '?'}, vtiger {version}"
        + ("" if version.startswith(STOCK_VERSION) else " (connector is built and tested against 8.2)"),
    )
    zone = info.get("time_zone") or "?"
    if zone == "UTC":
        found.ok("user time zone", "UTC")
    else:
        found.fail(
            "user time zone",
            f"{zone}: set the API user's time zone to UTC (incremental reads compare modifiedtime in UTC)",
        )
    types = {str(t) for t in listed["types"]}
    for module, mcfg in source.cfg.modules.items():
        if module not in types:
            found.fail(f"module {module}", "not among the modules this user may use (listtypes)")
            continue
        described = found.attempt(f"module {module}", functools.partial(source.module_info, module))
        if described is None:
            continue
        found.ok(f"module {module}", f"readable, {len(described.fields)} fields")
        for spec, target in mcfg.fields.items():
            what = f"field {module}.{spec}"
            try:
                name = described.resolve(spec)
            except ConfigError as exc:
                found.fail(what, str(exc))
                continue
            found.ok(what, f"readable ({name}, {described.fields[name].type})")
            _unmeant_values(
                found,
                module,
                spec,
                described.fields[name].picklist,
                mcfg.value_maps,
                target,
                source.cfg.unknown_values == "error",
            )
    found.info("api allowance", "vtiger meters no webservice calls")
    return found


def _unmeant_values(
    found: Findings,
    module: str,
    spec: str,
    offered: Sequence[str],
    value_maps: Mapping[str, Mapping[str, Any]],
    target: str,
    strict: bool,
) -> None:
    """An info finding (a fail with `unknown_values: error`) naming the values the picklist offers that neither the stock meanings nor value_maps
    know: `check` reads no record, so these are the values a run would count as unknown once they are used."""
    meaning = next((m for m, (raw, _) in PICKLIST_MEANINGS.items() if target in (m, raw)), None)
    if meaning is not None:
        known: Mapping[str, Any] = {**PICKLIST_MEANINGS[meaning][1], **(value_maps.get(meaning) or {})}
    elif target in value_maps:
        known = value_maps[target]
    else:
        return  # no value map applies: the value is kept as written
    missing = [v for v in offered if not translate(target, v, known)[0]]
    if missing:
        found.add(
            f"picklist {module}.{spec}",
            "fail" if strict else "info",
            f"{len(missing)} value(s) with no meaning (add them to value_maps): "
            + ", ".join(f"'{v}'" for v in missing)
            + (" (unknown_values: error: a record holding one stops a run)" if strict else ""),
        )


def discover(source: VtigerSource, modules: Sequence[str], ctx: RunContext) -> Discovery:
    source.client.on_call = lambda _op: ctx.count_call(source.name)
    listed = _listtypes(source)
    information: dict[str, Any] = listed["information"] if isinstance(listed.get("information"), dict) else {}
    if not modules:
        objects = []
        for name in (str(t) for t in listed["types"]):
            about = _about(information, name)
            if about.get("isEntity", True) in (True, "1", 1):
                objects.append(ObjectInfo(name, str(about.get("label") or name), KINDS.get(name, "person")))
        return Discovery(source.name, "vtiger", "modules", tuple(objects))
    known = {str(t) for t in listed["types"]}
    described = []
    for module in modules:
        if module not in known:
            raise ConfigError(
                f"source {source.name}: vtiger has no module '{module}' this user may use "
                f"(modules: {', '.join(sorted(known))})"
            )
        about = _about(information, module)
        described.append(_module(module, str(about.get("label") or module), source.module_info(module)))
    return Discovery(source.name, "vtiger", "modules", tuple(described))


def _about(information: dict[str, Any], module: str) -> dict[str, Any]:
    about = information.get(module)
    return about if isinstance(about, dict) else {}


def _module(module: str, label: str, info: ModuleInfo) -> ObjectInfo:
    fields = []
    for f in info.fields.values():
        stock = STOCK_MEANINGS.get((module, f.name), {})
        fields.append(
            FieldInfo(
                # a custom field's cf_NNN differs between installs: the YAML names it by its label
                key=f"{LABEL_PREFIX}{f.label}" if f.custom else f.name,
                name=f.name,
                label=f.label,
                type=f.type,
                writable=f.editable,
                picklist=tuple(PicklistValue(v, v, {}, stock.get(v)) for v in f.picklist),
                suggest=SUGGEST.get(module, {}).get(f.name) or SUGGEST["*"].get(f.name),
            )
        )
    return ObjectInfo(module, label, KINDS.get(module, "person"), tuple(fields))
