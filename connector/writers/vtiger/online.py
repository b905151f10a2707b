"""What `connector check` asks of vtiger for a vtiger target: each label and segments field resolves (by its
label) and is editable, the segments field is a multi-select, and each campaign exists (one query on
Campaigns by name). No person is read and nothing is written: a campaign `create: true` would make is
reported, not made."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ...context import RunContext
from ...crm.vtiger import vtql
from ...crm.vtiger.client import VtigerApiError, read_error
from ...findings import Findings
from .config import CampaignConfig

if TYPE_CHECKING:
    from .writer import VtigerWriter

MULTI_SELECT = "multipicklist"


def check(writer: VtigerWriter, ctx: RunContext) -> Findings:
    found = Findings(writer.name)
    writer.client.on_call = lambda _op: ctx.count_call(writer.connection.name)
    for key, fields in (
        ("label field", writer.cfg.label_field),
        ("segments field", writer.cfg.segments_field),
    ):
        for module, spec in fields.items():
            what = f"{key} {module}.{spec}"
            resolve = writer.label_field if key == "label field" else writer.segment_field
            name = found.attempt(what, functools.partial(resolve, module))
            if name is None:
                continue
            info = writer._info(module).fields[name]
            if not info.editable:
                found.fail(what, f"{name} is not editable by the API user")
            elif key == "segments field" and info.type != MULTI_SELECT:
                found.fail(what, f"{name} is a {info.type} field: it must be a Multi-Select Combo Box")
            else:
                found.ok(what, f"writable ({name}, {info.type})")
    for segment, campaign in writer.cfg.campaigns.items():
        what = f"campaign {campaign.campaign}"
        found.attempt(what, functools.partial(_campaign, writer, found, segment, campaign))
    return found


def _campaign(writer: VtigerWriter, found: Findings, segment: str, campaign: CampaignConfig) -> None:
    what = f"campaign {campaign.campaign}"
    query = vtql.select(
        "Campaigns", ["id", "campaignname"], where=[vtql.Cond("campaignname", "=", campaign.campaign)]
    )
    try:
        rows = [r for r in writer.client.query(query) if r.get("campaignname") == campaign.campaign]
    except VtigerApiError as exc:
        raise read_error(exc, f"targets.{writer.name}.campaigns: looking up '{campaign.campaign}'") from None
    if rows:
        found.ok(what, f"{rows[0].get('id')} (segment {segment})")
    elif campaign.create:
        found.ok(what, f"not there yet: created on the first add to segment {segment} (create: true)")
    else:
        found.fail(
            what, f"no such campaign for segment {segment} (create it, or set create: true and closingdate)"
        )
