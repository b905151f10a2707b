"""What `connector forget` does in a Salesforce org (the target's `erase`), as far as `erasure:` says.

`clear`: the label field of the person's Leads and Contacts is set to null (a JSON null in an sObject
Collections PATCH; Salesforce stores an empty string as null too). `remove_from_campaigns`: also the
CampaignMember rows connector's own inserts created for the person's segments are deleted (their Ids are in
the state), the same rows a segment removal would delete: a member row someone else made stays, as it holds
their status and response history (a `strict` campaign drops it at its next run anyway, as the person is no
longer in the segment). Replaying either changes nothing: a row already gone counts as deleted.

A record Salesforce refuses comes back in `left` with its error code; a failure of the whole call (the org
down, the session refused) is raised and the caller keeps the whole request for the next run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from ...context import RunContext
from ...crm.salesforce.client import COMPOSITE_MAX
from ...erasure_config import CrmAction
from ...schema import RecordRef
from ..base import ErasureRequest, ErasureResult

if TYPE_CHECKING:
    from .writer import SalesforceWriter

log = structlog.get_logger(__name__)


def erase(
    writer: SalesforceWriter, request: ErasureRequest, action: CrmAction, ctx: RunContext
) -> ErasureResult:
    from .writer import AUTO_ASSIGN_OFF, OWN_ROW_GONE  # the writer imports this module

    result = ErasureResult()
    if action == "leave":
        return result
    writer._bind(ctx)
    start = writer.client.calls
    left_refs: list[RecordRef] = []
    left_members: dict[str, tuple[str, ...]] = {}
    codes: list[str] = []

    if action == "remove_from_campaigns":
        owner = {row_id: seg for seg, ids in request.memberships.items() for row_id in ids}
        outcomes = writer._delete_rows(list(owner), gone=OWN_ROW_GONE)
        for row_id, outcome in outcomes.items():
            if outcome is None:
                result.done["campaign_members_deleted"] = result.done.get("campaign_members_deleted", 0) + 1
            else:
                left_members[owner[row_id]] = (*left_members.get(owner[row_id], ()), row_id)
                codes.append(outcome[0] or "REFUSED")
        others = sorted(
            seg for seg, ids in request.memberships.items() if not ids and seg in writer.cfg.campaigns
        )
        if others:
            result.notes.append(
                f"{writer.name}: member rows connector did not create were left in the campaigns of "
                f"{', '.join(others)} (hand work, or there before connector added the person)"
            )

    records = [r for r in request.refs if r.source == writer.source and r.object in writer.cfg.label_field]
    by_id = {r.id: r for r in records}
    ids = sorted(by_id, key=lambda i: by_id[i].object)  # one chunk per object in each call
    for start_at in range(0, len(ids), COMPOSITE_MAX):
        chunk = ids[start_at : start_at + COMPOSITE_MAX]

        def send(part: list[str]) -> list[dict[str, Any]]:
            rows = [
                {
                    "attributes": {"type": by_id[i].object},
                    "id": i,
                    writer.cfg.label_field[by_id[i].object]: None,
                }
                for i in part
            ]
            return writer.client.composite("PATCH", rows, headers=AUTO_ASSIGN_OFF, what="erase labels")

        for rid, outcome in writer._collection(chunk, send, "erase labels").items():
            if outcome is None:
                result.done["labels_cleared"] = result.done.get("labels_cleared", 0) + 1
            elif outcome[0] in OWN_ROW_GONE:  # the record itself is gone: nothing of connector's left on it
                result.done["records_gone"] = result.done.get("records_gone", 0) + 1
            else:
                left_refs.append(by_id[rid])
                codes.append(outcome[0] or "REFUSED")

    if left_refs or left_members:
        result.left = ErasureRequest(refs=tuple(left_refs), memberships=left_members)
        result.error = ", ".join(sorted(set(codes)))
    result.calls = writer.client.calls - start
    log.info(
        "salesforce.erasure.done", target=writer.name, action=action, **result.done, left=bool(result.left)
    )
    return result
