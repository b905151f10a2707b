"""Compact encodings of what the state keeps per fact (its payload), per person (decision and snapshot) and per
transition (its reason).

Each is JSON with its default values left out, short keys where a name repeats in every row, compressed and
stored as a BLOB. Three generations stay readable side by side, and every decoder here takes all three:
- plain JSON text, as written before migration 10;
- zlib (a BLOB starting 0x78), as written from migration 10, and still written for the first rows of each
  kind a state sees (`MIN_SAMPLES`): the rows its dictionary is trained on;
- zstd with the dictionary of that kind of row (migration 11, state_dictionaries.py): a magicless frame
  whose header names the dictionary (its first byte, the frame descriptor, is never 0x78).
A row is re-encoded the next time it is saved; nothing compares stored bytes across codecs to decide
whether a person is described differently (`same_snapshot`).

The encodings are deterministic for a given dictionary (sorted keys, one level), so equal content gives
equal bytes and a run can still tell an unchanged person by comparing what it would store with what is
stored.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import Any

import structlog
import zstandard

from . import state_dictionaries as dicts
from .schema import Fact

log = structlog.get_logger(__name__)

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
    return zlib.compress(_text(data), LEVEL)


# one encoder, built once: json.dumps with any option builds a new JSONEncoder (and its C scanner) for every
# call, which cost as much as the encoding itself on these small rows (a fact, a decision, a snapshot each)
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


def _text(data: dict[str, Any]) -> bytes:
    return _ENCODE(data).encode("utf-8")


def _inflate(stored: bytes) -> bytes:
    if stored[:1] == _ZLIB:
        return zlib.decompress(stored)
    return dicts.decompress(stored)


def _unpack(stored: bytes | str) -> dict[str, Any]:
    if isinstance(stored, bytes):
        data: dict[str, Any] = json.loads(_inflate(stored))
        return data
    old: dict[str, Any] = json.loads(stored)  # plain JSON, as written before migration 10
    return old


_ZLIB = b"\x78"  # the first byte of every zlib stream written at LEVEL (deflate, 32 KB window)


# ---- facts ----------------------------------------------------------------------------------------------


def _fact_packed(fact: Fact) -> dict[str, Any]:
    return {k: v for k, v in fact.to_json().items() if k not in _FACT_DEFAULTS or v != _FACT_DEFAULTS[k]}


def encode_fact(fact: Fact) -> bytes:
    """zlib only: `Codec.encode_fact` is what the state stores with."""
    return _pack(_fact_packed(fact))


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


def _decision_packed(decision: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in decision.items() if k not in _DECISION_DEFAULTS or v != _DECISION_DEFAULTS[k]}


def encode_decision(decision: dict[str, Any]) -> bytes:
    """zlib only: `Codec.encode_decision` is what the state stores with."""
    return _pack(_decision_packed(decision))


def decode_decision(stored: bytes | str) -> dict[str, Any]:
    data = _unpack(stored)
    for name, default in _DECISION_DEFAULTS.items():
        data.setdefault(name, default.copy() if isinstance(default, list) else default)
    return data


def _snapshot_packed(snapshot: dict[str, Any]) -> dict[str, Any]:
    """`refs`, `values`, `extra`, `provenance` as r, v, x, p; a provenance names a record by its place in
    `refs`, or (an attached record, such as a contract, that is not one of the person's own) in `refs` + `a`,
    where `a` lists each attached record once."""
    refs: list[str] = list(snapshot.get("refs") or [])
    place = {ref: i for i, ref in enumerate(refs)}
    packed: dict[str, Any] = {"r": refs, "v": snapshot.get("values") or {}}
    if snapshot.get("extra"):
        packed["x"] = snapshot["extra"]
    provenance = snapshot.get("provenance") or {}
    attached: list[str] = []
    for _, ref in sorted(provenance.items()):
        if isinstance(ref, str) and ref not in place:
            place[ref] = len(refs) + len(attached)
            attached.append(ref)
    if attached:
        packed["a"] = attached
    if provenance:
        packed["p"] = {k: place.get(v, v) for k, v in provenance.items()}
    return packed


def encode_snapshot(snapshot: dict[str, Any]) -> bytes:
    """zlib only: `Codec.encode_snapshot` is what the state stores with."""
    return _pack(_snapshot_packed(snapshot))


def decode_snapshot(stored: bytes | str) -> dict[str, Any]:
    """A stored snapshot in its full form: {"refs", "values", "extra", "provenance"}."""
    if not isinstance(stored, bytes):
        old: dict[str, Any] = json.loads(stored)
        return old
    data = _unpack(stored)
    refs: list[str] = data.get("r", [])
    named = refs + data.get("a", [])
    return {
        "refs": refs,
        "values": data.get("v", {}),
        "extra": data.get("x", {}),
        "provenance": {k: named[v] if isinstance(v, int) else v for k, v in data.get("p", {}).items()},
    }


# ---- transition reasons ---------------------------------------------------------------------------------


def decode_reason(stored: bytes | str | None) -> str | None:
    """A transition's reason: text as written before migration 11, or compressed."""
    if stored is None or isinstance(stored, str):
        return stored
    return _inflate(stored).decode("utf-8")


# ---- comparing ------------------------------------------------------------------------------------------


def same_snapshot(stored: bytes | str | None, fresh: bytes) -> bool:
    """Whether a stored snapshot and a freshly encoded one say the same, whatever codec wrote the stored one
    (a codec change must not look like a person described differently)."""
    return _same(stored, fresh, decode_snapshot)


def _same(stored: bytes | str | None, fresh: bytes, decode: Callable[[bytes | str], Any]) -> bool:
    # equal bytes say so at once, and so do different bytes from one dictionary (its encoding is
    # deterministic); only a row another codec wrote (text, zlib, another dictionary) is decoded
    if stored == fresh:
        return True
    if stored is None:
        return False
    if isinstance(stored, bytes) and stored[:1] != _ZLIB and fresh[:1] != _ZLIB:
        if dicts.frame_dict_id(stored) == dicts.frame_dict_id(fresh):
            return False
    return bool(decode(stored) == decode(fresh))


# ---- the codec of one state -----------------------------------------------------------------------------


class Codec:
    """Encodes one state's rows with its dictionaries: one per kind of row ("decision", "snapshot",
    "reason", and "fact <source>:<object>" per record family, whose rows differ in shape).

    Until a kind has a dictionary its rows are zlib'd and kept (with the keys that tie each to a person) as
    samples; at `MIN_SAMPLES` the dictionary is trained on them, redacted (state_dictionaries.py), and
    written to the state (where it stays, unchanged, as long as rows may name it)."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.reload()

    def reload(self) -> None:
        """Forget what is not in the state: a rolled-back transaction may have taken a new dictionary."""
        self._current: dict[str, int] = {}
        self._samples: dict[str, list[Any]] = {}
        self._owners: dict[str, list[list[str]]] = {}
        self._untrainable: set[str] = set()
        for dict_id, kind, content in self._db.execute("SELECT id, kind, content FROM dictionaries"):
            dicts.register(int(dict_id), bytes(content))
            self._current[str(kind)] = int(dict_id)

    def encode_fact(self, fact: Fact) -> bytes:
        owners = [str(fact.ref), *fact.keys, *fact.attach]
        out: bytes = self._encode(self.fact_kind(fact), _fact_packed(fact), owners)
        return out

    def encode_decision(self, decision: dict[str, Any]) -> bytes:
        out: bytes = self._encode("decision", _decision_packed(decision))
        return out

    def encode_snapshot(self, snapshot: dict[str, Any]) -> bytes:
        out: bytes = self._encode("snapshot", _snapshot_packed(snapshot))
        return out

    def encode_reason(self, reason: str) -> bytes | str:
        """Text until the reasons have a dictionary: zlib gains little on a hundred bytes."""
        return self._encode("reason", reason)

    def settle(self, kind: str, encoded: Any) -> Any:
        """`encoded` as it would be encoded now: a row zlib'd (or a reason left as text) while its kind had
        no dictionary yet is compressed with the one trained since. Callers encode a whole batch, then settle
        it, so the rows a dictionary was trained on are stored with it too (the same bytes a fresh encode
        gives: zlib held the very text)."""
        dict_id = self._current.get(kind)
        if dict_id is None:
            return encoded
        if isinstance(encoded, str):
            return dicts.compress(dict_id, encoded.encode("utf-8"))
        if encoded[:1] == _ZLIB:
            return dicts.compress(dict_id, zlib.decompress(encoded))
        return encoded

    @staticmethod
    def fact_kind(fact: Fact) -> str:
        return f"fact {fact.ref.source}:{fact.ref.object}"

    def _encode(self, kind: str, data: dict[str, Any] | str, owners: list[str] | None = None) -> Any:
        raw = data.encode("utf-8") if isinstance(data, str) else _text(data)
        dict_id = self._current.get(kind)
        if dict_id is None and kind not in self._untrainable:
            samples = self._samples.setdefault(kind, [])
            samples.append(data)
            self._owners.setdefault(kind, []).append(owners or [])
            if len(samples) >= dicts.MIN_SAMPLES:
                dict_id = self._train(kind)
        if dict_id is None:
            return data if isinstance(data, str) else zlib.compress(raw, LEVEL)
        return dicts.compress(dict_id, raw)

    def _train(self, kind: str) -> int | None:
        samples = self._samples.pop(kind)
        owners = self._owners.pop(kind)
        try:
            dict_id, content = dicts.train(kind, samples, owners if kind.startswith("fact ") else None)
        except zstandard.ZstdError as exc:
            # too little left after redaction to train on: this kind stays zlib until the next run tries again
            log.info("state.dictionary.untrained", kind=kind, samples=len(samples), error=str(exc))
            self._untrainable.add(kind)
            return None
        dicts.register(dict_id, content)
        self._db.execute(
            "INSERT INTO dictionaries (id, kind, content, samples, created_at) VALUES (?, ?, ?, ?, "
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            (dict_id, kind, content, len(samples)),
        )
        self._current[kind] = dict_id
        return dict_id
