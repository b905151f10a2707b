"""What the task planner hands to a writer (`Writer.create_tasks`) and what the writer answers.

Plain records, apart from any plugin: writers import these, the planner builds them."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import RecordError
from ..schema import RecordRef

KEY_LENGTH = 32  # hex characters of the idempotency key (fits a Salesforce text External ID of 32+)


def idempotency_key(task: str, person_key: str, occurrence: str) -> str:
    """The key of one occurrence of one task for one person, the same in every run and after a state rebuild
    (person keys are derived from the person's records). A hash: it is written onto the CRM task, where a
    person key or a date would say more than needed, and it is the same length whatever the inputs."""
    text = f"{task}\x1f{person_key}\x1f{occurrence}"
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


@dataclass(frozen=True)
class NewTask:
    key: str  # idempotency key: stored on the CRM task and in the state
    task: str  # the configured task's name
    person_key: str
    occurrence: str  # what happened: `nurture_until=2026-11-23`, `transition=42`
    who: RecordRef  # the Lead or Contact the task is about (in the target's source)
    subject: str
    description: str
    due_date: dt.date
    priority: str | None  # None: the CRM's default
    status: str | None
    owner: str | None  # a user id; None: the owner of `who`

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "task": self.task,
            "person_key": self.person_key,
            "occurrence": self.occurrence,
            "who": str(self.who),
            "subject": self.subject,
            "description": self.description,
            "due_date": self.due_date.isoformat(),
            "priority": self.priority,
            "status": self.status,
            "owner": self.owner,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NewTask:
        return cls(
            key=str(data["key"]),
            task=str(data["task"]),
            person_key=str(data["person_key"]),
            occurrence=str(data["occurrence"]),
            who=RecordRef.parse(str(data["who"])),
            subject=str(data["subject"]),
            description=str(data.get("description") or ""),
            due_date=dt.date.fromisoformat(str(data["due_date"])),
            priority=data.get("priority"),
            status=data.get("status"),
            owner=data.get("owner"),
        )


@dataclass
class TaskResult:
    """Per key: the CRM record created, or why it was refused. `unreachable`: the system stopped answering part
    way (the keys not tried are in `failed` with code UNREACHABLE); what was created is kept."""

    created: dict[str, str] = field(default_factory=dict)
    failed: dict[str, RecordError] = field(default_factory=dict)
    calls: int = 0
    unreachable: str | None = None
