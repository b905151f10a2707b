"""What the state keeps beside each fact so a run can work from what changed: a content hash and link keys.

The hash (blake2b, 16 bytes) covers a fact's content without its times, exactly what `reading.same_content`
compares: a record read again with the same content is recognised from the hash alone, without decoding the
stored JSON. The link keys are every key through which the fact can touch a person: its identity keys, the
keys it attaches by, the groups it is a member of, its cross-references and its own record key. Two facts that
share no link key, directly or through others, can never end up in one person or attached to one, so the
people a changed record can affect are found by following link keys (incremental.py), not by resolving
everyone.
"""

from __future__ import annotations

import hashlib
import json

from .identity import merge_keys
from .schema import Fact, encode_value

# one encoder, built once: json.dumps would build it again for every fact
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


def content_hash(fact: Fact) -> bytes:
    # the form of `Fact.to_json` without its times, built directly: every fact read is hashed, and to_json
    # would format the times only for them to be dropped (the text, and so the hash, is the same)
    content = {
        "ref": str(fact.ref),
        "kind": fact.kind.value,
        "keys": fact.keys,
        "attach": fact.attach,
        "member_of": fact.member_of,
        "values": {k: encode_value(v) for k, v in fact.values.items()},
        "extra": {k: encode_value(v) for k, v in fact.extra.items()},
    }
    return hashlib.blake2b(_CANONICAL(content).encode("utf-8"), digest_size=16).digest()


def link_keys(fact: Fact) -> set[str]:
    # merge_keys with no merge_on still gives the cross-references and record keys; e-mails and external ids
    # come in through `keys` whatever merge_on says (a config change starts from a full recompute anyway)
    return {
        str(fact.ref),
        *fact.keys,
        *fact.attach,
        *fact.member_of,
        *merge_keys(fact, ()),
    }
