"""The `erasure:` config: what `connector forget` does in the CRMs besides erasing connector's own data.

connector's own data (state, segment files, the event file) always goes. In a CRM the person's records are the
CRM's, not connector's: by default they are left as they are, and an admin chooses per target how much of
what connector wrote there goes with the person. Each level includes the one before it:

- `leave`: nothing in the CRM changes;
- `clear`: the stage label field is emptied on the person's records, and (vtiger) the Segments values connector
  manages are taken out of the segments field (values set by hand stay);
- `remove_from_campaigns`: also the campaign memberships connector made for the person's segments go
  (Salesforce: the CampaignMember rows its inserts created; vtiger cannot remove a relation over its
  webservice, see writers/vtiger, so there it is reported as left for an admin).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .model import StrictModel
from .suggest import did_you_mean

CrmAction = Literal["leave", "clear", "remove_from_campaigns"]
CRM_ACTIONS: tuple[CrmAction, ...] = ("leave", "clear", "remove_from_campaigns")


class ErasureConfig(StrictModel):
    # what every CRM target does with an erased person's records (segment files always lose their rows)
    crm_action: CrmAction = "leave"
    # per target: an action other than `crm_action` (like segments[].max_removal_share beside guard:)
    targets: dict[str, CrmAction] = Field(default_factory=dict)

    def action_for(self, target: str) -> CrmAction:
        return self.targets.get(target, self.crm_action)


def erasure_problems(raw: Any, target_names: list[str]) -> list[tuple[tuple[Any, ...], str]]:
    """(location below `erasure`, message) for every per-target override naming no configured target."""
    overrides = raw.get("targets") if isinstance(raw, dict) else None
    problems: list[tuple[tuple[Any, ...], str]] = []
    for name in overrides if isinstance(overrides, dict) else {}:
        if name not in target_names:
            hint = did_you_mean(str(name), target_names) or f" (targets: {', '.join(target_names)})"
            problems.append((("targets", name), f"no target named '{name}'{hint}"))
    return problems
