"""What `connector check` asks of vtiger for a vtiger target: each label and segments field resolves (by its
label) and is editable, the segments field is a multi-select offering each segment's value, and each campaign
exists. The same lookups `plan` and `run` make before writing (`VtigerWriter.writable_field`,
`_find_campaign`), so check and plan judge alike. No person is read and nothing is written: a campaign
`create: true` would make is reported, not made."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ...context import RunContext
from ...findings import Findings
from .config import CampaignConfig

if TYPE_CHECKING:
    from .writer import VtigerWriter


def check(writer: VtigerWriter, ctx: RunContext) -> Findings:
    found = Findings(writer.name)
    writer.client.on_call = lambda _op: ctx.count_call(writer.connection.name)
    values = sorted({writer.segment_value(s) for s in writer.segment_names})
    for key, fields in (
        ("label_field", writer.cfg.label_field),
        ("segments_field", writer.cfg.segments_field),
    ):
        for module, spec in fields.items():
            what = f"{key.replace('_', ' ')} {module}.{spec}"
            name = found.attempt(what, functools.partial(writer.writable_field, key, module))
            if name is None:
                continue
            info = writer._info(module).fields[name]
            options = f", options: {', '.join(info.picklist)}" if info.picklist else ""
            found.ok(what, f"writable ({name}, {info.type}{options})")
            if key == "segments_field":
                missing = [v for v in values if writer.options_missing(module, v)]
                if missing:
                    found.info(
                        f"segment values {module}",
                        "not an option yet: " + ", ".join(f"'{v}'" for v in missing) + " (vtiger stores it, "
                        "but saving a record in its edit form may drop it: add it to the field's values)",
                    )
    for segment, campaign in writer.cfg.campaigns.items():
        what = f"campaign {campaign.campaign}"
        found.attempt(what, functools.partial(_campaign, writer, found, segment, campaign))
    return found


def _campaign(writer: VtigerWriter, found: Findings, segment: str, campaign: CampaignConfig) -> None:
    what = f"campaign {campaign.campaign}"
    campaign_id = writer._find_campaign(campaign)
    if campaign_id is not None:
        found.ok(what, f"{campaign_id} (segment {segment})")
    elif campaign.create:
        found.ok(what, f"not there yet: created on the first add to segment {segment} (create: true)")
    else:
        found.fail(what, writer._no_campaign(campaign).partition(": ")[2] + f" (segment {segment})")
