"""What the run loop calls: record events in the transaction of the change they report, and deliver the
outbox to every sink after the CRM writes.

Delivery never touches the CRMs and never changes the run's exit code: a sink that fails keeps its events in
the outbox (in order, behind the first one it did not take) and says so in the run summary and the log; the
next run sends them first.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import SecretStr

from ..engine import Decision
from ..errors import ConfigError, ConnectorError, StateError
from ..logs import mask_text, register_secret
from ..plan import Member
from ..retry import RetryPolicy
from ..schema import RecordRef
from ..stage_model import StageModel
from ..state import StateStore
from . import cloudevents, jsonl_file, outbox
from .config import EventsConfig

if TYPE_CHECKING:  # imported when a webhook is configured: it brings in requests, which start-up does without
    from .webhook import WebhookSender

log = structlog.get_logger(__name__)
FILE_SINK = "file"


class EventFeed:
    def __init__(
        self,
        config: EventsConfig,
        *,
        base_dir: Path,
        stage_model: StageModel,
        label_targets: Sequence[str],
        environ: Mapping[str, str] | None,
        policy: RetryPolicy,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.config = config
        self.stage_model = stage_model
        self.label_targets = list(label_targets)
        self.clock = clock
        self.file: Path | None = None
        if config.file:
            path = Path(config.file)
            self.file = path if path.is_absolute() else base_dir / path
        env = os.environ if environ is None else environ
        self.webhooks: list[WebhookSender] = []
        if config.webhooks:
            from .webhook import WebhookSender
        for hook in config.webhooks:
            secret = env.get(hook.secret_env)
            if not secret:
                raise ConfigError(
                    f"events.webhooks '{hook.name}': environment variable {hook.secret_env} (its signing "
                    "secret) is not set"
                )
            register_secret(secret)
            self.webhooks.append(WebhookSender(hook, SecretStr(secret), policy))

    def sinks(self) -> list[str]:
        return ([FILE_SINK] if self.file else []) + [w.sink for w in self.webhooks]

    # ---- recording (inside the caller's transaction) ------------------------------------------------

    def stage_changed(
        self,
        store: StateStore,
        transition_id: int,
        person_key: str,
        refs: Sequence[RecordRef],
        from_stage: str | None,
        decision: Decision,
        as_of: dt.date,
        run_id: int,
    ) -> None:
        stage = self.stage_model.stage(decision.stage)
        event = cloudevents.stage_changed(
            source=self.config.source,
            transition_id=transition_id,
            person_key=person_key,
            from_stage=from_stage,
            to_stage=decision.stage,
            rule=decision.rule,
            matched=decision.matched,
            refs=refs,
            labels={t: stage.label_for(t) for t in self.label_targets},
            as_of=as_of,
            time=self.clock(),
        )
        outbox.add(store, event["id"], person_key, cloudevents.encode(event), run_id)

    def segment_changed(
        self,
        store: StateStore,
        target: str,
        segment: str,
        added: Iterable[Member],
        removed: Iterable[Member],
        as_of: dt.date,
        run_id: int,
    ) -> None:
        for is_add, members in ((True, added), (False, removed)):
            for m in members:
                event = cloudevents.segment_changed(
                    source=self.config.source,
                    added=is_add,
                    target=target,
                    segment=segment,
                    person_key=m.person_key,
                    stage=m.stage,
                    label=m.label,
                    refs=m.refs,
                    as_of=as_of,
                    run_id=run_id,
                    time=self.clock(),
                )
                outbox.add(store, event["id"], m.person_key, cloudevents.encode(event), run_id)

    # ---- delivery (after the CRM writes) ------------------------------------------------------------

    def deliver(self, store: StateStore) -> dict[str, Any]:
        """Send every sink what it has not taken yet, oldest first; returns per sink what went and what stays."""
        report: dict[str, Any] = {}
        if self.file is not None:
            report[FILE_SINK] = self._drain(store, FILE_SINK, 1000, self._append_file)
        for hook in self.webhooks:
            report[hook.sink] = self._drain(store, hook.sink, hook.config.batch_size, hook.post)
        outbox.prune(store, self.sinks())
        return report

    def _append_file(self, bodies: Sequence[str]) -> int:
        assert self.file is not None
        jsonl_file.append(self.file, bodies)
        return 1

    def _drain(
        self, store: StateStore, sink: str, batch_size: int, send: Callable[[Sequence[str]], int]
    ) -> dict[str, Any]:
        delivered = 0
        error: str | None = None
        while batch := outbox.pending(store, sink, batch_size):
            try:
                send([body for _, body in batch])
            except StateError:
                raise
            except (ConnectorError, OSError) as exc:
                # the first event not taken holds back the ones after it: each sink sees them in order
                error = mask_text(str(exc))
                break
            outbox.mark_delivered(store, sink, batch[-1][0])
            delivered += len(batch)
        result: dict[str, Any] = {"delivered": delivered, "pending": outbox.count_pending(store, sink)}
        if error:
            result["error"] = error
            log.error(
                "events.sink.failed", sink=sink, delivered=delivered, pending=result["pending"], error=error
            )
        else:
            log.info("events.sink.done", sink=sink, delivered=delivered)
        return result

    def close(self) -> None:
        for hook in self.webhooks:
            hook.close()
