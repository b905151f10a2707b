"""`connector discover`: what a source's system offers, and a starting `fields:` / `value_maps:` block.

The source plugin asks its system (`Source.discover`); this module builds the source and prints: the objects
(or modules) when none are named, else each named object's fields (API name, label, type, writable) with
their picklist values and what the system says they mean, then a YAML block to paste under the source's
`objects:` (Salesforce) or `modules:` (vtiger). In that block the fields a config usually maps are mapped,
every other field is a comment, and a picklist value whose meaning the system (or connector's stock meaning)
tells is mapped while the rest are comments naming the meanings to choose from.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence

from .config import AppConfigBase
from .context import RunContext
from .discovery import Discovery, FieldInfo, ObjectInfo
from .errors import ConfigError
from .pipeline import Runner
from .registry import load_source
from .retry import RetryPolicy
from .schema import LEAD_STATUS_MEANINGS, OPPORTUNITY_MEANINGS

# the value map a mapped picklist field feeds, and the meanings it takes
VALUE_MAPS = {
    "lead_status": ("lead_status", LEAD_STATUS_MEANINGS),
    "lead_status_raw": ("lead_status", LEAD_STATUS_MEANINGS),
    "opportunity_stage": ("opportunity_stage", OPPORTUNITY_MEANINGS),
    "opportunity_stage_raw": ("opportunity_stage", OPPORTUNITY_MEANINGS),
}
PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
# plain words YAML 1.1 reads as booleans or null: as keys they must be quoted
YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def run_discover(
    config: AppConfigBase,
    source_name: str,
    objects: Sequence[str],
    *,
    environ: dict[str, str] | None = None,
    policy: RetryPolicy | None = None,
    now: dt.datetime | None = None,
) -> Discovery:
    """Ask source `source_name` what its system offers; ConfigError for an unknown source or object."""
    cfg = next((s for s in config.sources if s.name == source_name), None)
    if cfg is None:
        known = ", ".join(s.name for s in config.sources)
        raise ConfigError(f"no source named '{source_name}' (sources: {known})")
    runner = Runner(config, environ=environ, policy=policy)
    started = now or dt.datetime.now(dt.UTC)
    ctx = RunContext(as_of=started.date(), started_at=started, dry_run=True)
    source = load_source(cfg.type).from_config(cfg, runner.env)
    try:
        found = source.discover(objects, ctx)
    finally:
        runner.close_plugins([source])
    if found is None:
        raise ConfigError(f"source {source_name} ({cfg.type}) cannot tell what it offers")
    return found


def text(found: Discovery) -> str:
    lines: list[str] = []
    if all(o.fields is None for o in found.objects):
        lines.append(f"{found.source} ({found.system}): {len(found.objects)} {found.container}")
        width = max((len(o.name) for o in found.objects), default=0)
        lines += [f"  {o.name.ljust(width)}  {o.label}" for o in found.objects]
        lines.append(f"name some to see their fields: connector discover -c FILE {found.source} <name> ...")
        return "\n".join(lines)
    for obj in found.objects:
        lines.append(f"{obj.name} ({obj.label}): {len(obj.fields or ())} fields")
        for f in obj.fields or ():
            access = "writable" if f.writable else "read-only"
            name = f.key if f.key == f.name else f"{f.key} ({f.name})"
            lines.append(f"  {name}  '{f.label}'  {f.type}  {access}")
            for v in f.picklist:
                said = ", ".join(f"{k}={str(b).lower()}" for k, b in v.flags.items())
                meaning = f" -> {v.meaning}" if v.meaning else ""
                label = f" '{v.label}'" if v.label != v.value else ""
                lines.append(f"      {v.value}{label}{f'  [{said}]' if said else ''}{meaning}")
    lines += ["", f"# a start for sources[{found.source}].{found.container}:", yaml_block(found)]
    return "\n".join(lines)


def yaml_block(found: Discovery) -> str:
    """`objects:` / `modules:` with each described object's `kind`, `fields` and `value_maps`: valid YAML of
    the source's config (only commented lines are left for the admin to decide)."""
    out = [f"{found.container}:"]
    for obj in found.objects:
        if obj.fields is not None:
            out += _object_block(obj)
    return "\n".join(out)


def _object_block(obj: ObjectInfo) -> list[str]:
    fields = obj.fields or ()
    out = [f"  {_key(obj.name)}:"]
    if obj.kind != "person":
        out.append(f"    kind: {obj.kind}")
    mapped = [f for f in fields if f.suggest]
    out.append("    fields:" if mapped else "    fields: {}")
    out += [f"      {_key(f.key)}: {f.suggest}" for f in mapped]
    out += [
        f"      # {_key(f.key)}: extra.{f.name.lower()}   # {f.label} ({f.type})"
        for f in fields
        if not f.suggest
    ]
    maps = [(f, VALUE_MAPS[f.suggest]) for f in mapped if f.suggest in VALUE_MAPS and f.picklist]
    if maps:
        out.append("    value_maps:")
    for f, (target, meanings) in maps:
        out += _value_map(f, target, meanings)
    return out


def _value_map(f: FieldInfo, target: str, meanings: Sequence[str]) -> list[str]:
    known = [v for v in f.picklist if v.meaning]
    out = [f"      {target}:" if known else f"      {target}: {{}}"]
    for v in f.picklist:
        said = ", ".join(f"{k}" for k, b in v.flags.items() if b)
        if v.meaning:
            out.append(f"        {_key(v.value)}: {v.meaning}" + (f"   # the org: {said}" if said else ""))
        else:
            out.append(f"        # {_key(v.value)}:   # {' | '.join(meanings)}")
    return out


def _key(text: str) -> str:
    # JSON's double-quoted string is a YAML double-quoted scalar: spaces, colons, quotes all survive
    plain = PLAIN_KEY.match(text) and text.casefold() not in YAML_WORDS
    return text if plain else json.dumps(text, ensure_ascii=False)
