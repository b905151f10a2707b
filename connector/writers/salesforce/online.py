"""What `connector check` asks of the org for a salesforce target: each label field exists and the API user
may update it (describe, the describe cache where fresh), and each campaign exists with the configured member
status (the Campaign and its CampaignMemberStatus rows). No person is read and nothing is written: a campaign
`create: true` would make is reported, not made."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ...context import RunContext
from ...crm.salesforce import soql
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
    what = f"campaign {target.campaign}"
    if soql.looks_like_id(target.campaign, "701"):
        condition = f"Id = {soql.literal(target.campaign)}"
    else:
        condition = f"Name = {soql.literal(target.campaign)}"
    rows = writer.client.query_all(f"SELECT Id, Name FROM Campaign WHERE {condition}")
    if len(rows) > 1:
        found.fail(what, f"{len(rows)} campaigns have this name: name it by its Id")
        return
    if not rows:
        if target.create:
            found.ok(what, f"not there yet: created on the first add to segment {segment} (create: true)")
        else:
            found.fail(what, f"no such campaign for segment {segment} (create it, or set create: true)")
        return
    campaign_id = str(rows[0]["Id"])
    statuses = [
        str(r.get("Label"))
        for r in writer.client.query_all(
            f"SELECT Label FROM CampaignMemberStatus WHERE CampaignId = {soql.literal(campaign_id)}"
        )
    ]
    if any(s.casefold() == target.member_status.casefold() for s in statuses):
        found.ok(what, f"{campaign_id}, member status '{target.member_status}' exists (segment {segment})")
    else:
        found.fail(
            what,
            f"member status '{target.member_status}' is not a status of this campaign "
            f"(it has: {', '.join(statuses) or 'none'})",
        )
