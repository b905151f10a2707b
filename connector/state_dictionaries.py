"""The zstd dictionaries the state's rows are compressed with, and how one is made without personal data.

A state row (a fact payload, a decision, a snapshot, a transition reason) is a few hundred bytes: too little
for a compressor to learn the field names, source names, stage and rule names and value vocabularies that
every row repeats. A dictionary holds them once; each row then costs little more than what is its own.

A dictionary is trained on the first rows of its kind a state sees, but only after they are **redacted**:
issue 12's erasure promises that nothing of a forgotten person stays in the state, and a dictionary is never
changed once written. So a sample keeps its punctuation, and only the JSON keys and values that at least
`shared_threshold` people share (field names, a stage, a rule's reason, a competitor, a date, an e-mail
domain: nobody's own); any other value is cut to the prefix up to its last ':' (a record ref's source and
object, a key's kind) and the suffix from its '@' (an e-mail's domain), each kept only when shared as well.
An e-mail, a name, a record id or a person key belongs to one person and never gets in.

Dictionaries are named by a 32-bit id derived from their samples and written into every zstd frame, so a
row names its own dictionary and one process can read rows of several states (their ids do not collide).
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import zstandard

from .errors import StateError

# rows of one kind seen (zlib'd meanwhile) before its dictionary is trained; a state smaller than this keeps zlib
MIN_SAMPLES = 1000
# the dictionary's size cap: redacted samples are repetitive, training keeps what recurs (1 to 3 KB here)
DICT_SIZE = 8192
# zstd level 6: on these rows 10 to 20 % smaller than level 3 (its default) at twice its CPU, still a third of
# zlib's; 9 gains nothing more here, 19 costs ten times as much and is no smaller
LEVEL = 6
# zstd reserves ids below 32768 and from 2**31 for registered dictionaries
_ID_LOW, _ID_SPAN = 32768, 2**31 - 32768

_known: dict[int, zstandard.ZstdCompressionDict] = {}
_known_lock = threading.Lock()
_local = threading.local()  # zstd (de)compressor objects must not be shared between threads


def register(dict_id: int, content: bytes, path: str = "") -> None:
    """Make a dictionary known to this process (every state opened registers its own)."""
    with _known_lock:
        known = _known.get(dict_id)
        if known is not None and known.as_bytes() != content:
            raise StateError(
                f"state file {path} has a dictionary {dict_id} another open state holds with other content: "
                "open one state at a time",
                path=path,
            )
        if known is None:
            _known[dict_id] = zstandard.ZstdCompressionDict(content)


def is_known(dict_id: int) -> bool:
    return dict_id in _known


def _cached(name: str, dict_id: int) -> Any:
    cache: dict[tuple[str, int], Any] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    if (name, dict_id) not in cache:
        try:
            data = _known[dict_id]
        except KeyError:
            # only a row read past a StateStore (one that was never opened in this process) gets here
            raise StateError(
                f"a state row is compressed with dictionary {dict_id}, which no state opened here holds: "
                "open the state with connector first",
                path="",
            ) from None
        fmt = (
            zstandard.FORMAT_ZSTD1_MAGICLESS
        )  # the 4-byte magic would be 4 bytes per row; nothing else reads it
        if name == "c":
            params = zstandard.ZstdCompressionParameters.from_level(
                LEVEL, format=fmt, write_checksum=0, write_content_size=1, write_dict_id=1
            )
            cache[name, dict_id] = zstandard.ZstdCompressor(dict_data=data, compression_params=params)
        else:
            cache[name, dict_id] = zstandard.ZstdDecompressor(dict_data=data, format=fmt)
    return cache[name, dict_id]


def compress(dict_id: int, data: bytes) -> bytes:
    out: bytes = _cached("c", dict_id).compress(data)
    return out


def decompress(frame: bytes) -> bytes:
    out: bytes = _cached("d", frame_dict_id(frame)).decompress(frame)
    return out


def frame_dict_id(frame: bytes) -> int:
    """The dictionary id in a magicless zstd frame's header (RFC 8878 3.1.1.1)."""
    descriptor = frame[0]
    size = (0, 1, 2, 4)[descriptor & 3]
    start = 1 if descriptor & 0x20 else 2  # no window byte in a single-segment frame
    return int.from_bytes(frame[start : start + size], "little")


# ---- training ---------------------------------------------------------------------------------------------


