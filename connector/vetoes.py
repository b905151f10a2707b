"""Who no segment may hold, whatever the decided stage: an opt-out or a sales suppression seen in any source.

Resolution picks one value per field (the newest change, a sales decision over a marketing signal), which is
right for deciding a stage but not for marketing consent: one record saying "do not mail" must keep the person
out of every segment even when another record of theirs is newer and says otherwise. So next to the resolved
person, each segment also checks the person's own records (leads, contacts, person rows of files) one by one:

- a record that opted out (`opted_out` is already "any record" in the schema) or refused consent
  (`consent: false`): out of every segment, `include_suppressed` or not (an opt-out in an enrichment row
  counts through `opted_out` itself, which any record or row sets);
- a person record from a sales source whose lead status means qualified out: out of every segment unless the
  segment asks for suppressed people (`include_suppressed: true`). Sales re-admits such a person by changing
  that record's status, not by a newer record elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .schema import Fact, FactKind, Person


@dataclass(frozen=True)
class Veto:
    reason: str
    sales: bool  # a sales suppression (lifted by include_suppressed); else consent (never lifted)


def segment_vetoes(
    facts: Iterable[Fact], people: Iterable[Person], roles: Mapping[str, str]
) -> dict[str, Veto]:
    """Person key -> the strongest reason one of their own records gives to keep them out of segments."""
    by_ref: dict[str, Veto] = {}
    for fact in facts:
        if fact.deleted or fact.kind is not FactKind.PERSON:
            continue
        if fact.values.get("consent") is False:
            by_ref[str(fact.ref)] = Veto(f"refused consent in {fact.ref}", sales=False)
        elif fact.values.get("opted_out") is True:
            by_ref[str(fact.ref)] = Veto(f"opted out in {fact.ref}", sales=False)
        elif roles.get(fact.ref.source) == "sales" and fact.values.get("lead_status") == "qualified_out":
            by_ref[str(fact.ref)] = Veto(f"qualified out in {fact.ref}", sales=True)
    out: dict[str, Veto] = {}
    for person in people:
        found = [by_ref[str(r)] for r in person.refs if str(r) in by_ref]
        if found:
            # a consent veto outranks a sales one: include_suppressed must not let it through
            out[person.key] = min(found, key=lambda v: (v.sales, v.reason))
    return out
