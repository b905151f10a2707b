"""`connector explain` in plain language: who the person is, what decided their stage, what held it, the record
each value came from, the labels written and the segments they are in.

The JSON form (`--json`) keeps the raw decision and snapshot for machines; this module only turns the same
facts into sentences a marketer or an admin can read without knowing Python's notation.
"""

from __future__ import annotations

import ast
import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from .schema import decode_value
from .stage_model import StageModel

# the engine records each condition that held as `field=value (the condition as written)`
_MATCHED = re.compile(r"^(?P<field>[\w.]+)=(?P<value>.*) \((?P<rule>.*)\)$")


def show(value: Any) -> str:
    """A value as a person reads it: ISO dates, yes/no, lists joined, whole amounts without `.0`."""
    value = decode_value(value)
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(show(v) for v in value) or "(none)"
    return str(value)


def who(values: Mapping[str, Any]) -> str:
    """`Ann de Vries <ann@acme.example>`, or as much of it as is known."""
    name = " ".join(str(values[k]) for k in ("first_name", "last_name") if values.get(k))
    email = values.get("email")
    if name and email:
        return f"{name} <{email}>"
    return name or str(email or "")


# a one-field condition as `conditions.describe` writes it: `lead_status in ['qualified', 'converted']`
_LEAF = re.compile(r"^(?P<field>[\w.]+) (?P<op>==|!=|not in|in|>=|<=|>|<|contains) (?P<operand>.+)$")
_WITHIN = re.compile(r"^(?P<field>[\w.]+) within today(?P<start>[+-]\d+)\.\.today(?P<end>[+-]\d+)$")
_OPS = {"==": "is", "!=": "is not", "in": "is one of", "not in": "is none of", "contains": "contains"}


def _literal(text: str) -> str:
    """A Python literal as `describe` wrote it, shown without Python's quotes and brackets."""
    try:
        return show(ast.literal_eval(text))
    except (ValueError, SyntaxError):
        pass  # not a literal (a date expression such as today-30): shown as written below
    if text.startswith("[") and text.endswith("]"):  # a list value the engine wrote as `[a,b]`
        return ", ".join(text[1:-1].split(",")) or "(none)"
    return text


def _day(offset: int) -> str:
    if offset == 0:
        return "today"
    return f"{-offset} days ago" if offset < 0 else f"{offset} days from today"


def condition_text(text: str) -> str:
    """`lead_status in ['qualified', 'converted']` -> `lead_status is one of qualified, converted`."""
    leaf = _LEAF.match(text)
    if leaf:
        op = _OPS.get(leaf["op"], leaf["op"])
        return f"{leaf['field']} {op} {_literal(leaf['operand'])}"
    if text.startswith("not(") and text.endswith(")"):
        return f"not ({condition_text(text[4:-1])})"
    within = _WITHIN.match(text)
    if within:
        start, end = _day(int(within["start"])), _day(int(within["end"]))
        return f"{within['field']} lies between {start} and {end}"
    return text


def _signal(text: str) -> str:
    match = _MATCHED.match(text)
    if not match:
        return text
    return f"{match['field']} is {_literal(match['value'])} (the rule asks: {condition_text(match['rule'])})"


def _stage(model: StageModel | None, name: str | None) -> str:
    if not name:
        return "(none)"
    if model is None or name not in {s.name for s in model.stages}:
        return name
    return f"{model.stage(name).label_for('')} ({name})"


def _why(decision: Mapping[str, Any], stage: str, model: StageModel | None) -> list[str]:
    rule = decision.get("rule")
    proposed = decision.get("proposed")
    lines: list[str] = []
    if rule:
        text = f'Decided by rule "{rule}", which proposes {_stage(model, proposed)}'
        described = next((r.description for r in (model.rules if model else []) if r.name == rule), "")
        lines.append(text + (f": {described}" if described else "") + ".")
        matched = decision.get("matched") or []
        if matched:
            lines.append("  because:")
            lines.extend(f"    {_signal(m)}" for m in matched)
    else:
        lines.append(f"No rule held, so the default stage applies: {_stage(model, proposed)}.")
    if decision.get("held"):
        lines.append(
            f"Held at {_stage(model, stage)}: the stage only moves forward along the funnel, and no re-entry rule"
            f" allows a move back to {_stage(model, proposed)}."
        )
    if decision.get("reentry"):
        lines.append("A re-entry rule moved them back along the funnel (a renewal or win-back).")
    return lines


def _labels(labels: Mapping[str, Mapping[str, str]]) -> list[str]:
    lines = []
    for target, by_ref in labels.items():
        if not by_ref:
            lines.append(f"  {target}: none written")
            continue
        refs_by_label: dict[str, list[str]] = defaultdict(list)
        for ref, label in sorted(by_ref.items()):
            refs_by_label[label].append(ref)
        for label, refs in refs_by_label.items():
            lines.append(f'  {target}: "{label}" on {", ".join(refs)}')
    return lines


def _segments(segments: Mapping[str, Iterable[str]]) -> list[str]:
    lines = []
    for target, names in segments.items():
        names = list(names)
        lines.append(f"  {target}: {', '.join(names) if names else 'in no segment'}")
    return lines


def explain_lines(out: Mapping[str, Any], model: StageModel | None = None) -> list[str]:
    """The plain-language explanation of `out` (what `connector explain --json` prints)."""
    values = {k: decode_value(v) for k, v in out["values"].items()}
    name = who(values)
    lines = [f"{name} (person {out['person']})" if name else f"person {out['person']}"]
    lines.append(f"Stage: {_stage(model, out['stage'])}, since {show(out['since'])}.")
    lines.extend(_why(out["decision"], out["stage"], model))
    records = out["records"]
    lines.append(f"Records ({len(records)}):")
    lines.extend(f"  {ref}" for ref in records)
    lines.append("Values, and the record each came from:")
    provenance = out["provenance"]
    for field, value in sorted(values.items()):
        source = provenance.get(field)
        lines.append(f"  {field}: {show(value)}" + (f"   from {source}" if source else ""))
    lines.append("History:")
    for h in out["history"]:
        rule = f"rule {h['rule']}" if h["rule"] else "default stage"
        lines.append(f"  {show(h['at'])}: {h['from_stage'] or 'new'} -> {h['to_stage']} ({rule})")
    lines.append("Labels written:")
    lines.extend(_labels(out["labels"]))
    lines.append("Segments:")
    lines.extend(_segments(out["segments"]))
    return lines
