"""The writer plugin contract.

The run loop computes what must change (labels that differ from the last label written, segment members to add
and remove: the records of connector/plan.py) and hands only that to a writer. A writer reports which items
failed; every other item counts as written and is recorded in state. Replaying a batch must change nothing in
the target.

Every optional capability is declared here with its default, so the run loop and the CLI use it on any writer
without probing: `publishes_snapshots`, `check` (offline, for `validate`) and `check_online` (for
`connector check`: the label fields writable, the campaigns there; no record read, nothing written) and
`preflight` (read-only checks of the planned label changes, run by `plan` and `run` alike before any write),
`erase` (what `connector forget` does in the target: see `ErasureRequest`), follow-up tasks (`takes_tasks`,
`task_record`, `find_tasks`, `create_tasks`; connector/tasks/), `begin_writes` (the target's whole plan, handed
over before its writes) and `estimate_plan_calls`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..context import PluginEnv, RunContext
from ..erasure_config import CrmAction
from ..errors import ConfigError, RecordError
from ..findings import Findings, offline_findings
from ..plan import LabelChange, SegmentChange
from ..plugin_config import WriterConfigBase
from ..schema import RecordRef
from ..tasks.model import NewTask, TaskResult

if TYPE_CHECKING:
    from ..tasks.config import TaskConfig

__all__ = ["ErasureRequest", "ErasureResult", "WriteResult", "Writer", "WriterConfigBase", "expect_config"]

M = TypeVar("M", bound=WriterConfigBase)


@dataclass
class WriteResult:
    """Items that failed, keyed by `str(ref)` for labels and by person key for segment members.

    `unreachable` says the target system stopped answering part way through the call (the reason, as an
    `UnreachableError` would give it). `failed` then holds every item that was not written, each with a
    RecordError of code "UNREACHABLE", and everything else was written: the run loop records both, then
    stops this target as unreachable (exit 4). Returning this instead of raising keeps the writes that did
    land. A writer may still raise `UnreachableError` when it wrote nothing in the call.
    """

    failed: dict[str, RecordError] = field(default_factory=dict)
    calls: int = 0
    notes: list[str] = field(default_factory=list)
    unreachable: str | None = None
    # person key -> the target records this call created for the person's membership (CampaignMember Ids);
    # the run loop keeps them in state, replacing what it held for that membership
    created: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ErasureRequest:
    """What one target must erase, captured from the state before the people's rows there are deleted.

    `refs` and `memberships` say where connector wrote (record and campaign-member ids): they are what a CRM
    action that failed keeps in the state to be tried again (`to_pending`). `person_keys` and `emails` are
    there only while the erasure runs (files find rows by them) and are never kept.
    """

    refs: tuple[RecordRef, ...] = ()  # the people's records, of every source (a writer takes its own)
    # segment -> the target records connector created for the membership (Salesforce CampaignMember Ids);
    # every segment of this target the people were in, with or without such records
    memberships: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    person_keys: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()

    def to_pending(self) -> dict[str, Any]:
        return {
            "refs": sorted(str(r) for r in self.refs),
            "memberships": {s: list(ids) for s, ids in sorted(self.memberships.items())},
        }

    @classmethod
    def from_pending(cls, work: Mapping[str, Any]) -> ErasureRequest:
        return cls(
            refs=tuple(RecordRef.parse(r) for r in work.get("refs") or []),
            memberships={str(s): tuple(ids) for s, ids in (work.get("memberships") or {}).items()},
        )

    def __bool__(self) -> bool:
        return bool(self.refs or self.memberships or self.person_keys or self.emails)


@dataclass
class ErasureResult:
    """What `Writer.erase` did: counts by what (`labels_cleared`, `file_rows`...), and what it could not do.

    `left` is the part not done (refs and memberships only), to be tried again with the same action; `error`
    says why, as an error code or a short reason of connector's own, never a CRM's message (it may quote the
    record). `manual` names what the target cannot do at all and an admin must (not tried again).
    """

    done: dict[str, int] = field(default_factory=dict)
    left: ErasureRequest | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)
    calls: int = 0


class Writer(ABC):
    name: str
    # the configured source whose records this writer labels; None for writers that address people, not records
    source: str | None = None
    # objects of that source that carry a stage label (e.g. {"Lead", "Contact"}); empty: the writer takes no labels
    label_objects: frozenset[str] = frozenset()
    # True: the writer gets every segment each run, changed or not: it publishes the whole member list (files),
    # or mirrors a target strictly and must catch members added there by hand (strict Salesforce campaigns)
    publishes_snapshots: bool = False
    # True: the writer creates follow-up tasks (`create_tasks`, `find_tasks`, `task_record`)
    takes_tasks: bool = False

    @classmethod
    @abstractmethod
    def from_config(cls, cfg: WriterConfigBase, env: PluginEnv) -> Writer:
        """Build the writer from its validated config, over its source's connection (`env.connection`)."""

    @abstractmethod
    def write_labels(self, changes: list[LabelChange], ctx: RunContext) -> WriteResult: ...

    @abstractmethod
    def sync_segment(self, change: SegmentChange, ctx: RunContext) -> WriteResult: ...

    @abstractmethod
    def estimate_calls(self, labels: int, adds: int, removes: int) -> int:
        """API calls a run with these many changes would make (for `plan`)."""

    def estimate_plan_calls(self, labels: list[LabelChange], segments: list[SegmentChange]) -> int:
        """API calls writing this plan would make (for `plan`). Default: `estimate_calls` on the counts; a
        writer whose cost depends on which records the changes share (vtiger: one call per record) counts
        those records here."""
        adds = sum(len(c.adds) for c in segments)
        removes = sum(len(c.removes) for c in segments)
        return self.estimate_calls(len(labels), adds, removes)

    def begin_writes(self, labels: list[LabelChange], segments: list[SegmentChange], ctx: RunContext) -> None:
        """Called by `run` once per target, after `preflight` and the mass-change guard, right before the
        `write_labels` and `sync_segment` calls, with everything they will be handed (the label changes to
        send and every segment change). A writer that can carry several changes of one record in one call
        (vtiger: the label and the segments field in one revise) writes them all here and answers those
        calls from what it did, each result still per label change and per segment member; it reports
        `unreachable` on the last result the run loop asks for (labels first, then the segments in order),
        so everything written before is recorded. Default: nothing; the writes happen in those calls."""
        return None

    def check(self) -> None:
        """An offline self-check for `connector validate`; ConfigError."""
        return None

    def check_online(self, ctx: RunContext) -> Findings:
        """For `connector check`: confirm what writing needs (label and segment fields exist and are
        writable, campaigns and member statuses exist) without reading a person or writing anything.
        Default: the offline `check`."""
        return offline_findings(self.name, self.check)

    def preflight(
        self, changes: list[LabelChange], segments: list[SegmentChange], ctx: RunContext
    ) -> dict[str, RecordError]:
        """The label `changes` this target would refuse, keyed by `str(ref)`, found without writing
        (describe: a value a restricted picklist does not allow); the `segments` about to be synced may be
        checked too (their campaigns and member statuses). `plan` lists the refusals as predicted
        rejections; `run` keeps them rejected without sending them. A label field that is missing or
        read-only, or a campaign or member status that is not there, raises ConfigError (exit 2 before any
        write). Called by `plan` and `run` alike, so a plan predicts the run. Default: nothing is refused."""
        return {}

    def erase(self, request: ErasureRequest, action: CrmAction, ctx: RunContext) -> ErasureResult:
        """`connector forget`: take erased people out of what this target holds, as far as `action` says
        (erasure_config.py). Called before their state rows go, and again by later runs for what was `left`.
        A target that keeps files of its own removes their rows whatever the action. Default: nothing to do
        (a target that takes no CRM action says so in a note)."""
        if action == "leave":
            return ErasureResult()
        return ErasureResult(notes=[f"{self.name}: takes no action on erasure ({action} not supported)"])

    def check_tasks(self, tasks: Sequence[TaskConfig], ctx: RunContext) -> Findings:
        """For `connector check`, when `tasks` (the configured tasks this target gets) is not empty: confirm
        what creating them needs (the task object and its fields, where the idempotency key goes, the
        configured status and priority among the CRM's values) without writing. Default: nothing to check."""
        return Findings(self.name)

    def task_record(self, refs: Sequence[RecordRef]) -> RecordRef | None:
        """Which of a person's records a task of this target hangs on (a Contact before a Lead), or None when
        this target's system holds none of them (no task there). Default: none."""
        return None

    def find_tasks(self, keys: list[str], ctx: RunContext) -> dict[str, str]:
        """The tasks the system already holds with these idempotency keys: key -> record id. Asked before
        creating a task the state has no confirmed record of. Default: none."""
        return {}

    def create_tasks(self, tasks: list[NewTask], ctx: RunContext) -> TaskResult:
        """Create each task once (its `key` stored on it where the system allows); report the record created
        or the reason refused, per key. Default: every task refused (a writer that takes none)."""
        return TaskResult(
            failed={t.key: RecordError(f"target {self.name} holds no tasks", code="NO_TASKS") for t in tasks}
        )

    def close(self) -> None:
        """Release what the writer holds itself (its connection belongs to the run: `PluginEnv.close`)."""
        return None


def expect_config(cfg: WriterConfigBase, model: type[M]) -> M:
    """`cfg` as the plugin's own config model (see `sources.base.expect_config`)."""
    if not isinstance(cfg, model):
        raise ConfigError(f"target {cfg.name}: a {type(cfg).__name__} is not a {model.__name__}")
    return cfg
