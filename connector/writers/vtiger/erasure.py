"""What `connector forget` does in vtiger (the target's `erase`), as far as `erasure:` says.

`clear`: one `revise` per record of the person: the label field emptied, and every value connector manages (one
per segment of this target) taken out of the segments field; values set by hand stay. A record gone from
vtiger has nothing left to clear. `remove_from_campaigns`: stock vtiger 8.2's webservice has no operation that
removes a relation (an unknown operation answers HTTP 500 with an empty body: /work/shared/vtiger/), so the
campaign relations connector made stay; the result names them (campaign and record id) for an admin to
remove from the campaign's related list, and the segments field, which is the membership vtiger users
filter on, is cleared as with `clear`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from ...context import RunContext
from ...erasure_config import CrmAction
from ...errors import RecordError
from ...schema import RecordRef
from ..base import ErasureRequest, ErasureResult

if TYPE_CHECKING:
    from .writer import VtigerWriter

log = structlog.get_logger(__name__)


def erase(writer: VtigerWriter, request: ErasureRequest, action: CrmAction, ctx: RunContext) -> ErasureResult:
    from .writer import join_multi  # the writer imports this module

    result = ErasureResult()
    if action == "leave":
        return result
    writer._begin(ctx)
    before = writer.client.calls.total()
    cfg = writer.cfg
    records = [
        r
        for r in dict.fromkeys(request.refs)
        if r.source == writer.source and (r.object in cfg.label_field or r.object in cfg.segments_field)
    ]
    managed = {writer.segment_value(s) for s in (*writer.segment_names, *request.memberships)}
    missing = writer._load_values([r for r in records if r.object in cfg.segments_field])

    def one(ref: RecordRef) -> RecordError | None:
        element: dict[str, Any] = {"id": ref.id}
        if ref.object in cfg.label_field:
            element[writer.label_field(ref.object)] = ""  # an empty string clears a vtiger field
        if ref.object in cfg.segments_field:
            current = writer._values.get(ref, [])
            kept = [v for v in current if v not in managed]
            if kept != current:
                element[writer.segment_field(ref.object)] = join_multi(kept)
        try:
            writer.client.revise(element)
        except RecordError as exc:
            return exc
        return None

    todo = [r for r in records if r not in missing]
    errors, unreachable = writer._parallel(one, todo, lambda ref: ref)
    left: list[RecordRef] = []
    codes: set[str] = set()
    for ref, error in zip(todo, errors, strict=True):
        if error is None:
            result.done["records_cleared"] = result.done.get("records_cleared", 0) + 1
        else:
            left.append(ref)
            codes.add(error.code or "REFUSED")
    if missing:
        result.done["records_gone"] = len(missing)

    if action == "remove_from_campaigns":
        related = [r for r in records if r.object in cfg.segments_field and r not in missing]
        for segment in sorted(request.memberships):
            campaign = cfg.campaigns.get(segment)
            if campaign is None:
                continue
            for ref in related:
                result.manual.append(
                    f"{writer.name}: remove {ref.id} from the related {ref.object} of campaign "
                    f"'{campaign.campaign}' by hand (vtiger's webservice cannot remove a relation)"
                )
    if left:
        result.left = ErasureRequest(refs=tuple(left), memberships=dict(request.memberships))
        result.error = "unreachable" if unreachable else ", ".join(sorted(codes))
    result.calls = writer.client.calls.total() - before
    log.info("vtiger.erasure.done", target=writer.name, action=action, **result.done, left=len(left))
    return result
