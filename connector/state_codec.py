"""Compact encodings of what the state keeps per fact (its payload) and per person (decision and snapshot).

Each is JSON with its default values left out, short keys where a name repeats in every row, and zlib on top,
stored as a BLOB: at 100,000 people this took the people and facts tables from 1.6 KB to under 0.5 KB a person
(a snapshot's provenance names the person's own records again, field after field; zlib and the record index
below fold that away). Rows written before migration 10 hold plain JSON text and stay readable: every decoder
here takes both, and a row is re-encoded the next time it is saved.

The encodings are deterministic (sorted keys, one zlib level), so equal content gives equal bytes and a run
can still tell an unchanged person by comparing what it would store with what is stored.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from .schema import Fact

# zlib level 6 (the default) compresses these few hundred bytes as well as 9 at two thirds of the CPU
LEVEL = 6

_FACT_DEFAULTS: dict[str, Any] = {
    "modified_at": None,
    "changed_at": {},
    "keys": [],
    "attach": [],
    "member_of": [],
    "values": {},
    "extra": {},
}
_DECISION_DEFAULTS: dict[str, Any] = {"rule": None, "matched": [], "held": False, "reentry": False}


def _pack(data: dict[str, Any]) -> bytes:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return zlib.compress(text.encode("utf-8"), LEVEL)


def _unpack(stored: bytes | str) -> dict[str, Any]:
    if isinstance(stored, bytes):
        data: dict[str, Any] = json.loads(zlib.decompress(stored))
        return data
    old: dict[str, Any] = json.loads(stored)  # plain JSON, as written before migration 10
    return old


# ---- facts ----------------------------------------------------------------------------------------------


def encode_fact(fact: Fact) -> bytes:
    return _pack(
        {k: v for k, v in fact.to_json().items() if k not in _FACT_DEFAULTS or v != _FACT_DEFAULTS[k]}
    )


def fact_json(stored: bytes | str) -> dict[str, Any]:
    """A stored fact payload in the full JSON form of `Fact.to_json` (defaults put back)."""
    data = _unpack(stored)
    for name, default in _FACT_DEFAULTS.items():
        if name not in data:
            data[name] = default.copy() if isinstance(default, dict | list) else default
    return data


def decode_fact(stored: bytes | str) -> Fact:
    return Fact.from_json(fact_json(stored))


# ---- people ---------------------------------------------------------------------------------------------


def encode_decision(decision: dict[str, Any]) -> bytes:
    return _pack(
        {k: v for k, v in decision.items() if k not in _DECISION_DEFAULTS or v != _DECISION_DEFAULTS[k]}
    )


def decode_decision(stored: bytes | str) -> dict[str, Any]:
    data = _unpack(stored)
    for name, default in _DECISION_DEFAULTS.items():
        data.setdefault(name, default.copy() if isinstance(default, list) else default)
    return data


def encode_snapshot(snapshot: dict[str, Any]) -> bytes:
    """`refs`, `values`, `extra`, `provenance` as r, v, x, p; a provenance naming one of the person's own
    records (most do) by its place in `refs`."""
    refs: list[str] = list(snapshot.get("refs") or [])
    place = {ref: i for i, ref in enumerate(refs)}
    packed: dict[str, Any] = {"r": refs, "v": snapshot.get("values") or {}}
    if snapshot.get("extra"):
        packed["x"] = snapshot["extra"]
    provenance = snapshot.get("provenance") or {}
    if provenance:
        packed["p"] = {k: place.get(v, v) for k, v in provenance.items()}
    return _pack(packed)


def decode_snapshot(stored: bytes | str) -> dict[str, Any]:
    """A stored snapshot in its full form: {"refs", "values", "extra", "provenance"}."""
    if not isinstance(stored, bytes):
        old: dict[str, Any] = json.loads(stored)
        return old
    data = _unpack(stored)
    refs: list[str] = data.get("r", [])
    return {
        "refs": refs,
        "values": data.get("v", {}),
        "extra": data.get("x", {}),
        "provenance": {k: refs[v] if isinstance(v, int) else v for k, v in data.get("p", {}).items()},
    }
