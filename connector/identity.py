"""Identity resolution: fold facts from every source into one `Person` per real person, with a stable key.

Person facts that share a merge key (their own record key, a normalised e-mail, an external id, a CRM
cross-reference such as a converted lead's contact id) are one person (union-find). Opportunity, contract and
enrichment facts then attach to every person carrying one of their `attach` keys (as a merge key or as a
`member_of` key such as an account). Enrichment or contract rows about an e-mail nobody holds yet become a new
person (a suspect known only to marketing data).

Person keys are stable across runs: state keeps merge key -> person key, and a component reuses the key its
members had. When a new link merges two known people, the smallest existing key survives and the other is
reported as an alias.

Precedence when facts disagree on a single-valued field (documented for admins in the README):
1. a sales decision (lead status, conversion, lost deals, nurture dates) from a `sales` source beats any value
   from a `marketing` source;
2. otherwise the value that changed last wins: each value's own change stamp (`Fact.changed`), not the whole
   record's modified time, so an edit of one field (a company name) does not make the record's other values
   (an old lead status) newer than a decision taken since in another system; files have no time and count as
   oldest;
3. otherwise the source listed first in `identity.source_priority`, then the record key, decides.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .schema import PERSON_FIELDS, Fact, FactKind, Person, email_domain

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
OPPORTUNITY_ORDER = {"open": 1, "proposal": 2, "won": 3}


@dataclass
class Resolution:
    people: list[Person]
    identity: dict[str, str]  # merge key -> person key, to store
    aliases: dict[str, str] = field(default_factory=dict)  # retired person key -> surviving key
    orphans: int = 0  # attached facts that matched nobody and could not found a person


class KeySet(Protocol):
    """Person keys already given out (a set, or the state asked one key at a time)."""

    def __contains__(self, key: object, /) -> bool: ...

    def add(self, key: str, /) -> None: ...


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        parent = self.parent.setdefault(key, key)
        if parent != key:
            root = self.find(parent)
            self.parent[key] = root
            return root
        return key

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if ra < rb:
                self.parent[rb] = ra
            else:
                self.parent[ra] = rb


def merge_keys(fact: Fact, merge_on: Iterable[str]) -> list[str]:
    allowed = set(merge_on)
    out = []
    # a cross-reference to another system's record (`xref.sf_prod.Contact: 003…`) is that record's own key;
    # it always merges, like the record ids themselves
    for name, value in fact.extra.items():
        if name.startswith("xref.") and value not in (None, ""):
            source, obj = name[len("xref.") :].rsplit(".", 1)  # source names may hold dots, objects do not
            out.append(f"{source}:{obj}:{value}")
    for key in fact.keys:
        if key.startswith("email:"):
            if "email" in allowed:
                out.append(key)
        elif key.startswith("ext:"):
            if "external_id" in allowed:
                out.append(key)
        else:
            out.append(key)
    return out


def mint_key(seed: str, taken: KeySet) -> str:
    digest = hashlib.sha1(seed.encode("utf-8")).hexdigest()
    key = "P" + digest[:12]
    n = 1
    while key in taken:
        n += 1
        key = "P" + hashlib.sha1(f"{seed}#{n}".encode()).hexdigest()[:12]
    return key


def resolve(
    facts: Iterable[Fact],
    previous: Mapping[str, str],
    *,
    as_of: dt.date,
    merge_on: Iterable[str] = ("email", "external_id"),
    roles: Mapping[str, str] | None = None,
    source_priority: list[str] | None = None,
    taken: KeySet | None = None,
    claimed: set[str] | None = None,
) -> Resolution:
    """`taken`: person keys a new person must not get; default the keys in `previous` (an incremental run
    resolves a part of everyone and passes the keys of all). `claimed`: previous person keys already kept or
    retired by people resolved before these (chunked.py resolves everyone part by part); filled in here."""
    roles = roles or {}
    priority = {name: i for i, name in enumerate(source_priority or [])}
    merge_on = list(merge_on)
    uf = _UnionFind()
    # each person fact with its merge keys, worked out once: a component's keys are its members' keys
    person_facts: list[tuple[Fact, list[str]]] = []
    attached: list[Fact] = []
    for fact in facts:
        if fact.deleted:
            continue
        if fact.kind is FactKind.PERSON:
            keys = merge_keys(fact, merge_on) or [str(fact.ref)]
            for key in keys:
                uf.find(key)
            for other in keys[1:]:
                uf.union(keys[0], other)
            person_facts.append((fact, keys))
        else:
            attached.append(fact)

    # Which component does each key (merge or member_of) point to?
    components: dict[str, list[Fact]] = defaultdict(list)
    component_keys: dict[str, set[str]] = defaultdict(set)
    for fact, keys in person_facts:
        root = uf.find(keys[0])
        components[root].append(fact)
        component_keys[root].update(keys)
    key_to_roots: dict[str, set[str]] = defaultdict(set)
    for root, members in components.items():
        for fact in members:
            for key in fact.keys + fact.member_of:
                key_to_roots[key].add(root)

    # Attach the rest; rows about an unknown e-mail found a person of their own.
    attachments: dict[str, list[Fact]] = defaultdict(list)
    orphans = 0
    for fact in attached:
        roots: set[str] = set()
        for key in fact.attach:
            roots |= key_to_roots.get(key, set())
        if not roots and fact.kind in (FactKind.ENRICHMENT, FactKind.CONTRACT):
            seeds = [k for k in fact.attach if k.startswith(("email:", "ext:"))]
            if seeds:
                root = uf.find(seeds[0])
                for other in seeds[1:]:
                    uf.union(root, other)
                root = uf.find(seeds[0])
                components.setdefault(root, [])
                for key in seeds:
                    key_to_roots[key].add(root)
                roots = {root}
        if not roots:
            orphans += 1
            continue
        for root in roots:
            attachments[root].append(fact)

    # Stable keys: reuse what the members had; the smallest survives a merge.
    identity: dict[str, str] = {}
    aliases: dict[str, str] = {}
    taken = set(previous.values()) if taken is None else taken
    claimed = set() if claimed is None else claimed
    people: list[Person] = []
    for root in sorted(components):
        members = components[root]
        if members:
            keys = sorted(component_keys[root])
        else:
            found = {
                k for f in attachments.get(root, []) for k in f.attach if k.startswith(("email:", "ext:"))
            }
            keys = sorted(found | {root})
        # a key another component of this run already keeps (a split) or retired (a merge) is not reused
        known = sorted({previous[k] for k in keys if k in previous} - claimed)
        if known:
            person_key = known[0]
            for retired in known[1:]:
                aliases[retired] = person_key
        else:
            person_key = mint_key(keys[0], taken)
            taken.add(person_key)
        claimed.update(known or [person_key])
        for key in keys:
            identity[key] = person_key
        person = _fold(person_key, members, attachments.get(root, []), as_of, roles, priority)
        people.append(person)
    # a person that has no facts left keeps no identity rows; stale rows of retired keys are dropped by state
    return Resolution(people=people, identity=identity, aliases=aliases, orphans=orphans)


def _rank(fact: Fact, fname: str, roles: Mapping[str, str], priority: Mapping[str, int]) -> tuple[Any, ...]:
    spec = PERSON_FIELDS.get(fname)
    sales_first = (
        1 if (spec is not None and spec.sales_decision and roles.get(fact.ref.source) == "sales") else 0
    )
    return (
        sales_first,
        fact.changed(fname) or EPOCH,
        -priority.get(fact.ref.source, len(priority)),
        str(fact.ref),
    )


def _fold(
    key: str,
    members: list[Fact],
    attached: list[Fact],
    as_of: dt.date,
    roles: Mapping[str, str],
    priority: Mapping[str, int],
) -> Person:
    person = Person(key=key, refs=sorted({f.ref for f in members}))
    candidates: dict[str, list[tuple[Any, Fact]]] = defaultdict(list)
    enrich = [f for f in attached if f.kind is FactKind.ENRICHMENT]
    for fact in members + enrich:
        for fname, value in fact.values.items():
            if fname in PERSON_FIELDS and value is not None:
                candidates[fname].append((value, fact))
        for name, value in fact.extra.items():
            person.extra.setdefault(name, value)
    for fact in attached:
        if fact.kind is FactKind.ENRICHMENT:
            continue
        # contracts and opportunities may name the person too (a contract file row with a name)
        for fname in ("email", "first_name", "last_name", "company"):
            if fname in fact.values and fact.values[fname] is not None:
                candidates[fname].append((fact.values[fname], fact))
    if not members:
        # a person founded by enrichment or contract rows: the e-mail they joined on is theirs
        for fact in attached:
            for k in fact.attach:
                if k.startswith("email:"):
                    candidates["email"].append((k[len("email:") :], fact))

    for fname, values in candidates.items():
        spec = PERSON_FIELDS[fname]
        chosen, source = _combine(spec.combine, values, as_of, fname, roles, priority)
        if chosen is not None:
            person.values[fname] = chosen
            if source is not None:
                person.provenance[fname] = str(source.ref)

    _fold_opportunities(person, [f for f in attached if f.kind is FactKind.OPPORTUNITY])
    _fold_contracts(person, [f for f in attached if f.kind is FactKind.CONTRACT], as_of)
    if "domain" not in person.values:
        domain = email_domain(person.values.get("email"))
        if domain:
            person.values["domain"] = domain
    person.values["sources"] = sorted({r.source for r in person.refs} | {f.ref.source for f in attached})
    return person


def _combine(
    how: str,
    values: list[tuple[Any, Fact]],
    as_of: dt.date,
    fname: str,
    roles: Mapping[str, str],
    priority: Mapping[str, int],
) -> tuple[Any, Fact | None]:
    if how == "any":
        hits = [(v, f) for v, f in values if v is True]
        if hits:
            return True, hits[0][1]
        return False, values[0][1]
    if how == "sum":
        return sum(v for v, _ in values if isinstance(v, int | float)), None
    if how in ("max", "min"):
        try:
            best = max(values, key=lambda p: p[0]) if how == "max" else min(values, key=lambda p: p[0])
        except TypeError:
            best = values[0]
        return best
    if how == "min_future":
        return _min_future(values, as_of)
    if len(values) == 1:  # most fields of most people have one candidate: nothing to rank
        return values[0]
    best = max(values, key=lambda p: _rank(p[1], fname, roles, priority))
    return best


def _min_future(values: list[tuple[Any, Any]], as_of: dt.date) -> tuple[Any, Any]:
    """The nearest date on or after as-of; when all lie in the past, the latest of them."""
    dates = [(v, f) for v, f in values if isinstance(v, dt.date)]
    if not dates:
        return None, None
    future = [p for p in dates if p[0] >= as_of]
    if future:
        return min(future, key=lambda p: p[0])
    return max(dates, key=lambda p: p[0])


def _refs(facts: Iterable[Fact]) -> str:
    """The records a value was computed from, in a stable order (a count or a sum has more than one)."""
    return ", ".join(sorted(str(f.ref) for f in facts))


def _by_close_date(o: Fact) -> tuple[dt.date, str]:
    return (o.values.get("opportunity_close_date") or dt.date.min, str(o.ref))


def _fold_opportunities(person: Person, opps: list[Fact]) -> None:
    # each value names the opportunity (or opportunities) it came from: `explain` shows it, and one opportunity's
    # stage credited to another (a won deal shown as the open one beside it) would mislead whoever reads it
    if not opps:
        return
    v = person.values
    src = person.provenance
    v["opportunity_count"] = len(opps)
    src["opportunity_count"] = _refs(opps)
    open_ = [
        o
        for o in opps
        if not o.values.get("opportunity_closed")
        and o.values.get("opportunity_stage") != "won"
        and o.values.get("opportunity_stage") != "lost"
    ]
    won = [o for o in opps if o.values.get("opportunity_won") or o.values.get("opportunity_stage") == "won"]
    closed = [o for o in opps if o not in open_]
    v["opportunity_open"] = bool(open_)
    src["opportunity_open"] = _refs(open_) if open_ else _refs(opps)
    v["opportunity_won"] = bool(won)
    src["opportunity_won"] = _refs(won) if won else _refs(opps)
    stages = [(o.values.get("opportunity_stage") or "open", o) for o in open_ + won]
    if stages:
        # the furthest stage wins; among equals, the newest opportunity is named
        stage, supplier = max(stages, key=lambda p: (OPPORTUNITY_ORDER.get(p[0], 0), _by_close_date(p[1])))
        v["opportunity_stage"] = stage
        src["opportunity_stage"] = str(supplier.ref)
    elif closed:
        v["opportunity_stage"] = "lost"
        src["opportunity_stage"] = str(max(closed, key=_by_close_date).ref)
    newest = max(opps, key=_by_close_date)
    if newest.values.get("opportunity_stage_raw"):
        v["opportunity_stage_raw"] = newest.values["opportunity_stage_raw"]
        src["opportunity_stage_raw"] = str(newest.ref)
    if closed and not open_:
        last_closed = max(closed, key=_by_close_date)
        v["opportunity_lost"] = last_closed not in won
        src["opportunity_lost"] = str(last_closed.ref)
    else:
        v["opportunity_lost"] = False
        src["opportunity_lost"] = _refs(open_) if open_ else _refs(opps)
    amount = sum(float(o.values.get("opportunity_amount") or 0) for o in open_ + won)
    v["opportunity_amount"] = amount
    if open_ + won:
        src["opportunity_amount"] = _refs(open_ + won)
    v["opportunity_open_amount"] = sum(float(o.values.get("opportunity_amount") or 0) for o in open_)
    if open_:
        src["opportunity_open_amount"] = _refs(open_)
    dated = [o for o in opps if o.values.get("opportunity_close_date")]
    if dated:
        last = max(dated, key=_by_close_date)
        v["opportunity_close_date"] = last.values["opportunity_close_date"]
        src["opportunity_close_date"] = str(last.ref)
    won_dated = [o for o in won if o.values.get("opportunity_close_date")]
    if won_dated:
        last_won = max(won_dated, key=_by_close_date)
        v["won_date"] = last_won.values["opportunity_close_date"]
        src["won_date"] = str(last_won.ref)


def _fold_contracts(person: Person, contracts: list[Fact], as_of: dt.date) -> None:
    own = [c for c in contracts if not c.values.get("competitor")]
    theirs = [c for c in contracts if c.values.get("competitor")]
    if own:
        end, src = _min_future([(c.values.get("contract_end"), c) for c in own], as_of)
        if end is not None:
            person.values["contract_end"] = end
            person.provenance["contract_end"] = str(src.ref)
        started = [c for c in own if c.values.get("contract_start")]
        if started:
            latest = max(started, key=lambda c: (c.values["contract_start"], str(c.ref)))
            person.values["contract_start"] = latest.values["contract_start"]
            person.provenance["contract_start"] = str(latest.ref)
    if theirs:
        end, src = _min_future([(c.values.get("contract_end"), c) for c in theirs], as_of)
        if end is not None:
            person.values["competitor_contract_end"] = end
            person.values["competitor"] = src.values.get("competitor")
            person.provenance["competitor"] = str(src.ref)
            person.provenance["competitor_contract_end"] = str(src.ref)
