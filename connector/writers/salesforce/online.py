"""What `connector check` asks of the org for a salesforce target: each label field exists and the API user
may update it (describe, the describe cache where fresh), and each campaign exists with the configured member
status (the Campaign and its CampaignMemberStatus rows). No person is read and nothing is written: a campaign
`create: true` would make is reported, not made."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ...context import RunContext
from ...findings import Findings
from .config import CampaignTarget

if TYPE_CHECKING:
    from .writer import SalesforceWriter


def check(writer: SalesforceWriter, ctx: RunContext) -> Findings:
    found = Findings(writer.name)
    writer.connection.bind(ctx, counted_as=writer.name, budget_share=None)
    client = writer.client
    for obj, name in writer.cfg.label_field.items():
        what = f"label field {obj}.{name}"
        fields = found.attempt(what, functools.partial(client.field_names, obj))
        if fields is None:
            continue
        field = fields.get(name)
        if field is None:
            found.fail(what, f"no such field on {obj}, or the API user may not see it")
        elif not field.get("updateable"):
            found.fail(what, "the API user may not update it")
        else:
            found.ok(what, f"writable ({field.get('type')})")
    for segment, target in writer.cfg.campaigns.items():
        what = f"campaign {target.campaign}"
        found.attempt(what, functools.partial(_campaign, writer, found, segment, target))
    return found


def _campaign(writer: SalesforceWriter, found: Findings, segment: str, target: CampaignTarget) -> None:
    """The same lookups a run makes (the writer's own), as findings: a ConfigError they raise becomes a fail row
    through `Findings.attempt`."""
    what = f"campaign {target.campaign}"
    campaign_id = writer._find_campaign(segment, target)
    if campaign_id is None:
        found.ok(what, f"not there yet: created on the first add to segment {segment} (create: true)")
        return
    status = writer._member_status(campaign_id, target)
    found.ok(what, f"{campaign_id}, member status '{status}' exists (segment {segment})")
