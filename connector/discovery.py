"""What `connector discover` learns of a system: its objects (or modules), their fields, and the picklist
values with the meaning the system itself gives them (Salesforce `LeadStatus.IsConverted`,
`OpportunityStage.IsWon/IsClosed`) or connector's stock meaning (vtiger's stock statuses and stages).

Plugins fill these in (`Source.discover`); `connector/discover.py` prints them and a starting YAML block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PicklistValue:
    value: str
    label: str
    flags: Mapping[str, bool] = field(default_factory=dict)  # what the system says: {"IsWon": True, ...}
    meaning: str | None = None  # the value-map meaning to start with; None: the admin decides


@dataclass(frozen=True)
class FieldInfo:
    key: str  # what the YAML names it by: the API name, or `label:<label>` for a vtiger custom field
    name: str  # the API name
    label: str
    type: str
    writable: bool
    picklist: tuple[PicklistValue, ...] = ()
    suggest: str | None = None  # the schema field a config would usually map it to


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    label: str
    kind: str = "person"  # the fact kind a config would give it (person, opportunity, contract)
    fields: tuple[FieldInfo, ...] | None = None  # None: only listed, not described


@dataclass(frozen=True)
class Discovery:
    source: str
    system: str
    container: str  # the source's YAML key that holds the objects: "objects" (Salesforce), "modules" (vtiger)
    objects: tuple[ObjectInfo, ...]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
