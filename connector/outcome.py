"""How a run ended: exit codes, the run summary (`--json`), and the classification of a plugin's failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from .errors import BudgetExceededError, ConfigError, StateError
from .logs import mask_text

log = structlog.get_logger(__name__)

# documented in the README and `connector --help`
EXIT_OK = 0
EXIT_CRASH = 1
EXIT_CONFIG = 2
EXIT_PARTIAL = 3
EXIT_UNREACHABLE = 4
EXIT_LOCKED = 5
EXIT_BUDGET = 6
EXIT_STATE = 7  # the state file is unusable: nothing more is written until it is fixed or rebuilt
EXIT_MASS_CHANGE = 8
EXIT_NOT_FOUND = 9  # what a command asked about is not there: an unknown person, no state yet
EXIT_INTERRUPTED = 130


@dataclass
class Summary:
    mode: str
    as_of: str
    run_id: int | None = None
    outcome: str = "ok"
    exit_code: int = EXIT_OK
    people: dict[str, int] = field(default_factory=dict)
    read: dict[str, dict[str, int]] = field(default_factory=dict)
    stages: dict[str, int] = field(default_factory=dict)
    transitions: dict[str, int] = field(default_factory=dict)
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    segments: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    rejected: dict[str, Any] = field(default_factory=lambda: {"count": 0, "pending": 0, "reasons": {}})
    api_calls: dict[str, int] = field(default_factory=dict)
    estimated_write_calls: dict[str, int] = field(default_factory=dict)
    unknown_values: dict[str, int] = field(default_factory=dict)
    no_baseline: list[str] = field(default_factory=list)  # sources never read to their end: run held
    # the mass-change guard's verdict: "pass", "hold" (nothing written) or "allowed" (held, let through)
    guard: dict[str, Any] = field(default_factory=lambda: {"verdict": "pass", "breaches": []})
    # the event feed: per sink what was delivered and what stays for the next run (`plan`: would_emit)
    events: dict[str, Any] = field(default_factory=dict)
    # open pipeline value per stage, weighted, coverage of the revenue target (coverage.py); empty unconfigured
    pipeline: dict[str, Any] = field(default_factory=dict)
    # label changes a target would refuse, found read-only before writing (Writer.preflight): per target
    # the count and reasons; `plan` lists them (exit 3), `run` keeps them rejected without sending them
    predicted_rejections: dict[str, dict[str, Any]] = field(default_factory=dict)
    # records of people erased on request read in this run and left out before identity resolution
    suppressed: int = 0
    # CRM actions of erasures that failed and wait in the state for the next run or forget (exit 3)
    erasure_pending: int = 0
    # follow-up tasks per target: created (per task), found in the CRM already, failed; `plan`: would_create
    tasks: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    label_changes: list[dict[str, Any]] = field(default_factory=list)
    segment_changes: list[dict[str, Any]] = field(default_factory=list)
    task_changes: list[dict[str, Any]] = field(default_factory=list)  # `plan`: each task it would create

    def to_json(self, detail: bool = False) -> dict[str, Any]:
        out = {
            k: v
            for k, v in self.__dict__.items()
            if detail or k not in ("label_changes", "segment_changes", "task_changes")
        }
        return out


OUTCOMES = {
    "config": ("config_error", EXIT_CONFIG),
    "budget": ("budget_stop", EXIT_BUDGET),
    "state": ("state_unusable", EXIT_STATE),
}


def record_state_failure(summary: Summary, exc: StateError) -> None:
    """The state cannot record what a run does: the run stops where it is (no further CRM write), exit 7."""
    summary.outcome, summary.exit_code = OUTCOMES["state"]
    summary.errors.append(mask_text(str(exc)))
    log.error("state.unusable", path=exc.path, error=mask_text(str(exc)))


def record_failure(summary: Summary, role: str, name: str, exc: Exception) -> str:
    """Classify a source's or writer's failure ("config", "budget", "unreachable") and note it in the summary."""
    if isinstance(exc, ConfigError):
        kind = "config"
    elif isinstance(exc, BudgetExceededError):
        kind = "budget"
    else:
        kind = "unreachable"
    text = mask_text(str(exc))  # the summary is printed and kept in state: no secret may ride along
    summary.errors.append(f"{name}: unreachable: {text}" if kind == "unreachable" else f"{name}: {text}")
    log.error(f"{role}.{kind}", name=name, error=str(exc))
    return kind