def train(kind: str, samples: list[Any], owners: list[list[str]] | None = None) -> tuple[int, bytes]:
    """A dictionary for rows of `kind` from `samples` (JSON-ready objects, or texts), redacted first;
    `owners`: per sample, keys that tie it to a person (see `redact`)."""
    redacted = redact(samples, owners)
    digest = hashlib.blake2b(kind.encode() + b"\0" + b"\0".join(redacted), digest_size=4).digest()
    dict_id = _ID_LOW + int.from_bytes(digest, "big") % _ID_SPAN
    while dict_id in _known:  # another state's dictionary has it (2**-31 a pair): take the next free one
        dict_id = _ID_LOW + (dict_id - _ID_LOW + 1) % _ID_SPAN
    # k and d fixed: the cover search over them is slow and not deterministic across thread counts
    buffers: list[bytes | bytearray | memoryview] = list(redacted)
    trained = zstandard.train_dictionary(DICT_SIZE, buffers, k=64, d=8, dict_id=dict_id, threads=1)
    return dict_id, trained.as_bytes()


def shared_threshold(samples: int) -> int:
    """How many rows must share a value before it may go in a dictionary: 2 % of them, at least 20."""
    return max(20, samples // 50)


def redact(samples: list[Any], owners: list[list[str]] | None = None) -> list[bytes]:
    """The samples as the codec packs them, each value that fewer than `shared_threshold` people share cut out.

    A person is one sample, unless `owners` says otherwise: samples that share an owner key (a fact's ref,
    identity and attach keys) are one person's, so the e-mail of someone with 30 records counts once."""
    group = _people(owners) if owners is not None else list(range(len(samples)))
    k = shared_threshold(len(set(group)))
    holders: dict[Any, set[int]] = {}
    for person, sample in zip(group, samples, strict=True):
        for key in _keys(sample):
            holders.setdefault(("k", key), set()).add(person)
        for leaf in _leaves(sample):
            holders.setdefault(_counted(leaf), set()).add(person)
            if isinstance(leaf, str):
                for part in _prefixes(leaf):
                    holders.setdefault(("pre", part), set()).add(person)
    shared = {v for v, people in holders.items() if len(people) >= k}
    out = []
    for sample in samples:
        cleaned = _clean(sample, shared)
        text = (
            cleaned
            if isinstance(cleaned, str)
            else json.dumps(cleaned, sort_keys=True, separators=(",", ":"))
        )
        out.append(text.encode("utf-8"))
    return out


def _people(owners: list[list[str]]) -> list[int]:
    """Per sample, the smallest sample index it is tied to through shared owner keys (a union-find)."""
    parent = list(range(len(owners)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, keys in enumerate(owners):
        for key in keys:
            j = first.setdefault(key, i)
            a, b = root(i), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return [root(i) for i in range(len(owners))]


def _counted(value: Any) -> Any:
    return ("v", type(value).__name__, value)


def _keys(data: Any) -> list[str]:
    if isinstance(data, dict):
        return [*data, *(k for v in data.values() for k in _keys(v))]
    if isinstance(data, list):
        return [k for v in data for k in _keys(v)]
    return []


def _leaves(data: Any) -> list[Any]:
    if isinstance(data, dict):
        return [leaf for v in data.values() for leaf in _leaves(v)]
    if isinstance(data, list):
        return [leaf for v in data for leaf in _leaves(v)]
    return [data] if isinstance(data, str | int | float) and not isinstance(data, bool) else []


def _prefixes(value: str) -> list[str]:
    """The parts of a value that may be kept when the whole is not: up to its last ':', from its '@'."""
    out = []
    if ":" in value:
        out.append(value[: value.rindex(":") + 1])
    if "@" in value:
        out.append(value[value.index("@") :])
    return out


def _clean(data: Any, shared: set[Any]) -> Any:
    if isinstance(data, dict):
        # keys are field names, nearly always; one that few share (a source keyed by e-mail) goes too
        kept = {k: v for k, v in data.items() if ("k", k) in shared}
        return {k: _clean(v, shared) for k, v in kept.items()}
    if isinstance(data, list):
        return [_clean(v, shared) for v in data]
    if isinstance(data, bool) or data is None:
        return data
    if _counted(data) in shared:
        return data
    if isinstance(data, str):
        head = data[: data.rindex(":") + 1] if ":" in data else ""
        tail = data[data.index("@") :] if "@" in data else ""
        return (head if ("pre", head) in shared else "") + (tail if ("pre", tail) in shared else "")
    return 0
